/**
 * A CI webhook delivery checked before a byte of its body is parsed: the
 * hook's sealed secret signs it, either as Standard Webhooks (webhook-id,
 * webhook-timestamp within 5 minutes, webhook-signature) or as GitHub's
 * X-Hub-Signature-256 (no timestamp: the X-GitHub-Delivery id is the replay
 * key, kept 24 h). A delivery id is accepted once (KV SET NX EX, as for the
 * bridge's webhooks in core/fleet/signedRequest.ts).
 */
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { ciHooks } from "../../db/schema.ts";
import { GITHUB_DELIVERY_HEADER, GITHUB_SIGNATURE_HEADER, verifyGitHubSignature } from "../../protocol/githubWebhooks.ts";
import { WEBHOOK_TOLERANCE_SECONDS, verifyWebhook } from "../../protocol/webhooks.ts";
import type { AppEnv } from "../app-env.ts";
import { open } from "../crypto/secretBox.ts";
import { ApiError } from "../errors.ts";
import { assertJsonWithinLimits } from "../jsonLimits.ts";

export type CiHookRow = typeof ciHooks.$inferSelect;
export type SignatureScheme = "standard-webhooks" | "github";

export interface VerifiedDelivery {
  hook: CiHookRow;
  scheme: SignatureScheme;
  deliveryId: string;
  body: string;
  /** Frees the delivery id when nothing was started, so the sender's retry is not refused as a replay. */
  release(): Promise<void>;
}

/** A refusal, with the hook it concerned when the hook exists (for the audit row). */
export class DeliveryRefused extends ApiError {
  constructor(status: 401 | 409, code: string, message: string, readonly hook: CiHookRow | null, readonly scheme: SignatureScheme | null, readonly deliveryId: string | null) {
    super(status, code, message);
  }
}

/** GitHub keeps redelivering for days; a day of remembered ids covers its automatic retries. */
const GITHUB_NONCE_SECONDS = 24 * 3600;
const nonceKey = (hookId: string, scheme: SignatureScheme, id: string) => `ci-hook:${hookId}:${scheme}:${id}`;

export async function verifyCiDelivery(c: Context<AppEnv>, hookId: string): Promise<VerifiedDelivery> {
  const { db, kv, config } = c.var.services;
  const [hook] = await db.select().from(ciHooks).where(eq(ciHooks.id, hookId)).limit(1);
  const headers = c.req.raw.headers;
  const scheme: SignatureScheme | null = headers.has("webhook-signature") ? "standard-webhooks" : headers.has(GITHUB_SIGNATURE_HEADER) ? "github" : null;
  const refuse = (status: 401 | 409, code: string, message: string, id: string | null = null) => new DeliveryRefused(status, code, message, hook ?? null, scheme, id);
  // Same answer for an unknown hook as for a bad signature: nothing to probe.
  if (!hook) throw refuse(401, "invalid_signature", "webhook signature does not verify");
  if (!scheme) throw refuse(401, "invalid_signature", "sign the delivery: Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) or X-Hub-Signature-256");
  const body = await c.req.text();
  const secret = await open(hook.secretSealed, config.encryptionKey);

  let id: string;
  let ttl: number;
  if (scheme === "standard-webhooks") {
    const check = await verifyWebhook([secret], headers, body);
    if (!check.ok) {
      throw check.reason === "stale"
        ? refuse(401, "stale_timestamp", `webhook-timestamp is more than ${WEBHOOK_TOLERANCE_SECONDS} s away from now`)
        : refuse(401, "invalid_signature", `webhook rejected: ${check.reason.replace(/_/g, " ")}`);
    }
    id = check.id;
    ttl = WEBHOOK_TOLERANCE_SECONDS * 2;
  } else {
    const delivery = headers.get(GITHUB_DELIVERY_HEADER);
    if (!delivery || delivery.length > 256) throw refuse(401, "invalid_signature", "X-Hub-Signature-256 needs an X-GitHub-Delivery id (the replay key)");
    if (!(await verifyGitHubSignature([secret], headers.get(GITHUB_SIGNATURE_HEADER)!, body))) {
      throw refuse(401, "invalid_signature", "X-Hub-Signature-256 does not verify", delivery);
    }
    id = delivery;
    ttl = GITHUB_NONCE_SECONDS;
  }
  const key = nonceKey(hook.id, scheme, id);
  if (!(await kv.set(key, "1", { nx: true, ex: ttl }))) throw refuse(409, "replayed", `delivery ${id} was already accepted`, id);
  try {
    assertJsonWithinLimits(body);
  } catch (err) {
    await kv.del(key).catch(() => {});
    throw err;
  }
  return { hook, scheme, deliveryId: id, body, release: () => kv.del(key) };
}
