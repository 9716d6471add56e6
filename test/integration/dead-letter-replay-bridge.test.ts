/**
 * The bridge's dead-letter replays against the in-process MQTT broker, a
 * scripted control plane (signatures checked with the production verifier)
 * and a stand-in primitive: a collected `http` replay is POSTed with the
 * letter's input and its answer reported (status, the msg_output's error
 * code); an `mqtt` replay is published on the instance's ingest; a replay is
 * sent once even when handed out again before it was reported; outcomes the
 * control plane could not take (503) are reported at the next call.
 */
import http from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import mqtt from "mqtt";
import { DeadLetterForwarder } from "../../bridge/deadLetterForwarder.ts";
import type { Logger } from "../../bridge/log.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort, listen } from "../../dev/ports.ts";
import type { DeadLetterReplay, DeadLetterReplayResult } from "../../protocol/deadLetters.ts";
import { verifyWebhook } from "../../protocol/webhooks.ts";

const SECRET = `whsec_${Buffer.from("dead-letter-replayer-secret-32by").toString("base64")}`;
const CLUSTER = "6e3f5c2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
const INSTANCE = "33333333-2222-4333-8444-555555555555";

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => { for (const c of closers.splice(0).reverse()) await c(); });

async function server(handler: (url: string, body: string, headers: http.IncomingHttpHeaders) => Promise<{ status: number; body: unknown }>) {
  const s = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", async () => {
      const a = await handler(req.url ?? "", body, req.headers);
      res.writeHead(a.status, { "content-type": "application/json" }).end(JSON.stringify(a.body));
    });
  });
  await listen(s, 0, "127.0.0.1");
  closers.push(() => new Promise((r) => s.close(r)));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}

/** A control plane holding a queue of replays to hand out; records every report. */
async function controlPlane() {
  const state = { queue: [] as DeadLetterReplay[], reported: [] as DeadLetterReplayResult[], down: false, calls: 0 };
  const url = await server(async (path, body, headers) => {
    const check = await verifyWebhook([SECRET], { get: (n) => (headers[n] as string | undefined) ?? null }, body);
    if (!check.ok) return { status: 401, body: {} };
    if (path !== `/api/webhooks/clusters/${CLUSTER}/dead-letters/replays`) return { status: 404, body: {} };
    state.calls++;
    if (state.down) return { status: 503, body: { error: { code: "database_unavailable", message: "down" } } };
    state.reported.push(...(JSON.parse(body).results as DeadLetterReplayResult[]));
    return { status: 200, body: { applied: 0, replays: state.queue.splice(0) } };
  });
  return { url, state };
}

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {} };

async function setup() {
  const broker = await startMqttBroker({ port: await freePort(), host: "127.0.0.1" });
  closers.push(() => broker.close());
  const cp = await controlPlane();
  const fwd = new DeadLetterForwarder({ api: cp.url, clusterId: CLUSTER, secret: SECRET, mqttUrl: broker.url!, log: silent, replayPollMs: 100 });
  fwd.start();
  closers.push(() => fwd.close());
  await fwd.subscribed();
  return { broker, cp, fwd };
}

const input = (n: number) => ({ payload: { action: "recall", conversationId: `c-${n}` }, metadata: { flowId: `wf-${n}`, timestamp: "2026-12-03T08:00:00.000Z" } });

describe("dead-letter replays in the bridge", () => {
  it("POSTs an http replay's input once, reports the answer and its msg_output error; outcomes survive a control plane that is away", async () => {
    const { cp } = await setup();
    const got: { path: string; body: unknown; replay: unknown }[] = [];
    let fail = true;
    // Set while the primitive answers the second replay: the control plane goes away before the bridge
    // can report that answer (taking it down after the test sees the request raced the report).
    let reportedBeforeOutage = -1;
    const primitive = await server(async (path, body, headers) => {
      got.push({ path, body: JSON.parse(body), replay: headers["x-redforge-replay"] });
      if (!fail && reportedBeforeOutage < 0) { cp.state.down = true; reportedBeforeOutage = cp.state.reported.length; }
      return fail
        ? { status: 503, body: { payload: null, metadata: { status: "error" }, error: { code: "store_unavailable", message: "still down" } } }
        : { status: 200, body: { payload: { turns: [] }, metadata: { status: "success" }, error: null } };
    });
    cp.state.down = true;
    cp.state.queue.push({ id: 1, instanceId: INSTANCE, target: { kind: "http", url: `${primitive}/agents/memory` }, input: input(1) });
    await vi.waitFor(() => { expect(cp.state.calls).toBeGreaterThan(0); }, { timeout: 10_000, interval: 100 });
    // The control plane comes back: the replay is handed out, sent and failed by the primitive's own error.
    cp.state.down = false;
    await vi.waitFor(() => { expect(got).toHaveLength(1); }, { timeout: 15_000, interval: 100 });
    expect(got[0]).toEqual({ path: "/agents/memory", body: input(1), replay: "1" });
    await vi.waitFor(() => { expect(cp.state.reported).toContainEqual({ id: 1, ok: false, status: 503, code: "store_unavailable", message: "still down" }); }, { timeout: 15_000, interval: 100 });

    // The report is lost (503): it is reported at the next call; the same replay handed out meanwhile is not sent twice.
    fail = false;
    const second: DeadLetterReplay = { id: 2, instanceId: INSTANCE, target: { kind: "http", url: `${primitive}/agents/memory` }, input: input(2) };
    cp.state.queue.push(second, second);
    await vi.waitFor(() => { expect(got).toHaveLength(2); }, { timeout: 15_000, interval: 100 });
    const callsInOutage = cp.state.calls;
    await vi.waitFor(() => { expect(cp.state.calls, "the bridge tried to report during the outage").toBeGreaterThan(callsInOutage); }, { timeout: 15_000, interval: 100 });
    expect(cp.state.reported.slice(reportedBeforeOutage)).not.toContainEqual({ id: 2, ok: true, status: 200 });
    cp.state.down = false;
    await vi.waitFor(() => { expect(cp.state.reported.slice(reportedBeforeOutage)).toContainEqual({ id: 2, ok: true, status: 200 }); }, { timeout: 15_000, interval: 100 });
    expect(got).toHaveLength(2);
  }, 60_000);

  it("publishes an mqtt replay on the instance's ingest; an unreachable primitive is reported replay_unreachable", async () => {
    const { cp, broker } = await setup();
    const sub = await mqtt.connectAsync(broker.url!, { protocolVersion: 4 });
    closers.push(() => sub.endAsync());
    const seen: unknown[] = [];
    sub.on("message", (_t, p) => seen.push(JSON.parse(p.toString("utf8"))));
    await sub.subscribeAsync(`redforge/ingest/${INSTANCE}`, { qos: 1 });
    const closed = await freePort();
    cp.state.queue.push(
      { id: 3, instanceId: INSTANCE, target: { kind: "mqtt", topic: `redforge/ingest/${INSTANCE}` }, input: input(3) },
      { id: 4, instanceId: INSTANCE, target: { kind: "http", url: `http://127.0.0.1:${closed}/agents/memory` }, input: input(4) },
    );
    await vi.waitFor(() => { expect(seen).toEqual([input(3)]); }, { timeout: 15_000, interval: 100 });
    await vi.waitFor(() => {
      expect(cp.state.reported).toContainEqual({ id: 3, ok: true });
      expect(cp.state.reported.find((r) => r.id === 4)).toMatchObject({ ok: false, code: "replay_unreachable" });
    }, { timeout: 15_000, interval: 100 });
  }, 60_000);
});
