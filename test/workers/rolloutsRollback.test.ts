/**
 * A wave rollback ends within its deadlines even when the bridge loses
 * answers (bench/fleet-rollout at parallelism 100 saw a wave stay
 * `rolling_back` for minutes): an instance whose own rollback never gets an
 * answer ends with `rollback_timeout` and the rollout ends `failed` /
 * `rollback_incomplete`, naming what is still open, instead of waiting forever
 * while its DeploymentRun keeps retrying; and a failing instance whose
 * deployment cannot finish its own rollback counts as failed at once instead of
 * holding the wave.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { api, createUser, unique, type TestUser } from "./helpers.ts";
import { fleetBridge } from "./rolloutFleet.ts";

let admin: TestUser;
let viewer: TestUser;
const FLOWS_V2 = [{ id: "t1", type: "tab", label: "v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
});

describe("wave rollback deadlines", { timeout: 300_000 }, () => {
  it("lost deployment.rollback answers: the wave still ends rolled_back, the unrestored instance named rollback_timeout, the rollout failed rollback_incomplete", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    const good = await bridge.instance({ env: env1 });
    const lost = await bridge.instance({ env: env1 }, "auto", { lose: ["deployment.rollback"] });
    const bad = await bridge.instance({ env: env1 }, "fail-smoke", { lose: ["deployment.rollback"] });
    const res = await api("POST", "/api/rollouts", {
      token: admin.token,
      body: {
        selector: `env=${env1}`, flows: FLOWS_V2, waves: ["100%"], parallelism: 3, failureBudget: { maxFailedInstances: 0 },
        // The rollback step's deadline at its minimum: the rollout gives an instance's rollback two of them and a margin.
        deployment: { analysisSeconds: 0, rollbackWindowSeconds: 300, timeouts: { rollback: 5 } },
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const id = res.body.id;

    const ended = await vi.waitFor(async () => {
      const r = (await api("GET", `/api/rollouts/${id}`, { token: viewer.token })).body;
      expect(r.status, JSON.stringify({ status: r.status, instances: r.waves[0].instances })).toBe("failed");
      return r;
    }, { timeout: 180_000, interval: 500 });
    expect(ended.failure).toMatchObject({ code: "rollback_incomplete", message: expect.stringMatching(/1 instance\(s\) could not be rolled back/) });
    expect(ended.waves[0].status).toBe("rolled_back");
    const byId = new Map<string, any>(ended.waves[0].instances.map((i: any) => [i.instanceId, i]));
    expect(byId.get(good)).toMatchObject({ status: "rolled_back" });
    const open = byId.get(lost);
    expect(open).toMatchObject({ status: "completed", code: "rollback_timeout" });
    expect(open.reason).toContain(open.deploymentId);
    // The failing instance counted as failed while its own rollback was still unanswered.
    expect(byId.get(bad)).toMatchObject({ status: "failed", code: "smoke_failed" });
    const badDeployment = (await api("GET", `/api/deployments/${byId.get(bad).deploymentId}`, { token: viewer.token })).body;
    expect(badDeployment).toMatchObject({ status: "in_progress", phase: "ROLLING_BACK" });
  });
});
