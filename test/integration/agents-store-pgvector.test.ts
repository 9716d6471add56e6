/**
 * The storage and query-processing primitives on a real PostgreSQL server
 * with the pgvector extension (not PGlite, not the float8[] fallback): the
 * machine's Postgres at REDFORGE_PGVECTOR_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres), a fresh database per run.
 * Skipped with a message when no server answers there or it has no pgvector
 * (a fresh machine has neither; docs/agents.md "pgvector on a server" says
 * how to install it on Debian's Postgres 15).
 * Proves: the per-dimension HNSW index is created at the first upsert, the
 * planner uses it for the store's search, and its answers agree with an exact
 * scan; in real Node-RED (process driver), embedded chunks stored with
 * STORE_BACKEND=pgvector are found by a question first through storage's
 * search and query-processing's store mode.
 */
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { embed } from "../../dev/model-stand-in/answers.ts";
import { startModelStandIn, type ModelStandIn } from "../../dev/model-stand-in/index.ts";
import { primitiveFlow, routeOf } from "../../flows/primitives/build.mts";
import { flowAnswerViolation, msgInputSchema } from "../../protocol/agents/messageContract.ts";
import { DEFAULT_STACK } from "../../protocol/stacks.ts";
import { until } from "../harness/eventually.ts";
import { freshDatabase, type FreshDatabase } from "../harness/freshDatabase.ts";
import { testBroker, type TestBroker } from "../harness/zeroLoss.ts";

const require = createRequire(import.meta.url);
const { PostgresVectorStore } = require("../../flows/node-package/lib/vectorStore.js");
const { closePools } = require("../../flows/node-package/lib/pgPool.js");

const SERVER = process.env.REDFORGE_PGVECTOR_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const CHUNKS = [
  "The deploy gate holds MQTT work while a runtime drains.",
  "Held work is replayed to the new runtime after the switch.",
  "The bridge reports every AI decision to the control plane.",
  "Blue and green run side by side during a deployment.",
];

let missing: string | undefined;
let db: FreshDatabase | undefined;
let tmp: string | undefined;
let broker: TestBroker | undefined;
let model: ModelStandIn | undefined;
let driver: ProcessDriver | undefined;
let front: string;

/** Why this server cannot run the suite, or undefined when it can. */
async function whyNot(url: string): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
  } catch (err) {
    return `no PostgreSQL answers at ${url.replace(/:[^:@/]*@/, ":***@")} (${(err as Error).message})`;
  }
  try {
    const r = await c.query("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'");
    if (r.rows.length === 0) return `the PostgreSQL at ${new URL(url).host} has no pgvector extension (docs/agents.md "pgvector on a server")`;
    return undefined;
  } finally {
    await c.end().catch(() => {});
  }
}

async function sql<T = any>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query(text, params);
    // A multi-statement text (no parameters) answers one result per statement.
    return (Array.isArray(r) ? r : r.rows) as T[];
  } finally {
    await c.end();
  }
}

function input(payload: unknown, config?: Record<string, unknown>) {
  const msg = { payload, metadata: { flowId: `wf-${crypto.randomUUID().slice(0, 8)}`, timestamp: new Date().toISOString(), source: "agents-store-pgvector-test", contentType: "json" as const }, ...(config ? { config } : {}) };
  msgInputSchema.parse(msg);
  return msg;
}

