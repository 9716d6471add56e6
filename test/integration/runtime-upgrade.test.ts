/**
 * Runtime upgrades, end to end: the Worker under wrangler dev, a real bridge
 * with the process driver, real Node-RED 4.1.15 and 5.0.7 processes (the
 * npm aliases node-red-4 / node-red-5) and a real MQTT broker. A running
 * 4.1 instance is moved to 5.0 through `POST /api/deployments {stack}` while
 * the zero-loss load runs (the counting of blue-green.test.ts / deploy-e2e):
 * nothing lost, nothing processed twice, every HTTP request answered, and
 * everything sent after the switch answered by green, which runs 5.0.7. A
 * green that fails its smoke test rolls back to 4.1 with nothing lost.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ApiBody } from "../../protocol/api/client.ts";
import type { ApiClient } from "../harness/adminClient.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";
import type { TestStack } from "../harness/testStack.ts";
import { LoadGenerator, losses, NO_LOSS, zeroLossFlow } from "../harness/zeroLoss.ts";

let stack: TestStack;
let clusterId: string;
let broker: { host: string; port: number };
let api: ApiClient;

/** Generous: green's cold start (Node-RED boot + node package install) takes 7–8 s on a loaded machine. */
const WAIT = { timeout: 120_000, interval: 250 };

const deploymentIs = (id: string, ...statuses: string[]) => async () => {
  const { data } = await api.GET("/api/deployments/{id}", { params: { path: { id } } });
  expect(statuses, `deployment ${id} to be ${statuses.join(" or ")}: ${JSON.stringify(data)}`).toContain(data?.status);
  return data!;
};

/** The runtime that answers the instance's front door, by the node package's /healthz. */
async function frontNodeRed(front: string): Promise<string> {
  const res = await fetch(`${front}/healthz`);
  return ((await res.json()) as { nodeRed: string }).nodeRed;
}

async function runningInstance(name: string, stackId: string) {
  const created = await api.POST("/api/instances", { body: {
    name, clusterId, stack: stackId, flows: zeroLossFlow({ version: "v1", entry: "gate", broker }) as ApiBody<"/api/instances", "post">["flows"],
  } });
  expect(created.response.status, JSON.stringify(created.data ?? created.error)).toBe(201);
  return vi.waitFor(async () => {
    const { data } = await api.GET("/api/instances/{id}", { params: { path: { id: created.data!.id } } });
    expect(data, "instance running with a front door").toMatchObject({ status: "running", endpoints: { front: expect.any(String) }, nodeRedVersion: expect.any(String) });
    return data!;
  }, WAIT);
}

async function upgradeUnderLoad(instance: { id: string; endpoints: Record<string, string> }, smokeVersion: string) {
  const load = new LoadGenerator({ brokerUrl: stack.mqttUrl, mqttTopic: `redforge/ingest/${instance.id}`, httpUrl: `${instance.endpoints.front}/work`, rate: 200 });
  await load.start();
  await new Promise((r) => setTimeout(r, 1500));
  const res = await api.POST("/api/deployments", { body: {
    instanceId: instance.id, stack: "5.0", analysisSeconds: 1, rollbackWindowSeconds: 1,
    // The same flows on the new runtime: the smoke test checks green answers them as v1 does on 4.1.
    verify: { http: { path: "/work", method: "POST", body: { seq: "smoke" }, expectStatus: 200, contract: true, expectJson: { payload: { version: smokeVersion } } }, mqtt: true },
  } });
  expect(res.response.status, JSON.stringify(res.data ?? res.error)).toBe(202);
  expect(res.data).toMatchObject({ fromStack: "4.1", toStack: "5.0" });
  const done = await vi.waitFor(deploymentIs(res.data!.id, "completed", "rolled_back", "failed"), WAIT);
  await new Promise((r) => setTimeout(r, 1500));
  const report = await load.stop();
  return { done, report };
}

let fleet: FleetStack;
beforeAll(async () => {
  fleet = await startFleetStack("runtime-upgrade");
  ({ stack, api, clusterId, broker } = fleet);
}, 180_000);

afterAll(async () => fleet?.close());

describe("runtime upgrades through the API (Node-RED 4.1.15 → 5.0.7)", () => {
  it("the bridge reports both stacks; /api/stacks lists them", async () => {
    const listed = await vi.waitFor(async () => {
      const { data } = await api.GET("/api/stacks", { params: { query: { clusterId } } });
      expect(data?.reported).toBe(true);
      return data!;
    }, WAIT);
    expect(listed.items).toEqual([{ id: "5.0", nodeRed: "5.0.7" }, { id: "4.1", nodeRed: "4.1.15" }]);
    expect(listed.default).toBe("5.0");
  });

  it("upgrades a running 4.1 instance to 5.0 under load: none lost, none duplicated, every request answered, 5.0 answers after the switch", async () => {
    const instance = await runningInstance("upgrade", "4.1");
    expect(instance).toMatchObject({ stack: "4.1", nodeRedVersion: "4.1.15" });
    expect(await frontNodeRed(instance.endpoints.front!)).toMatch(/^4\.1\.15/);

    const { done, report } = await upgradeUnderLoad(instance, "v1");
    expect(done.status, JSON.stringify(done)).toBe("completed");
    expect(done).toMatchObject({ fromStack: "4.1", toStack: "5.0", toNodeRed: "5.0.7" });
    expect(report.sent.mqtt).toBeGreaterThan(300);
    expect(report.sent.http).toBeGreaterThan(50);
    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    expect(done.metrics.messagesLost).toBe(0);
    // Everything sent once RESUME began was held and replayed to green, or went to green directly.
    const resumeAt = Date.parse(done.history.find((h) => h.phase === "RESUME" && h.status === "started")!.at);
    const after = [...report.answers.values()].filter((a) => a.sent.at > resumeAt);
    expect(after.length).toBeGreaterThan(50);
    expect(after.filter((a) => a.answers.length !== 1 || a.answers[0]!.runtime !== done.green)).toEqual([]);
    // Green is the 5.0.7 runtime: the front door's /healthz is answered by it, and the instance says so.
    expect(await frontNodeRed(instance.endpoints.front!)).toBe("5.0.7");
    const final = (await api.GET("/api/instances/{id}", { params: { path: { id: instance.id } } })).data!;
    expect(final).toMatchObject({ stack: "5.0", nodeRedVersion: "5.0.7" });
  }, 240_000);

  it("a green that fails its smoke test rolls back to 4.1 with nothing lost", async () => {
    const instance = await runningInstance("upgrade-rollback", "4.1");
    const { done, report } = await upgradeUnderLoad(instance, "not-v1");
    expect(done.status, JSON.stringify(done)).toBe("rolled_back");
    expect(done.error).toMatchObject({ code: "smoke_failed" });
    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    const runtimes = new Set([...report.answers.values()].flatMap((a) => a.answers.map((x) => x.runtime)));
    expect([...runtimes]).toEqual([done.blue]);
    expect(await frontNodeRed(instance.endpoints.front!)).toMatch(/^4\.1\.15/);
    const final = (await api.GET("/api/instances/{id}", { params: { path: { id: instance.id } } })).data!;
    expect(final).toMatchObject({ stack: "4.1", nodeRedVersion: "4.1.15" });
  }, 240_000);
});
