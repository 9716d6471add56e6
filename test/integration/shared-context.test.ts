/**
 * Shared context across colours: a bridge with a context store (the Upstash
 * REST stand-in in front of a real redis-server) gives blue and green of an
 * instance the same `shared` context store. A flow keeps a counter in flow
 * context and answers each request with the next number; requests keep coming
 * while a blue-green deployment (the Worker's DeploymentRun, real Node-RED
 * processes) replaces the flow. The numbers must run 1..N with no gap and no
 * repeat, blue's before green's.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ApiBody } from "../../protocol/api/client.ts";
import type { ApiClient } from "../harness/adminClient.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";
import { redisServerAvailable, startUpstashStandIn, type UpstashStandIn } from "../harness/redisServer.ts";

if (!redisServerAvailable) console.warn("shared-context suite skipped: no redis-server binary (set REDIS_SERVER_BIN)");

const WAIT = { timeout: 120_000, interval: 250 };

/** http in → gate → counter (flow context, store "shared") → exit → http response. */
function counterFlow(version: string): unknown[] {
  const tab = "sc-tab";
  return [
    { id: tab, type: "tab", label: `counter ${version}` },
    { id: "sc-in", type: "http in", z: tab, url: "/count", method: "post", upload: false, wires: [["sc-gate"]] },
    { id: "sc-gate", type: "redforge-gate", z: tab, name: "gate", source: "input", ttl: 60, holdLimit: 5000, wires: [["sc-count"]] },
    {
      id: "sc-count", type: "function", z: tab, name: `count ${version}`, outputs: 1, wires: [["sc-exit"]],
      // get + set is not atomic: messages are chained one after another inside a runtime,
      // and the blue-green drain guarantees blue's last set lands before green's first get.
      func: `const chain = context.get("chain") || Promise.resolve();
const answer = (status, payload) => {
  msg.statusCode = status;
  msg.payload = { payload, metadata: { flowId: "shared-context", timestamp: new Date().toISOString(), source: "http", contentType: "json", status: status === 200 ? "success" : "error" } };
  node.send(msg);
  node.done();
};
const next = chain.then(() => new Promise((resolve) => {
  flow.get("count", "shared", (err, value) => {
    if (err) { answer(500, { error: String(err) }); return resolve(); }
    const count = (value || 0) + 1;
    flow.set("count", count, "shared", (err2) => {
      if (err2) answer(500, { error: String(err2) });
      else answer(200, { count, seq: msg.payload && msg.payload.seq, version: ${JSON.stringify(version)}, runtime: env.get("REDFORGE_RUNTIME_ID") });
      resolve();
    });
  });
}));
context.set("chain", next);
return null;`,
    },
    { id: "sc-exit", type: "redforge-exit", z: tab, wires: [["sc-out"]] },
    { id: "sc-out", type: "http response", z: tab, statusCode: "", headers: {}, wires: [] },
  ];
}

interface Answer { status: number; count?: number; version?: string; runtime?: string; error?: string }

/** `loops` clients, each posting its next request when the last was answered, until stop(). */
function countLoad(url: string, loops: number) {
  const answers: Answer[] = [];
  let running = true;
  let seq = 0;
  const loop = async () => {
    while (running) {
      const mine = seq++;
      try {
        const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seq: mine }), signal: AbortSignal.timeout(60_000) });
        const body = (await res.json().catch(() => ({}))) as { payload?: { count?: number; version?: string; runtime?: string; error?: string } };
        answers.push({ status: res.status, ...body.payload });
      } catch (err) {
        answers.push({ status: 0, error: String(err) });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const all = Array.from({ length: loops }, loop);
  return { answers, async stop() { running = false; await Promise.all(all); return answers; } };
}

