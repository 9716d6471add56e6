/**
 * GET /api/metrics/fleet's totals. fleetTotalsQuery reads the counters that
 * triggers append (db/migrations/0020_fleet_counts.sql), a few dozen rows
 * whatever the fleet's size once the health sweep has compacted them. fleetTotalsScanQuery computes the same totals
 * from the tables (one index probe per live instance for its newest health
 * report: ~X ms at 10,000 instances, bench/fleet-scale/metricsQuery.ts); the
 * tests hold the counters to it.
 */
import { sql } from "drizzle-orm";
import { clusters, fleetCounts, instanceHealth, instances } from "../../db/schema.ts";

// A type, not an interface: execute<T> wants a Record<string, unknown>, which only a type alias satisfies.
export type FleetTotals = {
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

export const fleetTotalsScanQuery = () => sql`
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
        from latest) h`;

export const fleetTotalsQuery = () => sql`
      select
        coalesce(jsonb_object_agg(key, n) filter (where dim = 'status'), '{}'::jsonb) as by_status,
        coalesce(jsonb_object_agg(key, n) filter (where dim = 'desired'), '{}'::jsonb) as by_desired,
        coalesce(jsonb_object_agg(key, n) filter (where dim = 'cluster'), '{}'::jsonb) as clusters_by_status,
        coalesce(max(n) filter (where dim = 'health' and key = 'reporting'), 0)::int as reporting,
        coalesce(max(n) filter (where dim = 'health' and key = 'live'), 0)::int as live,
        coalesce(max(n) filter (where dim = 'health' and key = 'ready'), 0)::int as ready,
        coalesce(max(n) filter (where dim = 'health' and key = 'with_missing'), 0)::int as with_missing,
        coalesce(max(n) filter (where dim = 'health' and key = 'rss'), 0)::text as rss_total,
        coalesce(max(n) filter (where dim = 'health' and key = 'heap'), 0)::text as heap_total
      from (select dim, key, sum(n) as n from ${fleetCounts} group by dim, key having sum(n) <> 0) c`;
