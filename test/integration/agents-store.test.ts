/**
 * The storage, memory and file-converter primitives, and query-processing's
 * store mode, in one real Node-RED (process driver, the packed node package
 * with its bundled pg / unpdf / mammoth) against a real Postgres (embedded,
 * or REDFORGE_DATABASE_URL's server), the model stand-in (Ollama API) and
 * the test MQTT broker; Redis memory when a Redis answers on REDIS_URL
 * (default 127.0.0.1:6379), skipped with a message otherwise.
 * Proves: PDF/DOCX → text; chunks embedded and stored, then found by a
 * question first (storage search and query-processing's store mode), and
 * answered by response-generation; memory recall order; invalid_input 400;
 * an unreachable store → 503 store_unavailable with a dead letter.
 */
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { embed } from "../../dev/model-stand-in/answers.ts";
import { startModelStandIn, type ModelStandIn } from "../../dev/model-stand-in/index.ts";
import { freePort } from "../../dev/ports.ts";
import { primitiveFlow, routeOf } from "../../flows/primitives/build.mts";
import { dlqTopic, flowAnswerViolation, msgInputSchema, msgOutputSchema } from "../../protocol/agents/messageContract.ts";
import { DEFAULT_STACK } from "../../protocol/stacks.ts";
import { agentsPostgres, type AgentsPostgres } from "../harness/agentsPostgres.ts";
import { until } from "../harness/eventually.ts";
import { testBroker, type TestBroker } from "../harness/zeroLoss.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
let tmp: string;
let db: AgentsPostgres;
let broker: TestBroker;
let model: ModelStandIn;
let driver: ProcessDriver;
let bus: MqttClient;
let front: string;
let redisUp = false;
const instanceId = crypto.randomUUID();
const deadLetters: any[] = [];

const fixture = (name: string) => fs.readFile(new URL(`../fixtures/agents/${name}`, import.meta.url));

function input(payload: unknown, config?: Record<string, unknown>, contentType: "text" | "json" | "binary" = typeof payload === "string" ? "text" : "json") {
  const msg = { payload, metadata: { flowId: `wf-${crypto.randomUUID().slice(0, 8)}`, timestamp: new Date().toISOString(), source: "agents-store-test", contentType }, ...(config ? { config } : {}) };
  msgInputSchema.parse(msg);
  return msg;
}

async function ask(route: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${front}${route.startsWith("/") ? route : routeOf(route)}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

function expectContract(name: string, sent: { metadata: { flowId: string } }, got: { status: number; body: any }, status = 200) {
  expect(got.status, JSON.stringify(got.body)).toBe(status);
  expect(flowAnswerViolation(got.body), JSON.stringify(got.body)).toBeUndefined();
  const out = msgOutputSchema.parse(got.body);
  expect(out.metadata).toMatchObject({ flowId: sent.metadata.flowId, source: name });
  return out;
}

/**
 * A copy of a primitive's flow under other ids and route, with some of its store
 * node's settings fixed: what the same flow does in an instance whose env says so.
 */
function variant(name: string, suffix: string, nodeType: string, settings: Record<string, string>) {
  const prefix = primitiveFlow(name)[0]!.id.replace(/-tab$/, "");
  const text = JSON.stringify(primitiveFlow(name)).replaceAll(`"${prefix}-`, `"${prefix}${suffix}-`).replaceAll(`"${routeOf(name)}"`, `"${routeOf(name)}-${suffix}"`);
  return (JSON.parse(text) as Record<string, unknown>[]).map((n) => (n.type === nodeType ? { ...n, ...settings } : n));
}

async function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) || 6379 }, () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
  });
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-agents-store-"));
  db = await agentsPostgres("redforge_agents_it");
  broker = await testBroker();
  model = await startModelStandIn();
  redisUp = await reachable(REDIS_URL);
  bus = await connectAsync(broker.url, { protocolVersion: 4, clientId: `agents-store-test-${process.pid}` });
  bus.on("message", (_topic, payload) => deadLetters.push(JSON.parse(payload.toString())));
  await bus.subscribeAsync(dlqTopic(instanceId), { qos: 1 });
  const tarball = await packNodePackage(path.join(tmp, "pkg"));
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball], mqttUrl: broker.url });
  const flows = [
    ...["file-converter", "text-chunking", "embeddings", "storage", "query-processing", "response-generation", "memory"].flatMap(primitiveFlow),
    // Nothing listens on this port: the store is down.
    ...variant("storage", "down", "redforge-vector-store", { postgresUrl: `postgres://u:p@127.0.0.1:${await freePort()}/none` }),
    ...(redisUp ? variant("memory", "redis", "redforge-memory", { redisUrl: REDIS_URL, prefix: `redforge-it:${instanceId}:` }) : []),
  ];
  const created = await driver.create({
    id: instanceId, name: "agents-store", flows, resources: {}, credentialSecret: "agents-store-test-credential-secret",
    stack: process.env.REDFORGE_TEST_STACK ?? DEFAULT_STACK,
    env: {
      // The float8[] fallback, also on a server that has pgvector (agents-store-pgvector.test.ts covers that path).
      STORE_POSTGRES_URL: db.url, STORE_TABLE: "agents.vectors", STORE_COLLECTION: "default_docs", STORE_BACKEND: "array",
      MEMORY_POSTGRES_URL: db.url, MEMORY_TABLE: "agents.memory",
      CHUNK_SIZE: "80", CHUNK_OVERLAP: "0",
      EMBED_API: "ollama", EMBED_URL: model.url, EMBED_MODEL: "nomic-embed-text",
      CHAT_API: "ollama", CHAT_URL: model.url, CHAT_MODEL: "llama3.2",
      MODEL_MAX_ATTEMPTS: "2", MODEL_BACKOFF_MS: "100", MODEL_TIMEOUT_MS: "20000",
    },
  });
  front = created.endpoints.front!;
  await until("the primitives' routes", async () => (await ask("file-converter", input("Ready?"))).status === 200, { timeoutMs: 120_000, intervalMs: 250 });
}, 240_000);

