/**
 * bench/fleet-scale/metricsQuery: what GET /api/metrics/fleet costs Postgres
 * as the fleet grows: 0, 1,000 and 10,000 live instances, each with
 * BENCH_HEALTH_ROWS health reports of history (plus one deleted instance per
 * ten live, which the totals skip). Per size, for the maintained counters
 * (fleetTotalsQuery, what the route reads) and for the scan that computes the
 * same totals from the tables (fleetTotalsScanQuery, the route before
 * migration 0020): p50/p95 over a direct connection, Postgres's own execution
 * time (EXPLAIN ANALYZE), the ratio to `select 1` measured in the same run,
 * and whether the two agree.
 *   npx tsx bench/fleet-scale/metricsQuery.ts   (BENCH_SIZES=0,1000,10000 BENCH_HEALTH_ROWS=20)
 */
import os from "node:os";
import pg from "pg";
import { PgDialect } from "drizzle-orm/pg-core";
import { fleetTotalsQuery, fleetTotalsScanQuery } from "../../core/metrics/fleetTotals.ts";
import { startTestStack } from "../../test/harness/testStack.ts";
import { quantile as q } from "../quantile.ts";

const SIZES = (process.env.BENCH_SIZES ?? "0,1000,10000").split(",").map(Number);
const HEALTH_ROWS = Number(process.env.BENCH_HEALTH_ROWS ?? 20);
const RUNS = 100;
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(" ");

async function timed(db: pg.Client, text: string, params: unknown[] = []) {
  const ms: number[] = [];
  for (let i = 0; i < 10; i++) await db.query(text, params);
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await db.query(text, params);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { p50: q(ms, 0.5), p95: q(ms, 0.95) };
}

async function main() {
  const stack = await startTestStack({ worker: "none" });
  const db = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
  await db.connect();
  try {
    const dialect = new PgDialect();
    const counters = dialect.sqlToQuery(fleetTotalsQuery());
    const scan = dialect.sqlToQuery(fleetTotalsScanQuery());
    const { rows: [cluster] } = await db.query("insert into clusters (name, webhook_secret_sealed, status) values ('bench-metrics', 'x', 'connected') returning id");
    console.log(`\nbench/fleet-scale/metricsQuery (${os.cpus().length} cores, ${HEALTH_ROWS} health rows per instance, ${new Date().toISOString()}, load ${load()})`);
    let have = 0;
    let named = 0;
    for (const size of SIZES) {
      if (size > have) {
        // Live instances in a mix of states, one deleted per ten live, each with HEALTH_ROWS reports 30 s apart.
        const { rows } = await db.query(`
          insert into instances (name, cluster_id, status, desired_state, deleted_at)
          select 'm-' || g, $1, (array['running','running','running','stopped','failed'])[1 + g % 5], 'running', case when g % 11 = 0 then now() end
          from generate_series($2::int, $3::int) g returning id`, [cluster.id, named, named + Math.round((size - have) * 1.1) - 1]);
        named += Math.round((size - have) * 1.1);
        await db.query(`
          insert into instance_health (instance_id, checked_at, state, live, ready, rss_bytes, heap_used_bytes, missing_node_types)
          select i.id, now() - g * interval '30 seconds', 'running', g % 7 <> 0, g % 5 <> 0, 80000000 + g, 40000000 + g,
                 case when g % 13 = 0 then '["x"]'::jsonb else '[]'::jsonb end
          from unnest($1::uuid[]) i(id) cross join generate_series(0, $2::int - 1) g`, [rows.map((r: { id: string }) => r.id), HEALTH_ROWS]);
        await db.query("vacuum analyze instances"); await db.query("vacuum analyze instance_health");
        have = size;
      }
      const live = (await db.query("select count(*)::int as n from instances where deleted_at is null")).rows[0].n;
      const base = await timed(db, "select 1");
      const line = async (label: string, q: { sql: string; params: unknown[] }) => {
        const t = await timed(db, q.sql, q.params);
        const plan = (await db.query(`explain (analyze, format json) ${q.sql}`, q.params)).rows[0]["QUERY PLAN"][0];
        console.log(`    ${label.padEnd(9)} p50 ${t.p50.toFixed(2).padStart(6)} ms  p95 ${t.p95.toFixed(2).padStart(6)} ms  ` +
          `(×${(t.p50 / base.p50).toFixed(1)} / ×${(t.p95 / base.p95).toFixed(1)} of select 1)  Postgres execution ${plan["Execution Time"].toFixed(2)} ms`);
        return (await db.query(q.sql, q.params)).rows[0];
      };
      console.log(`  ${live} live instances (select 1: p50 ${base.p50.toFixed(2)} ms, p95 ${base.p95.toFixed(2)} ms; load ${load()})`);
      const counted = await line("counters", counters);
      const scanned = await line("scan", scan);
      console.log(`    the two agree: ${JSON.stringify(counted) === JSON.stringify(scanned) ? "yes" : `NO\n      ${JSON.stringify(counted)}\n      ${JSON.stringify(scanned)}`}; reporting ${counted.reporting}`);
    }
    // What the counters cost a health sweep: one statement inserting a report for 1,000 live
    // instances (as applyHealthReport does), with the triggers and without, alternating.
    const { rows: ids } = await db.query("select id from instances where deleted_at is null limit 1000");
    const sweep = async () => {
      const t0 = performance.now();
      await db.query(`insert into instance_health (instance_id, checked_at, state, live, ready, rss_bytes, heap_used_bytes, missing_node_types)
        select id, now(), 'running', true, true, 80000000, 40000000, '[]'::jsonb from unnest($1::uuid[]) id`, [ids.map((r: { id: string }) => r.id)]);
      return performance.now() - t0;
    };
    const withTriggers: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < 10; i++) {
      withTriggers.push(await sweep());
      await db.query("alter table instance_health disable trigger instance_health_latest_ins");
      without.push(await sweep());
      await db.query("alter table instance_health enable trigger instance_health_latest_ins");
    }
    // And a status change of the same 1,000 in one statement (running ↔ stopped), with the instances trigger and without.
    const flip = async (i: number) => {
      const t0 = performance.now();
      await db.query("update instances set status = $2 where id = any($1::uuid[])", [ids.map((r: { id: string }) => r.id), i % 2 ? "running" : "stopped"]);
      return performance.now() - t0;
    };
    const flipWith: number[] = [];
    const flipWithout: number[] = [];
    for (let i = 0; i < 10; i++) {
      flipWith.push(await flip(2 * i));
      await db.query("alter table instances disable trigger fleet_counts_instances_upd");
      flipWithout.push(await flip(2 * i + 1));
      await db.query("alter table instances enable trigger fleet_counts_instances_upd");
    }
    await db.query("select fleet_counts_rebuild()");
    const med = (a: number[]) => q(a.sort((x, y) => x - y), 0.5);
    console.log(`  a ${ids.length}-instance health sweep insert: p50 ${med(withTriggers).toFixed(1)} ms with the counters' triggers, ${med(without).toFixed(1)} ms without; a status update of the same: p50 ${med(flipWith).toFixed(1)} ms with, ${med(flipWithout).toFixed(1)} ms without (load ${load()})`);
  } finally {
    await db.end();
    await stack.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
