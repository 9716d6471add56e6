import { and, count, desc, eq, gte, isNull, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { clusters, instanceHealth, instances } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { notFound } from "../../core/errors.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
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
    const db = c.var.services.db;
    const [byStatus, byDesired, clusterRows, latest] = await Promise.all([
      db.select({ key: instances.status, n: count() }).from(instances).where(isNull(instances.deletedAt)).groupBy(instances.status),
      db.select({ key: instances.desiredState, n: count() }).from(instances).where(isNull(instances.deletedAt)).groupBy(instances.desiredState),
      db.select({ status: clusters.status, n: count() }).from(clusters).where(isNull(clusters.deletedAt)).groupBy(clusters.status),
      // Latest health row per live instance.
      db.execute<{ live: boolean; ready: boolean; rss_bytes: string | null; heap_used_bytes: string | null; missing: number }>(sql`
        select distinct on (h.instance_id) h.live, h.ready, h.rss_bytes, h.heap_used_bytes,
               jsonb_array_length(h.missing_node_types) as missing
        from ${instanceHealth} h join ${instances} i on i.id = h.instance_id and i.deleted_at is null
        order by h.instance_id, h.checked_at desc`),
    ]);
    const tally = (rows: { key: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.key, r.n]));
    const health = latest.rows;
    return c.json({
      instances: {
        total: byStatus.reduce((a, r) => a + r.n, 0),
        byStatus: tally(byStatus),
        byDesiredState: tally(byDesired),
      },
      clusters: { total: clusterRows.reduce((a, r) => a + r.n, 0), byStatus: tally(clusterRows.map((r) => ({ key: r.status, n: r.n }))) },
      health: {
        reporting: health.length,
        live: health.filter((h) => h.live).length,
        ready: health.filter((h) => h.ready).length,
        withMissingNodeTypes: health.filter((h) => Number(h.missing) > 0).length,
        rssBytesTotal: health.reduce((a, h) => a + Number(h.rss_bytes ?? 0), 0),
        heapUsedBytesTotal: health.reduce((a, h) => a + Number(h.heap_used_bytes ?? 0), 0),
      },
      timestamp: new Date().toISOString(),
    });
  });