afterAll(async () => {
  await driver?.close();
  await bus?.endAsync();
  await model?.close();
  await broker?.close();
  await db?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("storage, memory and file-converter primitives in real Node-RED", () => {
  it("file-converter: a PDF and a DOCX (base64, contentType binary) to their text; text passes through; details on request", async () => {
    const pdf = input((await fixture("sample.pdf")).toString("base64"), undefined, "binary");
    const out = expectContract("file-converter", pdf, await ask("file-converter", pdf));
    expect(out.payload).toBe("The deploy gate holds MQTT work while a runtime drains.\n\nHeld work is replayed after the switch.");
    expect(out.metadata.contentType).toBe("text");
    const docx = input({ data: (await fixture("sample.docx")).toString("base64"), filename: "sample.docx" }, { details: true });
    expect(expectContract("file-converter", docx, await ask("file-converter", docx)).payload).toMatchObject({
      text: "Blue and green run side by side during a deployment.\n\nThe bridge reports every AI decision.", format: "docx", via: "docx",
    });
    const text = input("Already text.");
    expect(expectContract("file-converter", text, await ask("file-converter", text)).payload).toBe("Already text.");
  });

  it("file-converter refuses what it cannot read: 400 invalid_input", async () => {
    for (const sent of [input(42), input(Buffer.from([0, 1, 2, 3]).toString("base64"), undefined, "binary"), input(Buffer.from("%PDF-1.4 broken").toString("base64"), undefined, "binary")]) {
      const out = expectContract("file-converter", sent, await ask("file-converter", sent), 400);
      expect(out.error).toMatchObject({ code: "invalid_input" });
    }
  });

  it("ingest: converted text → chunks → embeddings → storage; a question finds the right chunk first (storage search and query-processing's store mode), and response-generation answers from it", async () => {
    const pdf = input((await fixture("sample.pdf")).toString("base64"), undefined, "binary");
    const text = (await ask("file-converter", pdf)).body.payload as string;
    const doc = `${text}\n\n${(await ask("file-converter", input({ data: (await fixture("sample.docx")).toString("base64") }))).body.payload}`;
    const chunks = (await ask("text-chunking", input(doc))).body.payload as { text: string }[];
    expect(chunks.map((c) => c.text)).toEqual([
      "The deploy gate holds MQTT work while a runtime drains.", "Held work is replayed after the switch.",
      "Blue and green run side by side during a deployment.", "The bridge reports every AI decision.",
    ]);
    const vectors = (await ask("embeddings", input(chunks.slice(0, 3)))).body.payload as { text: string; embedding: number[] }[];
    expect(vectors.map((v) => v.embedding)).toEqual(chunks.slice(0, 3).map((c) => embed(c.text)));
    // The embeddings answer goes in unchanged (a bare array is an upsert), into the collection config names.
    const stored = input(vectors, { collection: "manual" });
    const up = expectContract("storage", stored, await ask("storage", stored));
    expect(up.payload).toMatchObject({ collection: "manual", upserted: 3, dimensions: 64, backend: "postgres/array" });

    const question = "What is replayed after the switch?";
    const search = input({ action: "search", collection: "manual", vector: embed(question), topK: 3 });
    const found = expectContract("storage", search, await ask("storage", search)).payload as { results: { rank: number; id: string; score: number; text: string; metadata: any }[] };
    expect(found.results.map((r) => r.text)).toEqual([chunks[1]!.text, ...[chunks[0]!, chunks[2]!].map((c) => c.text).sort((a, b) => cosine(embed(b), embed(question)) - cosine(embed(a), embed(question)))]);
    expect(found.results[0]).toMatchObject({ rank: 1, metadata: { index: 1, start: expect.any(Number), end: expect.any(Number) } });
    expect(found.results[0]!.score).toBeCloseTo(cosine(embed(chunks[1]!.text), embed(question)), 5);

    const query = input({ query: question, collection: "manual" }, { topK: 2 });
    const ranked = expectContract("query-processing", query, await ask("query-processing", query)).payload as any;
    expect(ranked).toMatchObject({ query: question, model: "nomic-embed-text", collection: "manual", backend: "postgres/array" });
    expect(ranked.results.map((r: { id: string }) => r.id)).toEqual(found.results.slice(0, 2).map((r) => r.id));
    const answer = await ask("response-generation", input({ question, context: ranked.results }));
    expect(answer.body.payload.answer).toBe("Held work is replayed after the switch.");

    // No collection named: STORE_COLLECTION; the message mode of query-processing still works beside the store mode.
    await ask("storage", input(vectors.slice(0, 1)));
    const byDefault = await ask("query-processing", input({ query: "deploy gate" }));
    expect(byDefault.body.payload).toMatchObject({ collection: "default_docs", results: [{ text: chunks[0]!.text }] });
    const inMessage = await ask("query-processing", input({ query: question, candidates: vectors }));
    expect(inMessage.body.payload.results[0]).toMatchObject({ index: 1, text: chunks[1]!.text });

    // The rows are where STORE_TABLE says.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      expect((await c.query("SELECT collection, count(*)::int AS n FROM agents.vectors GROUP BY 1 ORDER BY 1")).rows).toEqual([{ collection: "default_docs", n: 1 }, { collection: "manual", n: 3 }]);
    } finally {
      await c.end();
    }
  });

  it("storage and query-processing refuse bad input with 400 invalid_input", async () => {
    const cases: [string, unknown, RegExp][] = [
      ["storage", "text", /payload must be/],
      ["storage", [{ text: "no vector" }], /vector/],
      ["storage", { action: "search", collection: "manual", vector: [1, 0] }, /64-dimension vectors, the query has 2/],
      ["storage", { action: "drop" }, /action must be/],
      ["storage", { action: "search", collection: "not-allowed", vector: [1] }, /collection must be/],
      ["query-processing", { query: "" }, /payload must be/],
    ];
    for (const [name, payload, message] of cases) {
      const sent = input(payload);
      const out = expectContract(name, sent, await ask(name, sent), 400);
      expect(out.error).toMatchObject({ code: "invalid_input", message: expect.stringMatching(message) });
    }
  });

  it("an unreachable store: 503 store_unavailable and a dead letter with the input", async () => {
    const sent = input([{ id: "a", text: "t", embedding: [1, 0] }]);
    const out = expectContract("storage", sent, await ask("/agents/storage-down", sent), 503);
    expect(out.error).toMatchObject({ code: "store_unavailable", message: expect.stringMatching(/ECONNREFUSED|connect/) });
    const letter = await until("the dead letter", () => deadLetters.find((d) => d.flowId === sent.metadata.flowId), { timeoutMs: 15_000 });
    expect(letter).toMatchObject({ instanceId, primitive: "storage", error: { code: "store_unavailable" }, input: { payload: sent.payload } });
  });

  async function conversation(route: string) {
    const conv = `conv-${crypto.randomUUID().slice(0, 8)}`;
    const first = input({ action: "append", conversationId: conv, turns: [{ role: "user", content: "What holds MQTT work?" }, { role: "assistant", content: "The deploy gate." }] });
    expect(expectContract("memory", first, await ask(route, first)).payload).toMatchObject({ conversationId: conv, appended: 2, turns: 2 });
    const second = input({ action: "append", conversationId: conv, role: "user", content: "And after the switch?" });
    expect((await ask(route, second)).body.payload).toMatchObject({ appended: 1, turns: 3 });
    const recall = input({ action: "recall", conversationId: conv, last: 2 });
    const got = expectContract("memory", recall, await ask(route, recall)).payload as { turns: { role: string; content: string }[] };
    expect(got.turns.map((t) => [t.role, t.content])).toEqual([["assistant", "The deploy gate."], ["user", "And after the switch?"]]);
    const all = (await ask(route, input({ action: "recall", conversationId: conv }, { last: 10 }))).body.payload.turns;
    expect(all.map((t: { content: string }) => t.content)).toEqual(["What holds MQTT work?", "The deploy gate.", "And after the switch?"]);
    expect((await ask(route, input({ action: "forget", conversationId: conv }))).body.payload).toMatchObject({ deleted: expect.any(Number) });
    expect((await ask(route, input({ action: "recall", conversationId: conv }))).body.payload.turns).toEqual([]);
    const bad = input({ action: "append", conversationId: conv, turns: [{ content: "no role" }] });
    expect(expectContract("memory", bad, await ask(route, bad), 400).error).toMatchObject({ code: "invalid_input" });
    return got;
  }

  it("memory on Postgres: append, recall the last N oldest first, forget", async () => {
    expect((await conversation(routeOf("memory"))).turns).toHaveLength(2);
  });

  it("memory on Redis (REDIS_URL): the same behaviour", async (ctx) => {
    if (!redisUp) {
      console.log(`[agents-store] SKIPPED: no Redis at ${REDIS_URL}; the Redis memory path did not run (start redis-server or set REDIS_URL)`);
      return ctx.skip();
    }
    await conversation(`${routeOf("memory")}-redis`);
  });
});

function cosine(a: number[], b: number[]) {
  return a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));
}
