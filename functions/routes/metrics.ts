import { and, desc, eq, gte, isNull, sql } from "drizzle-orm";
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

// A type, not an interface: execute<T> wants a Record<string, unknown>, which only a type alias satisfies.
type FleetTotals = {
  by_status: Record<string, number>;
  by_desired: Record<string, number>;
  clusters_by_status: Record<string, number>;
  reporting: number;
  live: number;
  ready: number;
  with_missing: number;
  /** Sums of bigints, as text: they may pass 2^53 in no realistic fleet, but numeric has no JS type. */
  rss_total: string;
  heap_total: string;
};

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
    // One statement, one round trip. The latest health row of each live instance is an index probe
    // (idx_instance_health_recent: instance_id, checked_at) per instance, not a pass over the history.
    const { rows: [m] } = await c.var.services.db.execute<FleetTotals>(sql`
      with live as (select status, desired_state, id from ${instances} where deleted_at is null),
      latest as (
        select h.live, h.ready, h.rss_bytes, h.heap_used_bytes, jsonb_array_length(h.missing_node_types) as missing
        from live i cross join lateral (
          select live, ready, rss_bytes, heap_used_bytes, missing_node_types from ${instanceHealth}
          where instance_id = i.id order by checked_at desc limit 1) h
      )
      select
        (select coalesce(jsonb_object_agg(status, n), '{}'::jsonb) from (select status, count(*)::int as n from live group by status) s) as by_status,
        (select coalesce(jsonb_object_agg(desired_state, n), '{}'::jsonb) from (select desired_state, count(*)::int as n from live group by desired_state) s) as by_desired,
        (select coalesce(jsonb_object_agg(status, n), '{}'::jsonb) from (select status, count(*)::int as n from ${clusters} where deleted_at is null group by status) s) as clusters_by_status,
        h.reporting, h.live, h.ready, h.with_missing, h.rss_total, h.heap_total
      from (
        select count(*)::int as reporting, (count(*) filter (where live))::int as live, (count(*) filter (where ready))::int as ready,
               (count(*) filter (where missing > 0))::int as with_missing,
               coalesce(sum(rss_bytes), 0)::text as rss_total, coalesce(sum(heap_used_bytes), 0)::text as heap_total
        from latest) h`);
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
