/**
 * Standard Webhooks (https://www.standardwebhooks.com): the bridge signs its
 * reports, the control plane verifies them before parsing a byte of the body.
 * Headers: webhook-id, webhook-timestamp (unix seconds), webhook-signature
 * ("v1,<base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`>", several allowed,
 * space-separated, so a secret can be rotated). WebCrypto only: the same code
 * runs in workerd (verify) and in the Node bridge (sign).
 */

import { fromBase64, timingSafeEqual, toBase64 } from "./encoding.ts";

export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;
const SECRET_PREFIX = "whsec_";

/** A whsec_ secret's key bytes are the base64 after the prefix (as the reference implementation does). */
function secretKeyBytes(secret: string): Uint8Array {
  return fromBase64(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret);
}

async function hmac(secret: string, content: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", secretKeyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(content)));
}

export async function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): Promise<string> {
  return `v1,${toBase64(await hmac(secret, `${id}.${timestampSeconds}.${body}`))}`;
}

/** Headers for one outgoing webhook. */
export async function webhookHeaders(secret: string, body: string, id = `msg_${crypto.randomUUID()}`, now = Date.now()) {
  const timestamp = Math.floor(now / 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signWebhook(secret, id, timestamp, body),
  };
}

export type WebhookRejection = "missing_headers" | "bad_timestamp" | "stale" | "bad_signature";
export type WebhookCheck = { ok: true; id: string; timestamp: number } | { ok: false; reason: WebhookRejection };

/**
 * Checks headers and signature over the raw body. Any of `secrets` may match
 * (current and previous during rotation). Replay (a seen webhook-id) is the
 * caller's check, since it needs the KV store.
 */
export async function verifyWebhook(
  secrets: readonly string[],
  headers: { get(name: string): string | null },
  rawBody: string,
  opts: { now?: number; toleranceSeconds?: number } = {},
): Promise<WebhookCheck> {
  const id = headers.get("webhook-id");
  const ts = headers.get("webhook-timestamp");
  const sigHeader = headers.get("webhook-signature");
  if (!id || !ts || !sigHeader || id.length > 256) return { ok: false, reason: "missing_headers" };
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: "bad_timestamp" };
  const timestamp = Number(ts);
  const nowSeconds = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(nowSeconds - timestamp) > (opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS)) return { ok: false, reason: "stale" };
  const offered = sigHeader.split(" ").flatMap((part) => {
    const [version, sig] = part.split(",", 2);
    if (version !== "v1" || !sig) return [];
    try { return [fromBase64(sig)]; } catch { return []; }
  });
  for (const secret of secrets) {
    const expected = await hmac(secret, `${id}.${timestamp}.${rawBody}`);
    if (offered.some((sig) => timingSafeEqual(sig, expected))) return { ok: true, id, timestamp };
  }
  return { ok: false, reason: "bad_signature" };
}