async function ask(name: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${front}${routeOf(name)}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

/** Deterministic pseudo-random vectors (a seeded LCG), so a failure reproduces. */
function vectors(count: number, dims: number, seed: number): number[][] {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  return Array.from({ length: count }, () => Array.from({ length: dims }, next));
}

const skipUnless = (ctx: { skip: () => void }) => {
  if (!missing) return false;
  console.log(`[agents-store-pgvector] SKIPPED: ${missing}`);
  ctx.skip();
  return true;
};

beforeAll(async () => {
  missing = await whyNot(SERVER);
  if (missing) return;
  db = await freshDatabase(SERVER, "redforge_pgvector_it");
  await sql(db.url, "CREATE EXTENSION IF NOT EXISTS vector");
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-agents-pgvector-"));
  broker = await testBroker();
  model = await startModelStandIn();
  const tarball = await packNodePackage(path.join(tmp, "pkg"));
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball], mqttUrl: broker.url });
  const created = await driver.create({
    id: crypto.randomUUID(), name: "agents-pgvector", flows: ["embeddings", "storage", "query-processing"].flatMap(primitiveFlow), resources: {},
    credentialSecret: "agents-pgvector-test-credential-secret", stack: process.env.REDFORGE_TEST_STACK ?? DEFAULT_STACK,
    env: {
      STORE_POSTGRES_URL: db.url, STORE_TABLE: "agents.vectors", STORE_BACKEND: "pgvector",
      EMBED_API: "ollama", EMBED_URL: model.url, EMBED_MODEL: "nomic-embed-text",
      MODEL_MAX_ATTEMPTS: "2", MODEL_BACKOFF_MS: "100", MODEL_TIMEOUT_MS: "20000",
    },
  });
  front = created.endpoints.front!;
  await until("the primitives' routes", async () => (await ask("embeddings", input(["ready?"]))).status === 200, { timeoutMs: 120_000, intervalMs: 250 });
}, 240_000);

