/**
 * A second rollout over instances another one still owns, or that a
 * deployment is changing, is refused up front (409 with a code and the
 * conflicting rollout or deployment), before anything is written or sent;
 * two concurrent starts over one group cannot both pass; once the first has
 * ended the same request is accepted.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { api, createUser, expectErrorShape, unique, type TestUser } from "./helpers.ts";
import { fleetBridge } from "./rolloutFleet.ts";

let admin: TestUser;
let viewer: TestUser;
const WAIT = { timeout: 90_000, interval: 200 };
const FLOWS_V2 = [{ id: "t1", type: "tab", label: "v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];
const FAST = { analysisSeconds: 0, rollbackWindowSeconds: 0 };

const post = (body: Record<string, unknown>) => api("POST", "/api/rollouts", { token: admin.token, body: { flows: FLOWS_V2, deployment: FAST, ...body } });
const getRollout = async (id: string) => (await api("GET", `/api/rollouts/${id}`, { token: viewer.token })).body;
const rolloutsWith = async (selector: string) =>
  (await api("GET", "/api/rollouts?limit=200", { token: viewer.token })).body.items.filter((r: any) => r.selector === selector);

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
});

describe("overlapping rollouts", { timeout: 240_000 }, () => {
  it("a rollout over instances an active rollout owns (planned, or a late joiner still to come) is 409 rollout_conflict naming it; nothing starts; accepted once it ended", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    const ids = [await bridge.instance({ env: env1 }, "hold"), await bridge.instance({ env: env1 }, "hold"), await bridge.instance({ env: env1 }, "hold")];
    const first = await post({ selector: `env=${env1}`, waves: [1, "100%"], parallelism: 1 });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    const a = first.body;
    await vi.waitFor(async () => expect((await getRollout(a.id)).waves[0].instances[0].deploymentId).toBeTruthy(), WAIT);
    const deploymentCommands = () => bridge.commands.filter((c) => c.type !== "instance.create").length;
    const commandsBefore = deploymentCommands();

    // The same group, and a selector that picks one of it.
    const same = await post({ selector: `env=${env1}` });
    expect(same.status).toBe(409);
    expectErrorShape(same.body, "rollout_conflict");
    expect(same.body.error.details).toMatchObject({ rolloutId: a.id, rolloutStatus: "running", overlapping: 3 });
    expect([...same.body.error.details.instanceIds].sort()).toEqual([...ids].sort());
    const second = a.waves[1].instances[0].instanceId;
    await api("PATCH", `/api/instances/${second}`, { token: admin.token, body: { labels: { pick: "one" } } });
    const one = await post({ selector: "pick=one" });
    expect(one.status).toBe(409);
    expectErrorShape(one.body, "rollout_conflict");
    expect(one.body.error.details).toMatchObject({ rolloutId: a.id, overlapping: 1, instanceIds: [second] });

    // Joins the group while it runs: it will get this rollout's version after its last wave, so it is taken too.
    const late = await bridge.instance({ env: env1, late: "yes" });
    const joiner = await post({ selector: "late=yes" });
    expect(joiner.status).toBe(409);
    expectErrorShape(joiner.body, "rollout_conflict");
    expect(joiner.body.error.details).toMatchObject({ rolloutId: a.id, instanceIds: [late] });

    // Refused whole: no rollout row, no command sent.
    expect(await rolloutsWith(`env=${env1}`)).toHaveLength(1);
    expect(await rolloutsWith("pick=one")).toHaveLength(0);
    expect(deploymentCommands()).toBe(commandsBefore);

    // Ended (aborted, its running deployment finished): the same request is accepted.
    expect((await api("POST", `/api/rollouts/${a.id}/abort`, { token: admin.token })).status).toBe(202);
    for (const id of ids) await bridge.setMode(id, "auto");
    await vi.waitFor(async () => {
      const r = await getRollout(a.id);
      const d = r.waves[0].instances[0].deploymentId ? (await api("GET", `/api/deployments/${r.waves[0].instances[0].deploymentId}`, { token: viewer.token })).body : null;
      expect(r.summary.pending, JSON.stringify({ status: r.status, d: d && { status: d.status, phase: d.phase, attention: d.attention, error: d.error }, cmds: bridge.commands.filter((c) => c.instanceId === r.waves[0].instances[0].instanceId).map((c) => c.type) })).toBe(0);
    }, WAIT);
    const after = await post({ selector: `env=${env1}`, waves: ["100%"], parallelism: 4 });
    expect(after.status, JSON.stringify(after.body)).toBe(202);
    await vi.waitFor(async () => expect((await getRollout(after.body.id)).status).toBe("completed"), WAIT);
  });

  it("a rollout over an instance a deployment is changing is 409 deployment_in_progress naming it; two concurrent starts over one group: one passes", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    const busy = await bridge.instance({ env: env1 }, "hold");
    await bridge.instance({ env: env1 });
    const dep = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: busy, flows: FLOWS_V2, ...FAST } });
    expect(dep.status, JSON.stringify(dep.body)).toBe(202);
    const refused = await post({ selector: `env=${env1}` });
    expect(refused.status).toBe(409);
    expectErrorShape(refused.body, "deployment_in_progress");
    expect(refused.body.error.details).toMatchObject({ deploymentId: dep.body.id, instanceId: busy, overlapping: 1 });
    expect(await rolloutsWith(`env=${env1}`)).toHaveLength(0);
    await bridge.setMode(busy, "auto");
    await vi.waitFor(async () => expect((await api("GET", `/api/deployments/${dep.body.id}`, { token: viewer.token })).body.status).toBe("completed"), WAIT);

    const both = await Promise.all([post({ selector: `env=${env1}`, waves: ["100%"] }), post({ selector: `env=${env1}`, waves: ["100%"] })]);
    expect(both.map((r) => r.status).sort()).toEqual([202, 409]);
    const loser = both.find((r) => r.status === 409)!;
    expectErrorShape(loser.body, "rollout_conflict");
    expect(loser.body.error.details.rolloutId).toBe(both.find((r) => r.status === 202)!.body.id);
  });

  it("right after a rollout completed, while its deployments still wait out their rollback window, the next rollout is accepted and deploys once they end", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    await bridge.instance({ env: env1 }); await bridge.instance({ env: env1 });
    // A rollback window of 4 s: the first rollout counts each instance done at CLEANUP, before its deployment ends.
    const first = await post({ selector: `env=${env1}`, waves: ["100%"], parallelism: 2, deployment: { analysisSeconds: 0, rollbackWindowSeconds: 4 } });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    await vi.waitFor(async () => expect((await getRollout(first.body.id)).status).toBe("completed"), WAIT);
    const previous = (await getRollout(first.body.id)).waves[0].instances.map((i: any) => i.deploymentId);
    const cleaning = await Promise.all(previous.map(async (id: string) => (await api("GET", `/api/deployments/${id}`, { token: viewer.token })).body));
    const next = await post({ selector: `env=${env1}`, waves: ["100%"], parallelism: 2 });
    expect(next.status, JSON.stringify(next.body)).toBe(202);
    const done = await vi.waitFor(async () => {
      const r = await getRollout(next.body.id);
      expect(r.status).toBe("completed");
      return r;
    }, WAIT);
    expect(done.summary.failed).toBe(0);
    // Had the first rollout's deployments still been in CLEANUP when the second one was asked for, it would have been refused before.
    console.info(`previous deployments at the second start: ${cleaning.map((d: any) => `${d.status}/${d.phase}`).join(", ")}`);
  });
});
