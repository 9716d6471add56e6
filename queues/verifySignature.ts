import { Receiver } from "@upstash/qstash";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../core/app-env.ts";
import { ApiError } from "../core/errors.ts";
import { assertJsonWithinLimits } from "../core/jsonLimits.ts";
import { counted, recordFromRequest } from "../core/metrics/record.ts";
import { SERIES } from "../core/metrics/series.ts";

/** Label values of redforge_qstash_deliveries_total: a bounded set, whatever path a signed request names. */
const KNOWN_JOBS = new Set(["health-sweep", "compliance-export", "retention-purge", "alerts-evaluate", "alerts-deliver"]);

/**
 * Every job route is called by QStash and nobody else: the Upstash-Signature
 * JWT (current or next signing key) must cover this URL and this exact body.
 */
export const verifyQStashSignature = createMiddleware<AppEnv>(async (c, next) => {
  // jobRoutes' use("*") and a job's own route both match: verify and count once.
  if (c.get("qstashVerified")) return next();
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
  c.set("qstashVerified", true);
  // A delivery is counted by how the job answered: 5xx makes QStash retry, and the rate of those is what an operator watches.
  const path = new URL(c.req.url).pathname.replace(/^\/api\/jobs\//, "");
  const job = KNOWN_JOBS.has(path) ? path : "other";
  try {
    await next();
  } finally {
    const outcome = c.res.status >= 500 ? "failed" : c.res.status >= 400 ? "refused" : "ok";
    recordFromRequest(c, [counted(SERIES.qstashDeliveries, { job, outcome })]);
  }
});
