/**
 * The bridge's AI decision forwarding against a scripted control plane (real
 * HTTP, signatures checked with the production verifier) and the in-process
 * MQTT broker: batches close at 500 records or the byte cap, a batch keeps its
 * batchId across retries, foreign instances cost only their own records, and
 * a full queue drops the oldest batches with a log line — never silently.
 */
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { AiAuditForwarder } from "../../bridge/aiAuditForwarder.ts";
import { AiAuditSender } from "../../bridge/aiAuditSender.ts";
import type { Logger } from "../../bridge/log.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort, listen } from "../../dev/ports.ts";
import type { AiDecisionRecord } from "../../protocol/aiDecisions.ts";
import { verifyWebhook } from "../../protocol/webhooks.ts";
import { eventually } from "../harness/eventually.ts";

const SECRET = `whsec_${Buffer.from("ai-audit-sender-test-secret-32b!").toString("base64")}`;
const CLUSTER = "7d3f5c2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
const INSTANCE = "11111111-2222-4333-8444-555555555555";
const FOREIGN = "99999999-2222-4333-8444-555555555555";

interface Received { webhookId: string; batchId: string; records: AiDecisionRecord[]; bytes: number }
type Answer = (batch: Received) => { status: number; body?: unknown } | Promise<{ status: number; body?: unknown }>;

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => { for (const c of closers.splice(0).reverse()) await c(); });

async function controlPlane(answer: Answer = () => ({ status: 202 })) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", async () => {
      const check = await verifyWebhook([SECRET], { get: (n) => (req.headers[n] as string | undefined) ?? null }, body);
      if (!check.ok || req.url !== `/api/webhooks/clusters/${CLUSTER}/ai-decisions`) {
        res.writeHead(401).end();
        return;
      }
      const parsed = JSON.parse(body);
      const batch = { webhookId: check.id, batchId: parsed.batchId, records: parsed.records, bytes: Buffer.byteLength(body) };
      received.push(batch);
      const a = await answer(batch);
      res.writeHead(a.status, { "content-type": "application/json" }).end(JSON.stringify(a.body ?? {}));
    });
  });
  await listen(server, 0, "127.0.0.1");
  closers.push(() => new Promise((r) => server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received };
}

function captureLog() {
  const lines: string[] = [];
  const log: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
  return { lines, log };
}

const rec = (i: number, extra: Partial<AiDecisionRecord> = {}): AiDecisionRecord =>
  ({ instanceId: INSTANCE, provider: "openai", model: "gpt-4o-mini", inputTokens: i, outputTokens: 1, ...extra });

function sender(api: string, log: Logger, extra: Partial<ConstructorParameters<typeof AiAuditSender>[0]> = {}) {
  const s = new AiAuditSender({ api, clusterId: CLUSTER, secret: SECRET, log, flushMs: 50, retry: { baseMs: 10, capMs: 50 }, ...extra });
  closers.push(() => s.close(100));
  return s;
}

