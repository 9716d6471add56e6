/**
 * Rollouts end to end: wrangler dev (RolloutRun and DeploymentRun Durable
 * Objects), a real bridge with the process driver, three real Node-RED
 * instances labelled env=staging and a real MQTT broker. A two-wave rollout
 * of a new flow reaches all three (checked through each instance's front
 * door) while the zero-loss load harness drives one of them: nothing lost,
 * nothing duplicated, every HTTP request answered; progress is watched on
 * /ws/rollouts/:id. Then a flow whose smoke check fails: the first wave fails
 * within its budget (0), the rollout stops there and nothing else changes.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import type { ApiBody } from "../../protocol/api/client.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";
import { LoadGenerator, losses, NO_LOSS, zeroLossFlow } from "../harness/zeroLoss.ts";

let fleet: FleetStack;
const WAIT = { timeout: 240_000, interval: 500 };
const instanceFlows = (flows: unknown[]) => flows as ApiBody<"/api/instances", "post">["flows"];

const smokeFor = (version: string) => ({
  http: { path: "/work", method: "POST" as const, body: { seq: "smoke" }, expectStatus: 200, contract: true, expectJson: { payload: { version } } },
  mqtt: true,
});

let instances: { id: string; name: string; front: string }[] = [];

beforeAll(async () => {
  fleet = await startFleetStack("rollouts-e2e");
  const { api, clusterId, broker } = fleet;
  // Names sort in creation order: the rollout's waves take instances by name.
  const created = await Promise.all(["ro-a", "ro-b", "ro-c"].map(async (name) => {
    const res = await api.POST("/api/instances", { body: { name, clusterId, labels: { env: "staging" }, flows: instanceFlows(zeroLossFlow({ version: "v1", entry: "gate", broker })) } });
    expect(res.response.status, JSON.stringify(res.data ?? res.error)).toBe(201);
    return res.data!;
  }));
  instances = await Promise.all(created.map((c) => vi.waitFor(async () => {
    const { data } = await api.GET("/api/instances/{id}", { params: { path: { id: c.id } } });
    expect(data, "instance running with a front door").toMatchObject({ status: "running", endpoints: { front: expect.any(String) } });
    return { id: c.id, name: c.name, front: data!.endpoints.front! };
  }, WAIT)));
}, 300_000);

afterAll(async () => fleet?.close());

async function versionOf(front: string): Promise<string> {
  const res = await fetch(`${front}/work`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seq: `probe-${Date.now()}` }) });
  return ((await res.json()) as any).payload.version;
}

async function rollout(body: Record<string, unknown>) {
  const res = await fetch(`${fleet.stack.apiUrl}/api/rollouts`, {
    method: "POST", headers: { Authorization: `Bearer ${fleet.token}`, "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const json = await res.json() as any;
  expect(res.status, JSON.stringify(json)).toBe(202);
  return json;
}

const rolloutEnded = (id: string) => async () => {
  const res = await fetch(`${fleet.stack.apiUrl}/api/rollouts/${id}`, { headers: { Authorization: `Bearer ${fleet.token}` } });
  const r = await res.json() as any;
  expect(["completed", "failed", "aborted"], `rollout still ${r.status}: ${JSON.stringify(r.waves?.map((w: any) => w.instances.map((i: any) => [i.status, i.code])))}`).toContain(r.status);
  return r;
};

describe("rollouts over real Node-RED instances", () => {
  it("a two-wave rollout to env=staging reaches all three instances; the one under load loses and duplicates nothing", async () => {
    const { stack, broker } = fleet;
    const loaded = instances[1]!; // ro-b: in the second wave, so the load runs across the first wave too
    const load = new LoadGenerator({ brokerUrl: stack.mqttUrl, mqttTopic: `redforge/ingest/${loaded.id}`, httpUrl: `${loaded.front}/work`, rate: 150 });
    await load.start();
    await new Promise((r) => setTimeout(r, 1500));
    const started = await rollout({
      selector: "env=staging", flows: zeroLossFlow({ version: "v2", entry: "gate", broker }), waves: [1, "100%"], parallelism: 2,
      deployment: { verify: smokeFor("v2"), analysisSeconds: 1, rollbackWindowSeconds: 1 },
    });
    expect(started.waves.map((w: any) => w.instances.map((i: any) => i.instanceId))).toEqual([[instances[0]!.id], [instances[1]!.id, instances[2]!.id]]);
    // A console's watcher: reconnects when the socket drops (wrangler dev reloads when files change), and learns
    // where things stand from the `rollout:state` each connection starts with.
    const events: any[] = [];
    let ws: WebSocket;
    let watching = true;
    const connect = () => {
      ws = new WebSocket(`${stack.apiUrl.replace("http", "ws")}/ws/rollouts/${started.id}?token=${fleet.token}`);
      ws.on("message", (data) => events.push(JSON.parse(String(data))));
      ws.on("close", () => { if (watching) setTimeout(connect, 500); });
      ws.on("error", () => {});
    };
    connect();

    const done = await vi.waitFor(rolloutEnded(started.id), WAIT);
    await new Promise((r) => setTimeout(r, 1500));
    const report = await load.stop();
    watching = false;
    ws!.close();
    expect(done.status, JSON.stringify(done)).toBe("completed");
    expect(done.summary).toEqual({ total: 3, completed: 3, failed: 0, pending: 0 });
    expect(report.sent.mqtt).toBeGreaterThan(200);
    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    for (const i of instances) expect(await versionOf(i.front), i.name).toBe("v2");
    expect(events[0]?.event).toBe("rollout:state");
    expect(events.some((e) => e.event === "rollout:instance"), "live instance events").toBe(true);
    // What the watcher knows at the end, from the state frames and the instance events in order: all three completed.
    const seen = new Map<string, string>();
    for (const e of events) {
      if (e.event === "rollout:state") for (const w of e.data.waves) for (const i of w.instances) seen.set(i.instanceId, i.status);
      if (e.event === "rollout:instance") seen.set(e.data.instanceId, e.data.status);
    }
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(instances.map((i) => [i.id, "completed"])));
    // Each instance's change was an ordinary deployment: its own record says so.
    const deployments = await Promise.all(done.waves.flatMap((w: any) => w.instances).map((i: any) => fleet.api.GET("/api/deployments/{id}", { params: { path: { id: i.deploymentId } } })));
    for (const d of deployments) expect(d.data).toMatchObject({ status: "completed", metrics: { messagesLost: 0 } });
  }, 420_000);

  it("a flow whose smoke check fails stops the rollout in its first wave, within its budget; the other instances are not touched", async () => {
    const { stack, broker } = fleet;
    const first = instances[0]!;
    const load = new LoadGenerator({ brokerUrl: stack.mqttUrl, mqttTopic: `redforge/ingest/${first.id}`, httpUrl: `${first.front}/work`, rate: 100 });
    await load.start();
    const started = await rollout({
      selector: "env=staging", flows: zeroLossFlow({ version: "v3", entry: "gate", broker }), waves: [1, "100%"],
      failureBudget: { maxFailedInstances: 0 }, onFailure: "rollback_wave",
      // The check expects a version the flow does not answer with: VERIFY fails on green, blue keeps serving.
      deployment: { verify: smokeFor("v9"), analysisSeconds: 0, rollbackWindowSeconds: 1 },
    });
    const done = await vi.waitFor(rolloutEnded(started.id), WAIT);
    const report = await load.stop();
    expect(done.status, JSON.stringify(done)).toBe("failed");
    expect(done.failure.code).toBe("failure_budget_exceeded");
    expect(done.waves[0].instances[0]).toMatchObject({ instanceId: first.id, status: "failed", code: "smoke_failed" });
    expect(done.waves[1].instances.map((i: any) => i.status)).toEqual(["skipped", "skipped"]);
    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    for (const i of instances) expect(await versionOf(i.front), i.name).toBe("v2");
  }, 420_000);
});
