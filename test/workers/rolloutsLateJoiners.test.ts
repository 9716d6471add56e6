/**
 * Late joiners, explicitly (docs/rollouts.md, "Late joiners"): instances that
 * match the selector after the selection was taken get one more wave after the
 * planned ones; one that is not running is shown skipped with
 * `instance_not_running`, one another rollout has is shown skipped with
 * `rollout_conflict` naming it; the view's `lateJoiners` says when the check
 * ran and what it found; an instance that matches only after the check is not
 * followed; with "ignore" nothing is checked.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { api, createUser, unique, type TestUser } from "./helpers.ts";
import { fleetBridge } from "./rolloutFleet.ts";

let admin: TestUser;
let viewer: TestUser;
const WAIT = { timeout: 120_000, interval: 250 };
const FLOWS_V2 = [{ id: "t1", type: "tab", label: "v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];
const FAST = { analysisSeconds: 0, rollbackWindowSeconds: 0 };

const post = async (body: Record<string, unknown>) => {
  const res = await api("POST", "/api/rollouts", { token: admin.token, body: { flows: FLOWS_V2, deployment: FAST, ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
};
const getRollout = async (id: string) => (await api("GET", `/api/rollouts/${id}`, { token: viewer.token })).body;
const hasStatus = (id: string, status: string) => async () => {
  const r = await getRollout(id);
  expect(r.status, JSON.stringify({ status: r.status, waves: r.waves.map((w: any) => w.instances) })).toBe(status);
  return r;
};

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
});

describe("late joiners", { timeout: 300_000 }, () => {
  it("after_completion: a running joiner gets a last wave; one not running and one another rollout has are shown skipped with their codes; one after the check is not followed", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    await bridge.instance({ env: env1 });
    await bridge.instance({ env: env1 });
    const a = await post({ selector: `env=${env1}`, waves: [1, "100%"], parallelism: 2, pause: { kind: "approval" } });
    expect(a.lateJoiners).toEqual({ policy: "after_completion", checkedAt: null, added: 0, skipped: 0 });
    await vi.waitFor(hasStatus(a.id, "awaiting_approval"), WAIT);

    // Join while it waits: one running, one whose cluster has no bridge (never running), one another rollout takes first.
    const running = await bridge.instance({ env: env1 });
    const idle = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("idle") } })).body;
    const notRunning = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("idle"), clusterId: idle.id, labels: { env: env1 } } })).body.id;
    const tag = unique("x");
    const taken = await bridge.instance({ x: tag }, "hold");
    const b = await post({ selector: `x=${tag}`, waves: ["100%"] });
    await vi.waitFor(async () => expect((await getRollout(b.id)).waves[0].instances[0].status).toBe("deploying"), WAIT);
    expect((await api("PATCH", `/api/instances/${taken}`, { token: admin.token, body: { labels: { env: env1 } } })).status).toBe(200);

    expect((await api("POST", `/api/rollouts/${a.id}/approve`, { token: admin.token })).status).toBe(202);
    const done = await vi.waitFor(hasStatus(a.id, "completed"), WAIT);
    const late = done.waves[2];
    expect(late).toMatchObject({ lateJoiners: true, status: "completed", target: 5 });
    const byId = new Map<string, any>(late.instances.map((i: any) => [i.instanceId, i]));
    expect(byId.get(running)).toMatchObject({ status: "completed" });
    expect(byId.get(notRunning)).toMatchObject({ status: "skipped", code: "instance_not_running" });
    expect(byId.get(taken)).toMatchObject({ status: "skipped", code: "rollout_conflict" });
    expect(byId.get(taken).reason).toContain(b.id);
    expect(done.lateJoiners).toMatchObject({ policy: "after_completion", added: 3, skipped: 2 });
    expect(Date.parse(done.lateJoiners.checkedAt)).toBeGreaterThanOrEqual(Date.parse(done.waves[1].completedAt));
    // Skipped joiners did not count against the budget (0): the rollout completed.
    expect(done.summary).toMatchObject({ total: 5, completed: 3, failed: 0, pending: 0 });

    // Joins after the check: not followed (the view says when the check ran; a new rollout covers it).
    const after = await bridge.instance({ env: env1 });
    const again = await getRollout(a.id);
    expect(again.waves).toHaveLength(3);
    expect(again.waves.flatMap((w: any) => w.instances.map((i: any) => i.instanceId))).not.toContain(after);
    await bridge.setMode(taken, "auto");
  });

  it("ignore: no late wave, and the view says the check does not run", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    await bridge.instance({ env: env1 });
    const a = await post({ selector: `env=${env1}`, waves: [1], pause: { kind: "approval" }, lateJoiners: "ignore" });
    const joined = await bridge.instance({ env: env1 });
    const done = await vi.waitFor(hasStatus(a.id, "completed"), WAIT);
    expect(done.waves).toHaveLength(1);
    expect(done.waves[0].instances.map((i: any) => i.instanceId)).not.toContain(joined);
    expect(done.lateJoiners).toEqual({ policy: "ignore", checkedAt: null, added: 0, skipped: 0 });
  });
});
