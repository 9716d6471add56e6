/**
 * The bridge's dead-letter forwarding against the in-process MQTT broker and
 * a scripted control plane (real HTTP, signatures checked with the production
 * verifier): letters reach the control plane with the topic's instance id and
 * a stable letterId; a letter is acknowledged to the broker only once stored,
 * so letters published while the bridge is away, or while the control plane
 * answers 503 and the bridge is then stopped, arrive when a bridge comes back;
 * malformed messages and refused letters are logged and do not block the rest.
 */
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { DeadLetterForwarder } from "../../bridge/deadLetterForwarder.ts";
import type { Logger } from "../../bridge/log.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort, listen } from "../../dev/ports.ts";
import type { ForwardedDeadLetter } from "../../protocol/deadLetters.ts";
import { verifyWebhook } from "../../protocol/webhooks.ts";
import { eventually } from "../harness/eventually.ts";

const SECRET = `whsec_${Buffer.from("dead-letter-forwarder-secret-32b").toString("base64")}`;
const CLUSTER = "5e3f5c2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
const INSTANCE = "22222222-2222-4333-8444-555555555555";
const FOREIGN = "99999999-2222-4333-8444-555555555555";

type Answer = (letter: ForwardedDeadLetter) => { status: number; body?: unknown };

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => { for (const c of closers.splice(0).reverse()) await c(); });

async function controlPlane(answer: Answer = () => ({ status: 202, body: { accepted: true, stored: 1, duplicates: 0 } })) {
  const received: ForwardedDeadLetter[] = [];
  const tried: ForwardedDeadLetter[] = [];
  const state = { answer };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", async () => {
      const check = await verifyWebhook([SECRET], { get: (n) => (req.headers[n] as string | undefined) ?? null }, body);
      if (!check.ok || req.url !== `/api/webhooks/clusters/${CLUSTER}/dead-letters`) {
        res.writeHead(401).end();
        return;
      }
      const letters = JSON.parse(body).letters as ForwardedDeadLetter[];
      tried.push(...letters);
      const a = state.answer(letters[0]!);
      if (a.status === 202) received.push(...letters);
      res.writeHead(a.status, { "content-type": "application/json" }).end(JSON.stringify(a.body ?? {}));
    });
  });
  await listen(server, 0, "127.0.0.1");
  closers.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received, tried, state };
}

function captureLog() {
  const lines: string[] = [];
  const log: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
  return { lines, log };
}

const letter = (n: number, extra: Record<string, unknown> = {}) => JSON.stringify({
  instanceId: INSTANCE, flowId: `wf-${n}`, primitive: "embeddings", nodeRedFlow: "rfembed-tab", failedAt: new Date().toISOString(),
  error: { code: "model_unavailable", message: `attempt 3 of 3 (${n})`, attempts: 3 }, input: { payload: `text ${n}`, metadata: { flowId: `wf-${n}` } },
  ...extra,
});

async function setup() {
  const broker = await startMqttBroker({ port: await freePort(), host: "127.0.0.1" });
  closers.push(() => broker.close());
  const publisher = await mqtt.connectAsync(broker.url!, { protocolVersion: 4 });
  closers.push(() => publisher.endAsync());
  const publish = (topic: string, payload: string) => publisher.publishAsync(topic, payload, { qos: 1 });
  return { brokerUrl: broker.url!, publish };
}

async function forwarder(api: string, brokerUrl: string, log: Logger) {
  const fwd = new DeadLetterForwarder({ api, clusterId: CLUSTER, secret: SECRET, mqttUrl: brokerUrl, log, retry: { baseMs: 20, capMs: 100 } });
  fwd.start();
  await fwd.subscribed();
  return fwd;
}

