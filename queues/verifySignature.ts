import { Receiver } from "@upstash/qstash";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../core/app-env.ts";
import { ApiError } from "../core/errors.ts";
import { assertJsonWithinLimits } from "../core/jsonLimits.ts";

/**
 * Every job route is called by QStash and nobody else: the Upstash-Signature
 * JWT (current or next signing key) must cover this URL and this exact body.
 */
export const verifyQStashSignature = createMiddleware<AppEnv>(async (c, next) => {
  const { QSTASH_CURRENT_SIGNING_KEY: current, QSTASH_NEXT_SIGNING_KEY: nextKey } = c.env;
  if (!current || !nextKey) throw new ApiError(503, "misconfigured", "QStash signing keys are not configured");
  const signature = c.req.header("Upstash-Signature");
  if (!signature) throw new ApiError(401, "missing_signature", "job routes accept only QStash-signed requests");
  const body = await c.req.text();
  const receiver = new Receiver({ currentSigningKey: current, nextSigningKey: nextKey });
  // QStash signs the destination URL it was given: the public one, not whatever host we see.
  const url = c.env.PUBLIC_URL ? new URL(new URL(c.req.url).pathname, c.env.PUBLIC_URL).toString() : c.req.url;
  const ok = await receiver.verify({ signature, body, url }).catch(() => false);
  if (!ok) throw new ApiError(401, "invalid_signature", "Upstash-Signature does not verify");
  assertJsonWithinLimits(body);
  await next();
});
