/**
 * The storage and memory nodes' libraries (flows/node-package/lib) against a
 * real Postgres (embedded, or REDFORGE_DATABASE_URL's server) and, when one
 * answers on 127.0.0.1:6379, a real Redis (directly over RESP, and through
 * the Upstash REST relay). Vectors come from the model stand-in's embedding.
 */
import { createRequire } from "node:module";
import net from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embed } from "../../dev/model-stand-in/answers.ts";
import { freePort } from "../../dev/ports.ts";
import { startUpstashRelay } from "../../dev/upstash-relay.ts";
import { agentsPostgres, type AgentsPostgres } from "../harness/agentsPostgres.ts";

const require = createRequire(import.meta.url);
const { PostgresVectorStore, normalizeItems } = require("../../flows/node-package/lib/vectorStore.js");
const { PostgresMemory, RedisMemory } = require("../../flows/node-package/lib/memoryStore.js");
const { RespClient, parseReply, encode } = require("../../flows/node-package/lib/redisClient.js");
const { closePools } = require("../../flows/node-package/lib/pgPool.js");

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const CHUNKS = [
  { id: "gate", text: "The deploy gate holds MQTT work while a runtime drains." },
  { id: "replay", text: "Held work is replayed to the new runtime after the switch." },
  { id: "audit", text: "The bridge reports every AI decision to the control plane." },
];
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

/** Resolves to the rejection's {code, message}, failing when it resolves. */
async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
  throw new Error("expected a failure");
}

async function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) || 6379 }, () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
  });
}

let db: AgentsPostgres;
let hasPgvector = false;
let redisUp = false;

beforeAll(async () => {
  db = await agentsPostgres("redforge_agents_store");
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  hasPgvector = (await c.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).rowCount === 1;
  await c.end();
  redisUp = await reachable(REDIS_URL);
}, 120_000);

afterAll(async () => {
  await closePools();
  await db?.stop();
});

