/**
 * GET /api/metrics/fleet reads counters that triggers keep
 * (db/migrations/0020_fleet_counts.sql). After every kind of write that
 * moves a total — instance created, status reported, health reported (newer
 * and older than the latest), instance destroyed and hard-deleted, history
 * purged, cluster deleted — the counters equal a recount from the tables.
 * Both are read in one statement (one snapshot), so other suites writing at
 * the same time cannot make them differ.
 */
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { fleetTotalsQuery, fleetTotalsScanQuery } from "../../core/metrics/fleetTotals.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createUser, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
beforeAll(async () => { admin = await createUser("admin"); });

async function report(cluster: { id: string; webhookSecret: string }, body: unknown) {
  const text = JSON.stringify(body);
  const headers = await webhookHeaders(cluster.webhookSecret, text);
  const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
  expect(res.status).toBe(202);
}

/** The maintained totals and a recount from the tables, in one snapshot. */
async function countersAndRecount() {
  return withDb(async (db) => {
    const { rows: [r] } = await db.execute<{ counted: unknown; scanned: unknown }>(
      sql`select to_jsonb(a) as counted, to_jsonb(b) as scanned from (${fleetTotalsQuery()}) a, (${fleetTotalsScanQuery()}) b`);
    return r!;
  });
}
async function expectCountersRight(step: string) {
  const { counted, scanned } = await countersAndRecount();
  expect(counted, step).toEqual(scanned);
}

const sample = (instanceId: string, live: boolean, rss: number, at: number, missing: string[] = []) => ({
  instanceId, state: live ? "running" : "failed", live, ready: live, rssBytes: rss, heapUsedBytes: rss / 2, flowsState: "start",
  missingNodeTypes: missing, checkedAt: new Date(at).toISOString(),
});

describe("fleet metrics counters", () => {
  it("stay equal to a recount across create, status and health reports, destroy, purge and delete", async () => {
    await expectCountersRight("before");
    const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("fc") } })).body as { id: string; webhookSecret: string };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("fc"), clusterId: cluster.id } });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
    await expectCountersRight("instances created");

    await report(cluster, { type: "instance.status", instanceId: ids[0], state: "running" });
    await report(cluster, { type: "instance.status", instanceId: ids[1], state: "failed", reason: "crashed" });
    await expectCountersRight("status reported");

    const t = Date.now();
    await report(cluster, { type: "health.report", instances: [sample(ids[0]!, true, 100e6, t - 3000), sample(ids[1]!, false, 0, t - 3000, ["x"])] });
    await expectCountersRight("first health reports");
    // A newer report replaces the latest; an older one (late delivery) does not.
    await report(cluster, { type: "health.report", instances: [sample(ids[0]!, false, 50e6, t - 1000), sample(ids[2]!, true, 70e6, t - 1000)] });
    await report(cluster, { type: "health.report", instances: [sample(ids[0]!, true, 999e6, t - 5000)] });
    await expectCountersRight("newer and older health reports");
    const fleet = await api("GET", "/api/metrics/fleet", { token: admin.token });
    expect(fleet.status).toBe(200);
    expect(fleet.body.health.reporting).toBeGreaterThanOrEqual(3);

    await withDb(async (db) => {
      // Destroyed (what the bridge's confirmation of a destroy does), then purged history, then a hard delete.
      await db.execute(sql`update instances set deleted_at = now(), status = 'stopped', desired_state = 'destroyed' where id = ${ids[1]}`);
      await db.execute(sql`delete from instance_health where instance_id = ${ids[0]} and checked_at > ${new Date(t - 2000)}`);
      await db.execute(sql`delete from instance_health where instance_id = ${ids[2]}`);
    });
    await expectCountersRight("destroyed one, purged the latest report of another, all reports of a third");

    await withDb(async (db) => {
      await db.execute(sql`delete from ai_decision_logs where instance_id in (${ids[0]}, ${ids[1]}, ${ids[2]})`);
      await db.execute(sql`delete from instances where id in (${ids[0]}, ${ids[1]}, ${ids[2]})`);
      await db.execute(sql`update clusters set deleted_at = now() where id = ${cluster.id}`);
    });
    await expectCountersRight("instances hard-deleted, cluster deleted");
  });

  it("writers never wait on one another's counter rows, and a compaction beside them keeps the totals", async () => {
    const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("fc") } })).body as { id: string; webhookSecret: string };
    // 16 creations and 16 status reports at once, two compactions among them: with shared counter rows
    // updated in different orders this could deadlock (Postgres aborts one: a 500); appended deltas cannot.
    const created = await Promise.all(Array.from({ length: 16 }, () =>
      api("POST", "/api/instances", { token: admin.token, body: { name: unique("fcc"), clusterId: cluster.id } })));
    expect(created.map((r) => r.status)).toEqual(Array(16).fill(201));
    const ids = created.map((r) => r.body.id as string);
    await Promise.all([
      ...ids.map((id, i) => report(cluster, { type: "instance.status", instanceId: id, state: i % 2 ? "running" : "failed", reason: "test" })),
      withDb((db) => db.execute(sql`select fleet_counts_compact()`)),
      withDb((db) => db.execute(sql`select fleet_counts_compact()`)),
    ]);
    await expectCountersRight("after concurrent writes and compactions");
    await withDb((db) => db.execute(sql`select fleet_counts_compact()`));
    await expectCountersRight("after a compaction");
    // Compacted, there is at most one row per key: the read stays a few dozen rows.
    const { rows: [c] } = await withDb((db) => db.execute<{ rows: number; keys: number }>(
      sql`select count(*)::int as rows, count(distinct (dim, key))::int as keys from fleet_counts`));
    expect(c!.rows).toBeLessThanOrEqual(c!.keys + 64);
  });
});
