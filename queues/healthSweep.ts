/**
 * The health sweep QStash calls on a schedule: every cluster's ClusterLink is
 * asked for a health report, each at a random moment within the jitter
 * window so a large fleet does not check in at once. Idempotent: a duplicate
 * delivery only asks the bridges once more. It also folds the fleet counters'
 * appended deltas (db/migrations/0020_fleet_counts.sql) so the fleet metrics
 * read stays a few dozen rows.
 */
import { isNull, sql } from "drizzle-orm";
import { Hono } from "hono";
import { clusters } from "../db/schema.ts";
import type { AppEnv } from "../core/app-env.ts";
import { sendCommand } from "../core/fleet/commands.ts";
import { describe } from "../core/openapi/describe.ts";
import { healthSweepSchema } from "../protocol/api/platform.ts";
import { verifyQStashSignature } from "./verifySignature.ts";
/** Spread over at most this window; small fleets answer within a second. */
const MAX_JITTER_MS = 20_000;

export function sweepJitter(clusterCount: number): number {
  return Math.min(MAX_JITTER_MS, clusterCount * 50);
}

export const jobRoutes = new Hono<AppEnv>()
  .use("*", verifyQStashSignature)
  .post("/health-sweep", describe("Jobs")({
    summary: "Ask every cluster for a health report, spread over a jitter window",
    access: "qstash",
    responses: { 200: healthSweepSchema },
  }), async (c) => {
    const rows = await c.var.services.db.select({ id: clusters.id }).from(clusters).where(isNull(clusters.deletedAt));
    const window = sweepJitter(rows.length);
    // Housekeeping, not the sweep's purpose: a failure here must not stop the bridges being asked.
    await c.var.services.db.execute(sql`select fleet_counts_compact()`).catch((err: unknown) =>
      console.warn(JSON.stringify({ msg: "fleet counters not compacted", requestId: c.var.requestId, error: String(err) })));
    await Promise.all(rows.map((r) =>
      sendCommand(c.env, r.id, "health.report", undefined, {}, { delayMs: Math.floor(Math.random() * window) })));
    return c.json({ clusters: rows.length, jitterWindowMs: window });
  });
