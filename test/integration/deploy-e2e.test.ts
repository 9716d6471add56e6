/**
 * The product's promise, end to end: the Worker under wrangler dev (the
 * DeploymentRun Durable Object), a real bridge with the process driver, real
 * Node-RED processes and a real MQTT broker. A load generator sends a
 * numbered stream over MQTT (QoS 1) and HTTP through the instance's front
 * door while `POST /api/deployments` changes the flow: every message is
 * processed exactly once, every HTTP request answered, and everything sent
 * after the switch carries the new version's marker. A failing smoke test
 * rolls back without losing anything; a paused deployment survives the dev
 * server restarting and is then promoted.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import type { ApiBody } from "../../protocol/api/client.ts";
import type { ApiClient } from "../harness/adminClient.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";
import type { TestStack } from "../harness/testStack.ts";
import { LoadGenerator, losses, NO_LOSS, zeroLossFlow } from "../harness/zeroLoss.ts";

let stack: TestStack;
let token: string;
let clusterId: string;
let broker: { host: string; port: number };

let api: ApiClient;

type DeploymentRequest = ApiBody<"/api/deployments", "post">;
const instanceFlows = (flows: unknown[]) => flows as ApiBody<"/api/instances", "post">["flows"];
const deploymentFlows = (flows: unknown[]) => flows as DeploymentRequest["flows"];

/** Generous: green's cold start takes 7–8 s on a loaded machine, and a dev server restart adds to it. */
const WAIT = { timeout: 90_000, interval: 200 };

/** The deployment once its status is one of `statuses` (for vi.waitFor: throws until then). */
const deploymentIs = (id: string, ...statuses: string[]) => async () => {
  const { data } = await api.GET("/api/deployments/{id}", { params: { path: { id } } });
  expect(statuses, `deployment ${id} to be ${statuses.join(" or ")}: ${JSON.stringify(data)}`).toContain(data?.status);
  return data!;
};

async function runningInstance(name: string) {
  const created = await api.POST("/api/instances", { body: { name, clusterId, flows: instanceFlows(zeroLossFlow({ version: "v1", entry: "gate", broker })) } });
  expect(created.response.status, JSON.stringify(created.data ?? created.error)).toBe(201);
  return vi.waitFor(async () => {
    const { data } = await api.GET("/api/instances/{id}", { params: { path: { id: created.data!.id } } });
    expect(data, "instance running with a front door").toMatchObject({ status: "running", endpoints: { front: expect.any(String) } });
    return data!;
  }, WAIT);
}

function watch(deploymentId: string): { events: any[]; close(): void } {
  const events: any[] = [];
  const ws = new WebSocket(`${stack.apiUrl.replace("http", "ws")}/ws/deployments/${deploymentId}?token=${token}`);
  ws.on("message", (data) => events.push(JSON.parse(String(data))));
  return { events, close: () => ws.close() };
}

const smokeFor = (version: string) => ({
  http: { path: "/work", method: "POST" as const, body: { seq: "smoke" }, expectStatus: 200, contract: true, expectJson: { payload: { version } } },
  mqtt: true,
});

let fleet: FleetStack;
beforeAll(async () => {
  fleet = await startFleetStack("deploy-e2e");
  ({ stack, api, clusterId, broker, token } = fleet);
}, 180_000);

afterAll(async () => fleet?.close());

async function deployUnderLoad(instance: any, body: Omit<DeploymentRequest, "instanceId">) {
  const load = new LoadGenerator({ brokerUrl: stack.mqttUrl, mqttTopic: `redforge/ingest/${instance.id}`, httpUrl: `${instance.endpoints.front}/work`, rate: 200 });
  await load.start();
  await new Promise((r) => setTimeout(r, 1500));
  const res = await api.POST("/api/deployments", { body: { instanceId: instance.id, analysisSeconds: 1, rollbackWindowSeconds: 1, ...body } });
  expect(res.response.status, JSON.stringify(res.data ?? res.error)).toBe(202);
  const watcher = watch(res.data!.id);
  const done = await vi.waitFor(deploymentIs(res.data!.id, "completed", "rolled_back", "failed"), WAIT);
  await new Promise((r) => setTimeout(r, 1500));
  const report = await load.stop();
  watcher.close();
  return { done, report, events: watcher.events };
}

