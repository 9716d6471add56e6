/**
 * Verifies a Standard Webhook from a cluster's bridge before anything parses
 * its body: the cluster's sealed secret signs it, the timestamp is fresh, and
 * its webhook-id was never seen (Redis SET NX EX). Returns the raw body.
 */
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { clusters } from "../../db/schema.ts";
import type { AppEnv } from "../app-env.ts";
import { open } from "../crypto/secretBox.ts";
import { ApiError } from "../errors.ts";
import { assertJsonWithinLimits } from "../jsonLimits.ts";
import { counted, recordFromRequest } from "../metrics/record.ts";
import { SERIES } from "../metrics/series.ts";
import { WEBHOOK_TOLERANCE_SECONDS, verifyWebhook } from "../../protocol/webhooks.ts";

export interface VerifiedWebhook {
  clusterId: string;
  webhookId: string;
  body: string;
  /** Call when processing failed, so the sender's retry (same id) is not refused as a replay. */
  release(): Promise<void>;
}

const rejected = (code: string, message: string) => new ApiError(401, code, message);

export async function verifyClusterWebhook(c: Context<AppEnv>, clusterId: string): Promise<VerifiedWebhook> {
  try {
    return await verifySigned(c, clusterId);
  } catch (err) {
    // Counted by reason for GET /metrics (an alert on a forged or replayed stream needs the rate).
    if (err instanceof ApiError && err.status === 401) recordFromRequest(c, [counted(SERIES.webhookVerificationFailures, { reason: err.code })]);
    throw err;
  }
}

/**
 * The cluster's sealed secret, read through the KV store: every command
 * result of a deployment passes here, and a database connection per webhook
 * is time the drained work waits. Still sealed in KV; rotation and deletion
 * rewrite or drop the key (forgetClusterSecret) in the same request, so a
 * rotated-out secret stops working at once.
 */
const secretKey = (clusterId: string) => `cluster-secret-sealed:${clusterId}`;
const SECRET_KV_TTL_SECONDS = 3600;

async function sealedSecret(c: Context<AppEnv>, clusterId: string): Promise<string | undefined> {
  const { kv, db } = c.var.services;
  const cached = await kv.get(secretKey(clusterId)).catch(() => null);
  if (cached) return cached;
  const [cluster] = await db.select({ sealed: clusters.webhookSecretSealed }).from(clusters).where(eq(clusters.id, clusterId)).limit(1);
  if (!cluster) return undefined;
  await kv.set(secretKey(clusterId), cluster.sealed, { ex: SECRET_KV_TTL_SECONDS }).catch(() => {});
  return cluster.sealed;
}

/** Call after a cluster's secret changes or the cluster goes away. */
export async function forgetClusterSecret(kv: Context<AppEnv>["var"]["services"]["kv"], clusterId: string): Promise<void> {
  await kv.del(secretKey(clusterId));
}

async function verifySigned(c: Context<AppEnv>, clusterId: string): Promise<VerifiedWebhook> {
  const { kv, config } = c.var.services;
  const sealed = await sealedSecret(c, clusterId);
  // Same answer for an unknown cluster as for a bad signature: nothing to probe.
  if (!sealed) throw rejected("invalid_signature", "webhook signature does not verify");
  const body = await c.req.text();
  // A cached value sealed under a key since rotated away (POST /api/admin/reseal) is read again from the database.
  const secret = await open(sealed, config.encryptionKey).catch(async () => {
    await forgetClusterSecret(kv, clusterId);
    const fresh = await sealedSecret(c, clusterId);
    if (!fresh) throw rejected("invalid_signature", "webhook signature does not verify");
    return open(fresh, config.encryptionKey);
  });
  const check = await verifyWebhook([secret], c.req.raw.headers, body);
  if (!check.ok) {
    throw check.reason === "stale"
      ? rejected("stale_webhook", `webhook-timestamp is more than ${WEBHOOK_TOLERANCE_SECONDS} s away from now`)
      : rejected("invalid_signature", `webhook rejected: ${check.reason.replace(/_/g, " ")}`);
  }
  const nonceKey = `webhook:${clusterId}:${check.id}`;
  const fresh = await kv.set(nonceKey, "1", { nx: true, ex: WEBHOOK_TOLERANCE_SECONDS * 2 });
  if (!fresh) throw rejected("webhook_replayed", `webhook-id ${check.id} was already delivered`);
  // Verified first, so an unsigned sender learns nothing; limited before any parser or canonicaliser recurses into it.
  try {
    assertJsonWithinLimits(body);
  } catch (err) {
    await kv.del(nonceKey).catch(() => {});
    throw err;
  }
  return { clusterId, webhookId: check.id, body, release: () => kv.del(nonceKey) };
}
