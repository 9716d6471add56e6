/**
 * A single deployment (POST /api/deployments) on an instance an active
 * rollout has in hand is refused with 409 rollout_in_progress naming the
 * rollout, while the rollout's own deployments go on; once the rollout has let
 * go of the instance (its wave is over, or the rollout ended) the same request
 * is accepted. An instance destroyed while its wave deploys it is let go
 * (`skipped`, `instance_destroyed`) and the rollout completes instead of
 * waiting on a deployment whose runtime is gone.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { api, createUser, expectErrorShape, unique, type TestUser } from "./helpers.ts";
import { fleetBridge } from "./rolloutFleet.ts";

let admin: TestUser;
let viewer: TestUser;
const WAIT = { timeout: 90_000, interval: 200 };
const FLOWS_V2 = [{ id: "t1", type: "tab", label: "v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];
const FLOWS_MINE = [{ id: "t1", type: "tab", label: "an operator's own" }];
const FAST = { analysisSeconds: 0, rollbackWindowSeconds: 0 };

const getRollout = async (id: string) => (await api("GET", `/api/rollouts/${id}`, { token: viewer.token })).body;
const deploy = (instanceId: string) => api("POST", "/api/deployments", { token: admin.token, body: { instanceId, flows: FLOWS_MINE, ...FAST } });

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
});

describe("single deployments beside a rollout", { timeout: 240_000 }, () => {
  it("POST /api/deployments on an instance a rollout's wave deploys, will deploy, or takes as a late joiner is 409 rollout_in_progress naming it; accepted once the rollout let go", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    for (let k = 0; k < 3; k++) await bridge.instance({ env: env1 }, "hold");
    const started = await api("POST", "/api/rollouts", {
      token: admin.token,
      body: { selector: `env=${env1}`, flows: FLOWS_V2, deployment: FAST, waves: [1, "100%"], parallelism: 1, pause: { kind: "approval" } },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const r = started.body;
    const first = r.waves[0].instances[0].instanceId as string;
    const later = r.waves[1].instances.map((i: any) => i.instanceId as string);
    await vi.waitFor(async () => expect((await getRollout(r.id)).waves[0].instances[0].deploymentId).toBeTruthy(), WAIT);
    const commandsBefore = bridge.commands.length;

    // Being deployed by wave 1.
    const deploying = await deploy(first);
    expect(deploying.status, JSON.stringify(deploying.body)).toBe(409);
    expectErrorShape(deploying.body, "rollout_in_progress");
    expect(deploying.body.error.details).toMatchObject({ rolloutId: r.id, rolloutStatus: "running", instanceId: first, wave: 0, waveStatus: "running", instanceStatus: "deploying" });
    // Still to come in wave 2.
    const coming = await deploy(later[0]);
    expect(coming.status).toBe(409);
    expectErrorShape(coming.body, "rollout_in_progress");
    expect(coming.body.error.details).toMatchObject({ rolloutId: r.id, instanceId: later[0], wave: 1, waveStatus: "pending", instanceStatus: "pending" });
    // Joined the selection meanwhile: the rollout deploys it after its last wave.
    const joiner = await bridge.instance({ env: env1 });
    const late = await deploy(joiner);
    expect(late.status).toBe(409);
    expectErrorShape(late.body, "rollout_in_progress");
    expect(late.body.error.details).toMatchObject({ rolloutId: r.id, instanceId: joiner, lateJoiner: true });
    // An instance outside the selector is not the rollout's business.
    const outsider = await bridge.instance({ env: unique("other") });
    const free = await deploy(outsider);
    expect(free.status, JSON.stringify(free.body)).toBe(202);
    // Nothing was sent for the refused ones (only the outsider's deployment and the joiner's creation).
    expect(bridge.commands.slice(commandsBefore).filter((c) => c.instanceId !== outsider && c.type !== "instance.create")).toHaveLength(0);

    // The rollout's own deployment went on: wave 1 completes, and its instance is free again while wave 2 waits.
    await bridge.setMode(first, "auto");
    await vi.waitFor(async () => expect((await getRollout(r.id)).status).toBe("awaiting_approval"), WAIT);
    const afterWave = await deploy(first);
    expect(afterWave.status, JSON.stringify(afterWave.body)).toBe(202);
    expect((await deploy(later[1])).status).toBe(409);

    // Aborted: nothing is held any more.
    expect((await api("POST", `/api/rollouts/${r.id}/abort`, { token: admin.token })).status).toBe(202);
    await vi.waitFor(async () => expect((await getRollout(r.id)).status).toBe("aborted"), WAIT);
    for (const id of later) await bridge.setMode(id, "auto");
    const afterAbort = await deploy(later[1]);
    expect(afterAbort.status, JSON.stringify(afterAbort.body)).toBe(202);
  });

  it("an instance destroyed while its wave deploys it is skipped with instance_destroyed, outside the budget, and the rollout completes", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    for (let k = 0; k < 3; k++) await bridge.instance({ env: env1 }, "hold");
    const started = await api("POST", "/api/rollouts", {
      token: admin.token,
      body: { selector: `env=${env1}`, flows: FLOWS_V2, deployment: FAST, waves: ["100%"], parallelism: 3, failureBudget: { maxFailedInstances: 0 } },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const r = started.body;
    const ids = r.waves[0].instances.map((i: any) => i.instanceId as string);
    await vi.waitFor(async () => expect((await getRollout(r.id)).waves[0].instances.every((i: any) => i.deploymentId)).toBe(true), WAIT);

    // Its deployment's commands are never answered (the runtime is gone): without letting it go the wave would wait
    // for that deployment's step deadlines.
    const destroyed = await api("DELETE", `/api/instances/${ids[0]}`, { token: admin.token });
    expect(destroyed.status, JSON.stringify(destroyed.body)).toBe(202);
    for (const id of ids.slice(1)) await bridge.setMode(id, "auto");
    const done = await vi.waitFor(async () => {
      const now = await getRollout(r.id);
      expect(now.status).toBe("completed");
      return now;
    }, WAIT);
    const gone = done.waves[0].instances.find((i: any) => i.instanceId === ids[0]);
    expect(gone).toMatchObject({ status: "skipped", code: "instance_destroyed" });
    expect(gone.reason).toMatch(/destroyed/);
    expect(done.summary).toMatchObject({ total: 3, completed: 2, failed: 0 });
  });
});
