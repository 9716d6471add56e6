import { and, desc, eq, gte, isNull } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { instanceHealth, instances } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { notFound } from "../../core/errors.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { fleetTotalsQuery, type FleetTotals } from "../../core/metrics/fleetTotals.ts";
import { fleetMetricsSchema, instanceMetricsSchema } from "../../protocol/api/fleet.ts";

const idParam = z.object({ id: z.uuid() });
const seriesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(120),
  since: z.iso.datetime().optional(),
});

type HealthRow = typeof instanceHealth.$inferSelect;
const point = (h: HealthRow) => ({
  checkedAt: h.checkedAt, state: h.state, live: h.live, ready: h.ready, rssBytes: h.rssBytes,
  heapUsedBytes: h.heapUsedBytes, flowsState: h.flowsState, missingNodeTypes: h.missingNodeTypes, error: h.error,
});

const doc = describe("Metrics");

export const metricsRoutes = new Hono<AppEnv>()
  .get("/instances/:id", doc({ summary: "An instance's latest health and its recent series", responses: { 200: instanceMetricsSchema }, errors: [404] }), requirePermission("metrics", "read"), validate("param", idParam), validate("query", seriesQuery), async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    const db = c.var.services.db;
    const [inst] = await db.select({ id: instances.id, status: instances.status, desiredState: instances.desiredState })
      .from(instances).where(and(eq(instances.id, id), isNull(instances.deletedAt))).limit(1);
    if (!inst) throw notFound("instance", id);
    const rows = await db.select().from(instanceHealth)
      .where(and(eq(instanceHealth.instanceId, id), q.since ? gte(instanceHealth.checkedAt, new Date(q.since)) : undefined))
      .orderBy(desc(instanceHealth.checkedAt)).limit(q.limit);
    return c.json({
      instanceId: id, status: inst.status, desiredState: inst.desiredState,
      latest: rows[0] ? point(rows[0]) : null,
      // Oldest first, ready to plot.
      series: rows.reverse().map(point),
    });
  })
  .get("/fleet", doc({ summary: "Fleet totals: instances and clusters by status, health of the latest reports", responses: { 200: fleetMetricsSchema } }), requirePermission("metrics", "read"), async (c) => {
    // One statement, one round trip (core/metrics/fleetTotals.ts).
    const { rows: [m] } = await c.var.services.db.execute<FleetTotals>(fleetTotalsQuery());
    const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, n) => a + n, 0);
    return c.json({
      instances: { total: total(m!.by_status), byStatus: m!.by_status, byDesiredState: m!.by_desired },
      clusters: { total: total(m!.clusters_by_status), byStatus: m!.clusters_by_status },
      health: {
        reporting: m!.reporting,
        live: m!.live,
        ready: m!.ready,
        withMissingNodeTypes: m!.with_missing,
        rssBytesTotal: Number(m!.rss_total),
        heapUsedBytesTotal: Number(m!.heap_total),
      },
      timestamp: new Date().toISOString(),
    });
  });