describe("AiAuditSender", () => {
  it("closes batches at 500 records and before 900 KB, and delivers every record once", async () => {
    const cp = await controlPlane();
    const { log } = captureLog();
    const s = sender(cp.url, log);
    for (let i = 0; i < 1200; i++) s.add(rec(i));
    for (let i = 0; i < 40; i++) s.add(rec(i, { prompt: "p".repeat(30_000) }));
    await s.idle();
    const sizes = cp.received.map((b) => b.records.length);
    expect(Math.max(...sizes)).toBe(500);
    expect(Math.max(...cp.received.map((b) => b.bytes))).toBeLessThan(1024 * 1024);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(1240);
    expect(new Set(cp.received.map((b) => b.batchId)).size).toBe(cp.received.length);
    expect(s.stats).toMatchObject({ accepted: 1240, delivered: 1240, dropped: 0 });
  });

  it("retries a failing batch under the same batchId with a new webhook id each time", async () => {
    let failures = 2;
    const cp = await controlPlane(() => (failures-- > 0 ? { status: 503, body: { error: { code: "database_unavailable" } } } : { status: 202 }));
    const { log, lines } = captureLog();
    const s = sender(cp.url, log);
    for (let i = 0; i < 10; i++) s.add(rec(i));
    await s.idle();
    expect(cp.received).toHaveLength(3);
    expect(new Set(cp.received.map((b) => b.batchId)).size).toBe(1);
    expect(new Set(cp.received.map((b) => b.webhookId)).size).toBe(3);
    expect(s.stats).toMatchObject({ delivered: 10, dropped: 0 });
    expect(lines.some((l) => l.includes("HTTP 503 database_unavailable"))).toBe(true);
  });

  it("drops only a foreign instance's records (logged) and sends the rest again", async () => {
    const cp = await controlPlane((b) => (b.records.some((r) => r.instanceId === FOREIGN)
      ? { status: 403, body: { error: { code: "instance_not_in_cluster", message: "no", details: { instanceIds: [FOREIGN] } } } }
      : { status: 202 }));
    const { log, lines } = captureLog();
    const s = sender(cp.url, log);
    for (let i = 0; i < 6; i++) s.add(rec(i, i % 3 === 0 ? { instanceId: FOREIGN } : {}));
    await s.idle();
    expect(cp.received.at(-1)!.records.map((r) => r.inputTokens)).toEqual([1, 2, 4, 5]);
    expect(s.stats).toMatchObject({ accepted: 6, delivered: 4, dropped: 2 });
    expect(lines.some((l) => l.startsWith("error") && l.includes("2 record(s) dropped") && l.includes(FOREIGN))).toBe(true);
  });

  it("when the queue is full, drops the oldest waiting batches with a log line; the rest still arrive", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const cp = await controlPlane(async () => { await gate; return { status: 202 }; });
    const { log, lines } = captureLog();
    const s = sender(cp.url, log, { maxBatch: 10, concurrency: 1, maxQueued: 50 });
    for (let i = 0; i < 100; i++) s.add(rec(i));
    await eventually(async () => (cp.received.length === 1 ? true : undefined));
    release();
    await s.idle();
    expect(s.stats.dropped).toBeGreaterThan(0);
    expect(s.stats.delivered + s.stats.dropped).toBe(100);
    // The newest records survive: the last one offered was delivered.
    expect(cp.received.flatMap((b) => b.records).some((r) => r.inputTokens === 99)).toBe(true);
    expect(lines.some((l) => l.startsWith("error") && l.includes("queue over 50 records"))).toBe(true);
  });
});

describe("AiAuditForwarder", () => {
  it("forwards records from redforge/audit/{instance}, trusts the topic's instance id, and counts malformed messages", async () => {
    const broker = await startMqttBroker({ port: await freePort(), host: "127.0.0.1" });
    closers.push(() => broker.close());
    const cp = await controlPlane();
    const { log, lines } = captureLog();
    const fwd = new AiAuditForwarder({ api: cp.url, clusterId: CLUSTER, secret: SECRET, log, mqttUrl: broker.url!, flushMs: 50 });
    closers.push(() => fwd.close(100));
    fwd.start();
    await fwd.subscribed();
    const client = await mqtt.connectAsync(broker.url!, { protocolVersion: 4 });
    closers.push(() => client.endAsync());
    await client.publishAsync(`redforge/audit/${INSTANCE}`, JSON.stringify({ ...rec(1), instanceId: FOREIGN }), { qos: 1 });
    await client.publishAsync(`redforge/audit/${INSTANCE}`, "{not json", { qos: 1 });
    await client.publishAsync(`redforge/audit/${INSTANCE}`, JSON.stringify({ provider: "openai" }), { qos: 1 });
    await client.publishAsync(`redforge/audit/${INSTANCE}`, JSON.stringify(rec(2)), { qos: 1 });
    await eventually(async () => (fwd.stats.delivered + fwd.stats.malformed === 4 ? true : undefined));
    expect(cp.received.flatMap((b) => b.records).map((r) => [r.instanceId, r.inputTokens])).toEqual([[INSTANCE, 1], [INSTANCE, 2]]);
    expect(fwd.stats).toMatchObject({ delivered: 2, malformed: 2, dropped: 0 });
    expect(lines.filter((l) => l.includes("ignored a message"))).toHaveLength(2);
  });
});