afterAll(async () => {
  await driver?.close();
  await model?.close();
  await broker?.close();
  await closePools();
  await db?.drop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("vector store on a PostgreSQL server with pgvector", () => {
  it("the first upsert of a dimension creates its HNSW index; the store's query matches it and agrees with an exact scan", async (ctx) => {
    if (skipUnless(ctx)) return;
    const url = db!.url;
    const dims = 32;
    const rows = vectors(1200, dims, 7);
    // Loaded without the index (an `index: "none"` store), then the first upsert through an
    // indexed store builds the index over what is there: how an older table gets it.
    const exact = new PostgresVectorStore({ url, table: "lib.vectors", index: "none" });
    expect(await exact.upsert("big", rows.slice(0, 1000).map((v, i) => ({ id: `r${i}`, text: `row ${i}`, vector: v })))).toMatchObject({ upserted: 1000, backend: "postgres/pgvector" });
    expect(await sql(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'lib' AND indexname LIKE '%hnsw%'")).toEqual([]);
    const indexed = new PostgresVectorStore({ url, table: "lib.vectors" });
    await indexed.upsert("big", rows.slice(1000).map((v, i) => ({ id: `r${1000 + i}`, text: `row ${1000 + i}`, vector: v })));
    const [index] = await sql(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'lib' AND indexname LIKE '%hnsw%'");
    expect(index).toMatchObject({ indexname: `vectors_hnsw_${dims}` });
    expect(index.indexdef).toMatch(new RegExp(`USING hnsw \\(\\(\\(?embedding\\)?::vector\\(${dims}\\)\\) vector_cosine_ops\\) WHERE \\(dims = ${dims}\\)`));

    // The store's query matches the index (expression and partial predicate): with sequential
    // scans priced out, the plan is the HNSW index scan. (At 1,200 rows the planner rightly
    // prefers a scan and sort; bench/agents/vector-index.ts shows it picking the index at 20k.)
    await sql(url, "ANALYZE lib.vectors");
    const q = `[${rows[3]!.join(",")}]`;
    const plan = (await sql(url, `SET enable_seqscan = off; EXPLAIN SELECT id FROM lib.vectors WHERE collection = 'big' AND dims = ${dims} ORDER BY embedding::vector(${dims}) <=> '${q}'::vector(${dims}) LIMIT 5`) as any)
      .at(-1).rows.map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n");
    expect(plan).toContain(`Index Scan using vectors_hnsw_${dims}`);

    // A stored vector finds itself first with score 1; HNSW is approximate, so the rest is
    // compared with the exact scan as recall (at 1,200 rows it is normally 1.0).
    const self = await indexed.search("big", rows[3]!, { topK: 10 });
    expect(self.results[0]).toMatchObject({ rank: 1, id: "r3", score: 1 });
    let hits = 0;
    const queries = vectors(10, dims, 99);
    for (const v of queries) {
      const want = new Set((await exact.search("big", v, { topK: 10 })).results.map((r: { id: string }) => r.id));
      const got = (await indexed.search("big", v, { topK: 10 })).results as { id: string; score: number }[];
      expect(got).toHaveLength(10);
      expect(got.map((r) => r.score)).toEqual([...got.map((r) => r.score)].sort((a, b) => b - a));
      hits += got.filter((r) => want.has(r.id)).length;
    }
    expect(hits / (queries.length * 10)).toBeGreaterThanOrEqual(0.9);

    // A small collection in the same table still gets topK rows (the filter drops most of what the index returns).
    await indexed.upsert("small", vectors(12, dims, 3).map((v, i) => ({ id: `s${i}`, text: `small ${i}`, vector: v })));
    expect((await indexed.search("small", queries[0]!, { topK: 10 })).results).toHaveLength(10);
    // Another dimension gets its own index; a query of the wrong dimension is still invalid_input.
    await indexed.upsert("other", vectors(3, 8, 5).map((v, i) => ({ id: `o${i}`, text: `o ${i}`, vector: v })));
    expect((await sql(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'lib' AND indexname LIKE '%hnsw%' ORDER BY 1")).map((r) => r.indexname)).toEqual([`vectors_hnsw_${dims}`, "vectors_hnsw_8"]);
    expect(await indexed.search("other", [1, 0], {}).catch((e: { code: string }) => e.code)).toBe("invalid_input");
  }, 180_000);

  it("storage and query-processing in real Node-RED (STORE_BACKEND=pgvector): chunks stored, a question finds the right one first", async (ctx) => {
    if (skipUnless(ctx)) return;
    const embedded = await ask("embeddings", input(CHUNKS.map((text, index) => ({ index, text }))));
    expect(embedded.status, JSON.stringify(embedded.body)).toBe(200);
    const stored = await ask("storage", input(embedded.body.payload, { collection: "manual" }));
    expect(flowAnswerViolation(stored.body)).toBeUndefined();
    expect(stored.body.payload).toMatchObject({ collection: "manual", upserted: 4, dimensions: 64, backend: "postgres/pgvector" });
    expect(await sql(db!.url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'agents' AND indexname LIKE '%hnsw%'")).toEqual([{ indexname: "vectors_hnsw_64" }]);

    const question = "What is replayed after the switch?";
    const search = await ask("storage", input({ action: "search", collection: "manual", vector: embed(question), topK: 4 }));
    const expected = CHUNKS.map((t) => ({ t, s: cosine(embed(t), embed(question)) })).sort((a, b) => b.s - a.s);
    expect(search.body.payload.backend).toBe("postgres/pgvector");
    expect(search.body.payload.results.map((r: { text: string }) => r.text)).toEqual(expected.map((e) => e.t));
    search.body.payload.results.forEach((r: { score: number }, i: number) => expect(r.score).toBeCloseTo(expected[i]!.s, 5));

    const ranked = await ask("query-processing", input({ query: question, collection: "manual" }, { topK: 2 }));
    expect(flowAnswerViolation(ranked.body)).toBeUndefined();
    expect(ranked.body.payload).toMatchObject({ query: question, collection: "manual", backend: "postgres/pgvector", results: [{ rank: 1, text: CHUNKS[1] }, { rank: 2 }] });

    const wrong = await ask("storage", input({ action: "search", collection: "manual", vector: [1, 0] }));
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/64-dimension vectors, the query has 2/) });
  });
});

function cosine(a: number[], b: number[]) {
  return a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));
}