describe.skipIf(!redisServerAvailable)("shared context across a blue-green switch", () => {
  let store: UpstashStandIn;
  let fleet: FleetStack;
  let api: ApiClient;

  beforeAll(async () => {
    store = await startUpstashStandIn();
    fleet = await startFleetStack("shared-context", { contextStore: { url: store.url, token: store.token } });
    api = fleet.api;
  }, 180_000);

  afterAll(async () => {
    await fleet?.close();
    await store?.close();
  });

  it("a counter kept in flow context continues on green with no gap and no repeat", async () => {
    const created = await api.POST("/api/instances", { body: { name: "counter", clusterId: fleet.clusterId, flows: counterFlow("v1") as ApiBody<"/api/instances", "post">["flows"] } });
    expect(created.response.status, JSON.stringify(created.error)).toBe(201);
    const instance = await vi.waitFor(async () => {
      const { data } = await api.GET("/api/instances/{id}", { params: { path: { id: created.data!.id } } });
      expect(data).toMatchObject({ status: "running", endpoints: { front: expect.any(String) } });
      return data!;
    }, WAIT);
    const url = `${instance.endpoints!.front}/count`;
    // The package loads after start: wait until the flow answers.
    await vi.waitFor(async () => expect((await fetch(url, { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(200), WAIT);

    const base = await storedCount(instance.id);
    expect(base, "the readiness probe counted").toBeGreaterThan(0);
    const load = countLoad(url, 3);
    await vi.waitFor(() => expect(load.answers.length).toBeGreaterThan(20), WAIT);
    const deployment = await api.POST("/api/deployments", {
      body: { instanceId: instance.id, flows: counterFlow("v2") as ApiBody<"/api/deployments", "post">["flows"], analysisSeconds: 0, rollbackWindowSeconds: 0 },
    });
    expect(deployment.response.status, JSON.stringify(deployment.error)).toBe(202);
    const done = await vi.waitFor(async () => {
      const { data } = await api.GET("/api/deployments/{id}", { params: { path: { id: deployment.data!.id } } });
      expect(["completed", "rolled_back", "failed"]).toContain(data?.status);
      return data!;
    }, WAIT);
    expect(done.status, JSON.stringify(done.error)).toBe("completed");
    // Keep counting on green for a while after the switch.
    const atSwitch = load.answers.length;
    await vi.waitFor(() => expect(load.answers.length).toBeGreaterThan(atSwitch + 20), WAIT);
    const answers = await load.stop();

    expect(answers.filter((a) => a.status !== 200), "every request answered 200").toEqual([]);
    const counts = answers.map((a) => a.count!).sort((a, b) => a - b);
    expect(counts, "base+1..base+N with no gap and no repeat").toEqual(Array.from({ length: counts.length }, (_, i) => base + i + 1));
    const v1 = answers.filter((a) => a.version === "v1");
    const v2 = answers.filter((a) => a.version === "v2");
    expect(v1.length, "blue counted before the switch").toBeGreaterThan(10);
    expect(v2.length, "green counted after it").toBeGreaterThan(10);
    expect(new Set(v1.map((a) => a.runtime)).size).toBe(1);
    expect(new Set(v2.map((a) => a.runtime)).size).toBe(1);
    expect(v2[0]!.runtime).not.toBe(v1[0]!.runtime);
    // Green carried on from blue's last number: every v2 number is above every v1 number.
    expect(Math.min(...v2.map((a) => a.count!))).toBe(Math.max(...v1.map((a) => a.count!)) + 1);

    // The counter lives in Redis under the instance's prefix (not the runtime's).
    expect(await storedCount(instance.id)).toBe(base + counts.length);
  }, 300_000);

  async function storedCount(instanceId: string): Promise<number> {
    const res = await fetch(store.url, { method: "POST", headers: { authorization: `Bearer ${store.token}` }, body: JSON.stringify(["HGET", `redforge:context:${instanceId}:sc-tab`, "count"]) });
    return Number(((await res.json()) as { result: string | null }).result ?? 0);
  }
});