describe("blue-green deployments through the API", () => {
  it("changes the flow mid-stream: none lost, none duplicated, every HTTP request answered, new marker after the switch", async () => {
    const instance = await runningInstance("zero-loss");
    const { done, report, events } = await deployUnderLoad(instance, { flows: deploymentFlows(zeroLossFlow({ version: "v2", entry: "gate", broker })), verify: smokeFor("v2") });
    expect(done.status, JSON.stringify(done)).toBe("completed");
    expect(report.sent.mqtt).toBeGreaterThan(300);
    expect(report.sent.http).toBeGreaterThan(50);
    // On failure, say when work was held (bridge clock) and how the phases ran: a hold longer than the client's timeout is the usual cause.
    const held = `held ${done.metrics.holdingSince} → ${done.metrics.switchedAt} (${done.metrics.holdMs} ms); phases ${JSON.stringify(done.metrics.phaseMs)}; accounting ${JSON.stringify(done.metrics.accounting)}`;
    expect(losses(report), `${report.httpErrorSamples.join(" | ")}; ${held}`).toEqual(NO_LOSS);
    const resumeAt = Date.parse(done.history.find((h: any) => h.phase === "RESUME" && h.status === "started")!.at);
    const after = [...report.answers.values()].filter((a) => a.sent.at > resumeAt);
    expect(after.length).toBeGreaterThan(50);
    expect(after.filter((a) => a.answers.length !== 1 || a.answers[0]!.version !== "v2")).toEqual([]);
    expect(done.metrics.messagesLost).toBe(0);
    expect(events.some((e) => e.event === "deployment:phase" && e.data.phase === "RESUME")).toBe(true);
    const final = await api.GET("/api/instances/{id}", { params: { path: { id: instance.id } } });
    expect((final.data!.flows as any[]).find((n: any) => n.type === "function").name).toBe("work v2");
  }, 180_000);

  it("a failing smoke test rolls back and loses nothing: blue answers everything", async () => {
    const instance = await runningInstance("rollback");
    const { done, report } = await deployUnderLoad(instance, { flows: deploymentFlows(zeroLossFlow({ version: "v2", entry: "gate", broker })), verify: smokeFor("v3") });
    expect(done.status).toBe("rolled_back");
    expect(done.error).toMatchObject({ code: "smoke_failed", message: expect.stringMatching(/smoke tests failed/) });
    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    const versions = new Set([...report.answers.values()].flatMap((a) => a.answers.map((x) => x.version)));
    expect([...versions]).toEqual(["v1"]);
  }, 180_000);

  it("a paused deployment survives the dev server restarting, then is promoted", async () => {
    const instance = await runningInstance("restart");
    const res = await api.POST("/api/deployments", { body: {
      instanceId: instance.id, flows: deploymentFlows(zeroLossFlow({ version: "v2", entry: "gate", broker })),
      verify: { ...smokeFor("v2"), pause: true }, analysisSeconds: 0, rollbackWindowSeconds: 0,
    } });
    expect(res.response.status).toBe(202);
    const id = res.data!.id;
    await vi.waitFor(deploymentIs(id, "paused"), WAIT);
    await stack.restartWorker();
    const after = await api.GET("/api/deployments/{id}", { params: { path: { id } } });
    expect(after.data).toMatchObject({ status: "paused", phase: "VERIFY" });
    expect((await api.POST("/api/deployments/{id}/promote", { params: { path: { id } } })).response.status).toBe(202);
    const done = await vi.waitFor(deploymentIs(id, "completed", "rolled_back", "failed"), WAIT);
    expect(done.status, JSON.stringify(done)).toBe("completed");
    const answer = await fetch(`${instance.endpoints.front}/work`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seq: "after" }) });
    expect(((await answer.json()) as any).payload.version).toBe("v2");

    // Mid-step: the dev server goes down while the bridge is starting green; the answer arrives after the restart.
    const next = await api.POST("/api/deployments", { body: {
      instanceId: instance.id, flows: deploymentFlows(zeroLossFlow({ version: "v3", entry: "gate", broker })), verify: smokeFor("v3"), analysisSeconds: 0, rollbackWindowSeconds: 0,
    } });
    expect(next.response.status).toBe(202);
    await stack.restartWorker();
    const second = await vi.waitFor(deploymentIs(next.data!.id, "completed", "rolled_back", "failed"), WAIT);
    expect(second.status, JSON.stringify(second)).toBe("completed");
    expect(second.history.filter((h: any) => h.status === "started").map((h: any) => h.phase)).toEqual(["DEPLOY", "VERIFY", "DRAIN", "RESUME", "AUDIT", "CLEANUP"]); // the default hold order
    const v3 = await fetch(`${instance.endpoints.front}/work`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seq: "after-2" }) });
    expect(((await v3.json()) as any).payload.version).toBe("v3");
  }, 300_000);
});