describe("DeadLetterForwarder", () => {
  it("forwards letters with the topic's instance id and a stable letterId; malformed messages are logged and skipped", async () => {
    const { brokerUrl, publish } = await setup();
    const cp = await controlPlane();
    const { log, lines } = captureLog();
    const fwd = await forwarder(cp.url, brokerUrl, log);
    closers.push(() => fwd.close());
    await publish(`redforge/dlq/${INSTANCE}`, letter(1));
    await publish(`redforge/dlq/${INSTANCE}`, "not json");
    await publish(`redforge/dlq/${INSTANCE}`, JSON.stringify({ flowId: "no error field" }));
    // A letter claiming another instance is recorded under the topic's.
    await publish(`redforge/dlq/${INSTANCE}`, letter(2, { instanceId: FOREIGN }));
    await eventually(async () => (cp.received.length === 2 ? true : undefined), 30_000);
    expect(cp.received.map((l) => [l.instanceId, l.flowId, l.error.code])).toEqual([[INSTANCE, "wf-1", "model_unavailable"], [INSTANCE, "wf-2", "model_unavailable"]]);
    expect(cp.received[0]!.letterId).toMatch(/^[0-9a-f]{64}$/);
    expect(cp.received[0]!.input).toEqual({ payload: "text 1", metadata: { flowId: "wf-1" } });
    expect(fwd.stats).toMatchObject({ delivered: 2, malformed: 2 });
    expect(lines.filter((l) => l.includes("ignored a message"))).toHaveLength(2);
  });

  it("letters published while no bridge runs arrive when one comes back (persistent session)", async () => {
    const { brokerUrl, publish } = await setup();
    const cp = await controlPlane();
    const { log } = captureLog();
    const first = await forwarder(cp.url, brokerUrl, log);
    await first.close();
    for (let i = 0; i < 5; i++) await publish(`redforge/dlq/${INSTANCE}`, letter(i));
    const second = await forwarder(cp.url, brokerUrl, log);
    closers.push(() => second.close());
    await eventually(async () => (cp.received.length === 5 ? true : undefined), 30_000);
    expect(cp.received.map((l) => l.flowId)).toEqual(["wf-0", "wf-1", "wf-2", "wf-3", "wf-4"]);
  });

  it("a letter the control plane has not stored is not acknowledged: after a bridge stop it comes again, with the same letterId", async () => {
    const { brokerUrl, publish } = await setup();
    let attempts = 0;
    const cp = await controlPlane(() => { attempts++; return { status: 503, body: { error: { code: "database_unavailable", message: "down" } } }; });
    const { log, lines } = captureLog();
    const first = await forwarder(cp.url, brokerUrl, log);
    await publish(`redforge/dlq/${INSTANCE}`, letter(7));
    await eventually(async () => (attempts >= 2 ? true : undefined), 30_000);
    await first.close();
    expect(cp.received).toHaveLength(0);
    expect(lines.some((l) => l.includes("HTTP 503 database_unavailable"))).toBe(true);

    cp.state.answer = () => ({ status: 202, body: { accepted: true, stored: 1, duplicates: 0 } });
    const second = await forwarder(cp.url, brokerUrl, log);
    closers.push(() => second.close());
    await eventually(async () => (cp.received.length === 1 ? true : undefined), 30_000);
    expect(cp.received[0]!.flowId).toBe("wf-7");
    // The same bytes on the same topic: had a refused-looking try landed, the control plane would store it once.
    expect(new Set(cp.tried.map((l) => l.letterId))).toEqual(new Set([cp.received[0]!.letterId]));
  });

  it("a refused letter (403) is logged and dropped; the next one still arrives", async () => {
    const { brokerUrl, publish } = await setup();
    const cp = await controlPlane((l) => (l.flowId === "wf-1"
      ? { status: 403, body: { error: { code: "instance_not_in_cluster", message: "no" } } }
      : { status: 202, body: { accepted: true, stored: 1, duplicates: 0 } }));
    const { log, lines } = captureLog();
    const fwd = await forwarder(cp.url, brokerUrl, log);
    closers.push(() => fwd.close());
    await publish(`redforge/dlq/${INSTANCE}`, letter(1));
    await publish(`redforge/dlq/${INSTANCE}`, letter(2));
    await eventually(async () => (cp.received.length === 1 ? true : undefined), 30_000);
    expect(cp.received[0]!.flowId).toBe("wf-2");
    expect(fwd.stats).toMatchObject({ delivered: 1, refused: 1 });
    expect(lines.some((l) => l.startsWith("error") && l.includes("refused and dropped") && l.includes("403"))).toBe(true);
  });
});