describe("vector store on Postgres", () => {
  it("float8[] fallback: ingests 3 chunks with the stand-in's embeddings; a question finds the right one first, scored by cosine", async () => {
    const store = new PostgresVectorStore({ url: db.url, table: "agents_a.vectors", mode: "array" });
    const up = await store.upsert("docs", CHUNKS.map((c, i) => ({ ...c, embedding: embed(c.text), index: i })));
    expect(up).toMatchObject({ collection: "docs", upserted: 3, ids: ["gate", "replay", "audit"], dimensions: 64, backend: "postgres/array" });
    const q = embed("What happens to held work after the switch?");
    const found = await store.search("docs", q, { topK: 3 });
    expect(found.backend).toBe("postgres/array");
    expect(found.results.map((r: { id: string }) => r.id)[0]).toBe("replay");
    const expected = CHUNKS.map((c) => ({ id: c.id, score: cosine(embed(c.text), q) })).sort((a, b) => b.score - a.score);
    expect(found.results.map((r: { id: string }) => r.id)).toEqual(expected.map((e) => e.id));
    found.results.forEach((r: { score: number }, i: number) => expect(r.score).toBeCloseTo(expected[i]!.score, 5));
    // The chunk's other fields became its metadata.
    expect(found.results[0]).toMatchObject({ rank: 1, text: CHUNKS[1]!.text, metadata: { index: 1 } });
    expect((await store.search("docs", q, { topK: 1 })).results).toHaveLength(1);
    expect((await store.search("docs", q, { minScore: 0.99 })).results).toEqual([]);
    expect((await store.search("nothing_here", q, {})).results).toEqual([]);
  });

  it("upserting an id again replaces it; items without an id get one from their text; delete removes by id", async () => {
    const store = new PostgresVectorStore({ url: db.url, table: "vectors_b", mode: "array" });
    await store.upsert("c", [{ id: "x", text: "old text about cats", vector: embed("old text about cats") }]);
    await store.upsert("c", [{ id: "x", text: "new text about dogs", vector: embed("new text about dogs"), metadata: { v: 2 } }]);
    const r = await store.search("c", embed("dogs"), { topK: 10 });
    expect(r.results).toEqual([expect.objectContaining({ id: "x", text: "new text about dogs", metadata: { v: 2 } })]);
    const a = await store.upsert("c", [{ text: "same words", vector: embed("same words") }]);
    const b = await store.upsert("c", [{ text: "same words", vector: embed("same words") }]);
    expect(a.ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(b.ids).toEqual(a.ids);
    expect((await store.search("c", embed("x"), { topK: 10 })).results).toHaveLength(2);
    expect(await store.remove("c", ["x"])).toEqual({ collection: "c", deleted: 1 });
    // One id twice in a call: the last item wins. More than one statement's worth of items (500) in one call.
    await store.upsert("twice", [{ id: "d", text: "first", vector: [1, 0] }, { id: "d", text: "second", vector: [0, 1] }]);
    expect((await store.search("twice", [0, 1], { topK: 5 })).results).toEqual([expect.objectContaining({ id: "d", text: "second", score: 1 })]);
    const many = Array.from({ length: 1203 }, (_, i) => ({ id: `m${i}`, text: `item ${i}`, vector: [Math.cos(i / 1000), Math.sin(i / 1000)] }));
    expect(await store.upsert("many", many)).toMatchObject({ upserted: 1203 });
    const last = await store.search("many", [Math.cos(1.202), Math.sin(1.202)], { topK: 2 });
    expect(last.results.map((r: { id: string }) => r.id)).toEqual(["m1202", "m1201"]);
  });

  it("refuses what it cannot store or search with invalid_input", async () => {
    const store = new PostgresVectorStore({ url: db.url, table: "vectors_c", mode: "array" });
    await store.upsert("dims", [{ id: "1", text: "t", vector: [1, 0, 0] }]);
    expect(await failure(store.upsert("dims", [{ id: "2", text: "t", vector: [1, 0] }]))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/3-dimension/) });
    expect(await failure(store.search("dims", [0, 1], {}))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/3-dimension vectors, the query has 2/) });
    expect(await failure(store.search("dims", [0, 0, 0], {}))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/all zeros/) });
    expect(await failure(store.search("bad-name", [1], {}))).toMatchObject({ code: "invalid_input" });
    expect(await failure(store.search("dims", [1, 0, 0], { topK: 0 }))).toMatchObject({ code: "invalid_input" });
    expect(() => normalizeItems([{ text: "t", vector: ["a"] }])).toThrow(/finite numbers/);
    expect(() => normalizeItems([{ vector: [1] }])).toThrow(/no text/);
    expect(() => normalizeItems([{ text: "a", vector: [1, 2] }, { text: "b", vector: [1] }])).toThrow(/dimensions/);
  });

  it("auto mode uses pgvector when the extension can be created, else the float8[] column; a table keeps the mode it was created with", async () => {
    const store = new PostgresVectorStore({ url: db.url, table: "vectors_auto" });
    await store.upsert("docs", CHUNKS.map((c) => ({ ...c, embedding: embed(c.text) })));
    const found = await store.search("docs", embed("Who reports every AI decision?"), { topK: 1 });
    expect(found.results[0].id).toBe("audit");
    expect(found.backend).toBe(hasPgvector ? "postgres/pgvector" : "postgres/array");
    if (!hasPgvector) {
      console.log("[agents-store] this Postgres has no pgvector (pg_available_extensions): only the float8[] path ran");
      const strict = new PostgresVectorStore({ url: db.url, table: "vectors_strict", mode: "pgvector" });
      expect(await failure(strict.upsert("d", [{ id: "1", text: "t", vector: [1] }]))).toMatchObject({ code: "store_rejected", message: expect.stringMatching(/pgvector/) });
    }
    // A second store on the same table reads its column type instead of deciding again.
    const again = new PostgresVectorStore({ url: db.url, table: "vectors_auto", mode: "auto" });
    expect((await again.search("docs", embed("gate"), {})).backend).toBe(found.backend);
  });

  it("an unreachable Postgres is store_unavailable; a bad table name or wrong password is store_rejected", async () => {
    const port = await freePort();
    const down = new PostgresVectorStore({ url: `postgres://u:p@127.0.0.1:${port}/x`, table: "v" });
    expect(await failure(down.search("c", [1], {}))).toMatchObject({ code: "store_unavailable", message: expect.stringMatching(/ECONNREFUSED|connect/) });
    expect(() => new PostgresVectorStore({ url: db.url, table: "v; DROP TABLE x" })).toThrow(expect.objectContaining({ code: "store_rejected" }));
    const u = new URL(db.url);
    u.password = "wrong-password";
    const refused = new PostgresVectorStore({ url: u.toString(), table: "v" });
    expect(await failure(refused.search("c", [1], {}))).toMatchObject({ code: "store_rejected", message: expect.stringMatching(/password|authentication/) });
  });
});

