/**
 * Labels, selectors and rollouts through the API, with a scripted bridge on
 * the cluster link that answers every deployment step as a real one would
 * (each instance can be told to fail its smoke test, or to hold its answers):
 * selector validation and ?selector=, waves and late joiners, the failure
 * budget stopping a wave and rolling it back, pause / resume / approve /
 * abort, RBAC, /ws/rollouts/:id, and a RolloutRun restarted mid-wave that
 * resumes from storage.
 */
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { auditLogs, instances } from "../../db/schema.ts";
import { api, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";
import { fleetBridge as fleetBridgeOf } from "./rolloutFleet.ts";

let admin: TestUser;
let operator: TestUser;
let viewer: TestUser;

/** Generous: the Worker shares 2 cores with other suites, and each instance's deployment is ~8 round trips. */
const WAIT = { timeout: 90_000, interval: 100 };
const FLOWS_V2 = [{ id: "t1", type: "tab", label: "v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];
/** Fast per-instance deployments: no analysis wait; the rollback window is what a wave rollback uses. */
const FAST = { analysisSeconds: 0, rollbackWindowSeconds: 120 };

async function startRollout(body: Record<string, unknown>, token = admin.token) {
  const res = await api("POST", "/api/rollouts", { token, body: { flows: FLOWS_V2, deployment: FAST, ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

const fleetBridge = () => fleetBridgeOf(admin);
const getRollout = async (id: string) => (await api("GET", `/api/rollouts/${id}`, { token: viewer.token })).body;

/** The rollout once `check` holds (for vi.waitFor). */
const until = (id: string, check: (r: any) => boolean, what: string) => async () => {
  const r = await getRollout(id);
  expect(check(r), `rollout ${id} never ${what}: ${JSON.stringify({ status: r.status, waves: r.waves?.map((w: any) => [w.status, w.instances.map((i: any) => i.status)]), failure: r.failure })}`).toBe(true);
  return r;
};
const hasStatus = (id: string, status: string) => until(id, (r) => r.status === status, `became ${status}`);

beforeAll(async () => {
  admin = await createUser("admin");
  operator = await createUser("operator");
  viewer = await createUser("viewer");
});

describe("labels and selectors", { timeout: 180_000 }, () => {
  it("labels are set at create, patched (null removes), validated, and selected with ?selector= in SQL", async () => {
    const bridge = await fleetBridge();
    const env1 = unique("env");
    const a = await bridge.instance({ env: env1, region: "eu", "redforge.io/tier": "edge" });
    const b = await bridge.instance({ env: env1, region: "us" });
    const c = await bridge.instance({ env: env1 });
    const got = (await api("GET", `/api/instances/${a}`, { token: viewer.token })).body;
    expect(got.labels).toEqual({ env: env1, region: "eu", "redforge.io/tier": "edge" });

    const select = async (selector: string) => {
      const res = await api("GET", `/api/instances?limit=2&selector=${encodeURIComponent(selector)}`, { token: viewer.token });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      // Keyset pagination still works with a selector: follow the cursor.
      const ids = res.body.items.map((i: any) => i.id);
      if (res.body.nextCursor) {
        const next = await api("GET", `/api/instances?limit=2&selector=${encodeURIComponent(selector)}&cursor=${res.body.nextCursor}`, { token: viewer.token });
        ids.push(...next.body.items.map((i: any) => i.id));
      }
      return ids.sort();
    };
    expect(await select(`env=${env1}`)).toEqual([a, b, c].sort());
    expect(await select(`env=${env1},region in (eu,us)`)).toEqual([a, b].sort());
    expect(await select(`env=${env1},region notin (eu)`)).toEqual([b, c].sort());
    expect(await select(`env=${env1},!region`)).toEqual([c]);
    expect(await select(`env=${env1},region,region!=us`)).toEqual([a]);
    expect(await select(`env=${env1},redforge.io/tier=edge`)).toEqual([a]);

    const patched = await api("PATCH", `/api/instances/${a}`, { token: admin.token, body: { labels: { region: null, role: "gw" } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.labels).toEqual({ env: env1, "redforge.io/tier": "edge", role: "gw" });
    expect(await select(`env=${env1},!region`)).toEqual([a, c].sort());

    const badLabel = await api("PATCH", `/api/instances/${a}`, { token: admin.token, body: { labels: { "bad key": "x" } } });
    expect(badLabel.status).toBe(400);
    expectErrorShape(badLabel.body, "validation_failed");
    const badSelector = await api("GET", `/api/instances?selector=${encodeURIComponent("env=prod,region in eu")}`, { token: viewer.token });
    expect(badSelector.status).toBe(400);
    expectErrorShape(badSelector.body, "invalid_selector");
    expect(badSelector.body.error.details.position).toBe(19);

    const audit = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, a)));
    expect(audit.find((r) => r.action === "INSTANCE_UPDATED")?.details).toMatchObject({ labels: { role: "gw" } });
  });

  it("a rollout's selector is validated (400 with the position), must pick someone (409), and its waves must cover the selection (422); a viewer cannot start one", async () => {
    const bridge = await fleetBridge();
    const env1 = unique("env");
    await bridge.instance({ env: env1 });
    await bridge.instance({ env: env1 });
    const bad = await api("POST", "/api/rollouts", { token: admin.token, body: { selector: "env in (a", flows: FLOWS_V2 } });
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "invalid_selector");
    expect(bad.body.error.details.position).toBe(9);
    const empty = await api("POST", "/api/rollouts", { token: admin.token, body: { selector: `env=${unique("nobody")}`, flows: FLOWS_V2 } });
    expect(empty.status).toBe(409);
    expectErrorShape(empty.body, "empty_selection");
    const both = await api("POST", "/api/rollouts", { token: admin.token, body: { selector: `env=${env1}`, flows: FLOWS_V2, versionId: crypto.randomUUID() } });
    expect(both.status).toBe(400);
    const short = await api("POST", "/api/rollouts", { token: admin.token, body: { selector: `env=${env1}`, flows: FLOWS_V2, waves: [1] } });
    expect(short.status).toBe(422);
    expectErrorShape(short.body, "waves_incomplete");
    const badWave = await api("POST", "/api/rollouts", { token: admin.token, body: { selector: `env=${env1}`, flows: FLOWS_V2, waves: [0] } });
    expect(badWave.status).toBe(400);
    // Refused at once (the instance never ran: its cluster has no bridge): the instance fails with the refusal's
    // code inside the start, the budget (0) is exceeded, and the rollout ends failed without touching anything.
    const idle = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("idle") } })).body;
    const env2 = unique("env");
    expect((await api("POST", "/api/instances", { token: admin.token, body: { name: unique("idle"), clusterId: idle.id, labels: { env: env2 } } })).status).toBe(201);
    const refused = await startRollout({ selector: `env=${env2}` });
    expect(refused).toMatchObject({ status: "failed", failure: { code: "failure_budget_exceeded" } });
    expect(refused.waves[0].instances[0]).toMatchObject({ status: "failed", code: "instance_not_running", deploymentId: null });
    const denied = await api("POST", "/api/rollouts", { token: viewer.token, body: { selector: `env=${env1}`, flows: FLOWS_V2 } });
    expect(denied.status).toBe(403);
    const list = await api("GET", "/api/rollouts", { token: viewer.token });
    expect(list.status).toBe(200);
  });
});

describe("rollouts", { timeout: 240_000 }, () => {
  it("waves with an approval pause, pause / resume / approve, a late joiner after completion; audited, listed and streamed", async () => {
    const bridge = await fleetBridge();
    const env1 = unique("env");
    const ids = [await bridge.instance({ env: env1 }), await bridge.instance({ env: env1 }), await bridge.instance({ env: env1 })];
    const rollout = await startRollout({ selector: `env=${env1}`, waves: [1, "100%"], parallelism: 2, pause: { kind: "approval" } }, operator.token);
    expect(rollout).toMatchObject({ status: "running", selector: `env=${env1}`, summary: { total: 3 } });
    expect(rollout.waves.map((w: any) => [w.target, w.instances.length])).toEqual([[1, 1], [3, 2]]);

    const ws = (await SELF.fetch(`http://redforge.test/ws/rollouts/${rollout.id}?token=${viewer.token}`, { headers: { Upgrade: "websocket" } })).webSocket!;
    const events: any[] = [];
    ws.addEventListener("message", (e) => events.push(JSON.parse(e.data as string)));
    ws.accept();

    const waiting = await vi.waitFor(hasStatus(rollout.id, "awaiting_approval"), WAIT);
    expect(waiting.waves[0].status).toBe("completed");
    expect(waiting.waves[1].instances.every((i: any) => i.status === "pending")).toBe(true);
    expect(events[0].event).toBe("rollout:state");

    // A viewer may not act; pause holds the approval; approve needs it resumed first.
    expect((await api("POST", `/api/rollouts/${rollout.id}/approve`, { token: viewer.token })).status).toBe(403);
    const paused = await api("POST", `/api/rollouts/${rollout.id}/pause`, { token: operator.token });
    expect(paused.status).toBe(202);
    expect(paused.body.status).toBe("paused");
    const early = await api("POST", `/api/rollouts/${rollout.id}/approve`, { token: operator.token });
    expect(early.status).toBe(409);
    expectErrorShape(early.body, "not_awaiting_approval");
    expect((await api("POST", `/api/rollouts/${rollout.id}/resume`, { token: operator.token })).body.status).toBe("awaiting_approval");

    // Joins the group while the rollout runs: it gets the version after the planned waves.
    const late = await bridge.instance({ env: env1 });
    const approved = await api("POST", `/api/rollouts/${rollout.id}/approve`, { token: operator.token });
    expect(approved.status).toBe(202);
    const done = await vi.waitFor(hasStatus(rollout.id, "completed"), WAIT);
    expect(done.waves.map((w: any) => w.status)).toEqual(["completed", "completed", "completed"]);
    expect(done.waves[2]).toMatchObject({ lateJoiners: true, target: 4, instances: [{ instanceId: late, status: "completed" }] });
    expect(done.summary).toEqual({ total: 4, completed: 4, failed: 0, pending: 0 });
    const flows = await withDb((db) => Promise.all([...ids, late].map(async (id) => (await db.select().from(instances).where(eq(instances.id, id)))[0]!.flows)));
    for (const f of flows) expect(f).toEqual(FLOWS_V2);

    await vi.waitFor(() => expect(events.some((e) => e.event === "rollout:state" && e.data.status === "completed")).toBe(true), WAIT);
    expect(events.some((e) => e.event === "rollout:instance" && e.data.instanceId === late && e.data.status === "completed")).toBe(true);
    expect(events.some((e) => e.event === "rollout:wave" && e.data.index === 1 && e.data.status === "completed")).toBe(true);
    ws.close();

    const list = (await api("GET", "/api/rollouts?status=completed&limit=200", { token: viewer.token })).body.items;
    expect(list.find((r: any) => r.id === rollout.id)).toMatchObject({ status: "completed", waveCount: 3, summary: { total: 4, completed: 4 } });
    const audit = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, rollout.id)));
    expect(audit.map((r) => r.action)).toEqual(expect.arrayContaining(["ROLLOUT_STARTED", "ROLLOUT_PAUSED", "ROLLOUT_RESUMED", "ROLLOUT_APPROVED", "ROLLOUT_COMPLETED"]));
    expect(audit.find((r) => r.action === "ROLLOUT_STARTED")!.userId).toBe(operator.id);
  });

  it("a wave over its failure budget stops the rollout and rolls the wave's switched instances back (rollback_wave)", async () => {
    const bridge = await fleetBridge();
    const env1 = unique("env");
    const good = [await bridge.instance({ env: env1 }), await bridge.instance({ env: env1 })];
    const bad = await bridge.instance({ env: env1 }, "fail-smoke");
    const rollout = await startRollout({ selector: `env=${env1}`, waves: ["100%"], parallelism: 3, failureBudget: { maxFailedInstances: 0 } });
    const failed = await vi.waitFor(hasStatus(rollout.id, "failed"), WAIT);
    expect(failed.failure).toMatchObject({ code: "failure_budget_exceeded", message: expect.stringMatching(/1 of 3 instances failed.*rolled back/) });
    expect(failed.waves[0].status).toBe("rolled_back");
    const byId = new Map(failed.waves[0].instances.map((i: any) => [i.instanceId, i]));
    expect(byId.get(bad)).toMatchObject({ status: "failed", code: "smoke_failed" });
    for (const id of good) expect(byId.get(id)).toMatchObject({ status: "rolled_back" });
    // Blue serves again: the instances' records say their old flows (written as each deployment's rollback ends).
    await vi.waitFor(async () => {
      const rows = await withDb((db) => Promise.all(good.map(async (id) => (await db.select().from(instances).where(eq(instances.id, id)))[0]!)));
      for (const r of rows) expect(r.flows).toEqual([]);
    }, WAIT);
    expect(bridge.commands.filter((c) => c.type === "deployment.rollback").map((c) => c.instanceId).sort()).toEqual([...good, bad].sort());
  });

  it("with onFailure \"leave\" a wave over a percentage budget stops the rollout and keeps its switched instances on the new version", async () => {
    const bridge = await fleetBridge();
    const env1 = unique("env");
    const a = await bridge.instance({ env: env1 });
    const b = await bridge.instance({ env: env1 }, "fail-smoke");
    const c = await bridge.instance({ env: env1 }, "fail-smoke");
    const rollout = await startRollout({ selector: `env=${env1}`, waves: ["100%"], parallelism: 3, failureBudget: { maxFailedPercent: 50 }, onFailure: "leave" });
    const failed = await vi.waitFor(hasStatus(rollout.id, "failed"), WAIT);
    expect(failed.waves[0].status).toBe("failed");
    const statuses = new Map(failed.waves[0].instances.map((i: any) => [i.instanceId, i.status]));
    expect(statuses.get(b)).toBe("failed");
    expect(statuses.get(c)).toBe("failed");
    // Left on the new version: no rollback was asked for the one that switched.
    expect(statuses.get(a)).toBe("completed");
    expect(bridge.commands.filter((x) => x.type === "deployment.rollback").map((x) => x.instanceId).sort()).toEqual([b, c].sort());
  });

  it("abort skips what has not started; a RolloutRun restarted mid-wave resumes from storage on its alarm", async () => {
    const bridge = await fleetBridge();
    const env1 = unique("env");
    const ids = [await bridge.instance({ env: env1 }, "hold"), await bridge.instance({ env: env1 }, "hold")];
    const rollout = await startRollout({ selector: `env=${env1}`, waves: [1, "100%"], parallelism: 1 });
    const first = rollout.waves[0].instances[0].instanceId;
    await vi.waitFor(until(rollout.id, (r) => r.waves[0].instances[0].status === "deploying" && Boolean(r.waves[0].instances[0].deploymentId), "started wave 1"), WAIT);

    // Restart the object: its in-memory state is gone; storage and the alarm remain.
    const stub = env.ROLLOUTS.get(env.ROLLOUTS.idFromName(rollout.id));
    await runInDurableObject(stub, (_obj, state) => { state.abort("test: restart"); }).catch(() => {});
    await bridge.setMode(first, "auto");
    await vi.waitFor(async () => {
      await runDurableObjectAlarm(stub).catch(() => false);
      return until(rollout.id, (r) => r.waves[1].status === "running", "moved on to wave 2 after the restart")();
    }, WAIT);

    const aborted = await api("POST", `/api/rollouts/${rollout.id}/abort`, { token: operator.token });
    expect(aborted.status, JSON.stringify(aborted.body)).toBe(202);
    expect(aborted.body).toMatchObject({ status: "aborted", failure: { code: "operator_abort" } });
    const again = await api("POST", `/api/rollouts/${rollout.id}/abort`, { token: operator.token });
    expect(again.status).toBe(409);
    expectErrorShape(again.body, "not_abortable");
    // What was already deploying finishes and is recorded; nothing new starts.
    const second = ids.find((id) => id !== first)!;
    await bridge.setMode(second, "auto");
    const settled = await vi.waitFor(until(rollout.id, (r) => r.summary.pending === 0, "settled"), WAIT);
    expect(settled.status).toBe("aborted");
    expect(settled.waves[0].instances[0].status).toBe("completed");
    expect(["completed", "skipped"]).toContain(settled.waves[1].instances[0].status);
    const audit = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, rollout.id)));
    expect(audit.map((r) => r.action)).toContain("ROLLOUT_ABORTED");
  });
});