describe("conversation memory", () => {
  async function recallOrder(memory: { append: Function; recall: Function; forget: Function }, conv: string) {
    expect(await memory.append(conv, [{ role: "user", content: "one" }, { role: "assistant", content: "two" }])).toMatchObject({ conversationId: conv, appended: 2, turns: 2 });
    expect(await memory.append(conv, [{ role: "user", content: "three", metadata: { n: 3 } }])).toMatchObject({ appended: 1, turns: 3 });
    await memory.append(`${conv}-other`, [{ role: "user", content: "elsewhere" }]);
    const last2 = await memory.recall(conv, 2);
    expect(last2.turns.map((t: { content: string }) => t.content)).toEqual(["two", "three"]);
    expect(last2.turns[1]).toMatchObject({ role: "user", metadata: { n: 3 }, at: expect.stringMatching(/^\d{4}-/) });
    expect((await memory.recall(conv, 10)).turns.map((t: { content: string }) => t.content)).toEqual(["one", "two", "three"]);
    expect(await memory.forget(conv)).toMatchObject({ deleted: expect.any(Number) });
    expect((await memory.recall(conv, 10)).turns).toEqual([]);
    expect((await memory.recall(`${conv}-other`, 10)).turns).toHaveLength(1);
    expect(await failure(memory.append("", [{ role: "user", content: "x" }]))).toMatchObject({ code: "invalid_input" });
    expect(await failure(memory.append(conv, [{ content: "no role" }]))).toMatchObject({ code: "invalid_input" });
    expect(await failure(memory.recall(conv, 0))).toMatchObject({ code: "invalid_input" });
  }

  it("Postgres: appends keep their order, recall gives the last N oldest first, per conversation", async () => {
    await recallOrder(new PostgresMemory({ url: db.url, table: "agents_m.memory" }), `conv-${Date.now()}`);
  });

  it("Redis over RESP: the same, with a TTL refreshed on append and a cap on kept turns", async (ctx) => {
    if (!redisUp) {
      console.log(`[agents-store] SKIPPED: no Redis at ${REDIS_URL} (set REDIS_URL or start redis-server to run the Redis memory path)`);
      return ctx.skip();
    }
    const prefix = `redforge-test:${process.pid}:${Date.now()}:`;
    await recallOrder(new RedisMemory({ url: REDIS_URL, prefix }), "conv");
    const capped = new RedisMemory({ url: REDIS_URL, prefix, ttlSeconds: 60, maxKept: 2 });
    await capped.append("cap", [{ role: "user", content: "a" }, { role: "user", content: "b" }, { role: "user", content: "c" }]);
    expect((await capped.recall("cap", 10)).turns.map((t: { content: string }) => t.content)).toEqual(["b", "c"]);
    const raw = new RespClient(REDIS_URL);
    const ttl = await raw.command(["TTL", `${prefix}cap`]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    await raw.command(["DEL", `${prefix}cap`, `${prefix}conv-other`]);
    raw.close();
  });

  it("Redis through the Upstash REST protocol (the relay in front of the same Redis)", async (ctx) => {
    if (!redisUp) {
      console.log(`[agents-store] SKIPPED: no Redis at ${REDIS_URL} for the Upstash relay`);
      return ctx.skip();
    }
    const relay = await startUpstashRelay({ port: await freePort(), redisUrl: REDIS_URL, token: "upstash-test-token" });
    try {
      await recallOrder(new RedisMemory({ url: relay.url, token: "upstash-test-token", prefix: `redforge-test:rest:${Date.now()}:` }), "conv");
      const wrong = new RedisMemory({ url: relay.url, token: "nope", prefix: "x:" });
      expect(await failure(wrong.recall("c", 1))).toMatchObject({ code: "store_rejected" });
    } finally {
      await relay.close();
    }
  });

  it("an unreachable Redis is store_unavailable, and the client connects again once it answers", async () => {
    const port = await freePort();
    const memory = new RedisMemory({ url: `redis://127.0.0.1:${port}`, prefix: "x:" });
    expect(await failure(memory.recall("c", 1))).toMatchObject({ code: "store_unavailable", message: expect.stringMatching(/ECONNREFUSED/) });
    // A RESP server answering on that port now (a tiny one: LRANGE → empty array).
    const server = net.createServer((s) => s.on("data", () => s.write("*0\r\n")));
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    try {
      expect(await memory.recall("c", 1)).toMatchObject({ turns: [] });
    } finally {
      memory.client.close();
      server.close();
    }
  });

  it("RESP replies split across reads are parsed whole", () => {
    const wire = Buffer.from("*3\r\n$5\r\nhello\r\n:42\r\n$-1\r\n+OK\r\n-ERR wrong\r\n");
    for (let cut = 1; cut < 24; cut++) expect(parseReply(wire.subarray(0, cut), 0)).toBeUndefined();
    const [v, next] = parseReply(wire, 0);
    expect(v).toEqual(["hello", 42, null]);
    expect(parseReply(wire, next)[0]).toBe("OK");
    expect(parseReply(wire, parseReply(wire, next)[1])[0]).toMatchObject({ code: "store_rejected", message: "Redis: ERR wrong" });
    expect(encode(["SET", "k", "é"])).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n");
  });
});
