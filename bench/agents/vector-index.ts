/**
 * The storage primitive's search latency with and without pgvector's HNSW
 * index, on a real PostgreSQL server with the extension (the machine's, at
 * REDFORGE_PGVECTOR_URL, default postgres://postgres@127.0.0.1:5432/postgres;
 * a fresh database, dropped at the end). The store's own code
 * (flows/node-package/lib/vectorStore.js) runs both searches against one
 * table: `index: "none"` is the exact scan (ORDER BY embedding <=> q, id),
 * the default store orders by the per-dimension index's expression. Queries
 * alternate between the two so load changes hit both alike. Prints load
 * rate, index build time, p50/p99 of each, their ratio, recall@topK of the
 * indexed search against the exact one, and the plan the indexed query got.
 * `--array N` also times N searches on the float8[] fallback (same rows).
 * Exits 0 with a message when the server or pgvector is missing.
 *
 *   npx tsx bench/agents/vector-index.ts [--rows 20000] [--dims 384] [--queries 60] [--topk 10] [--array 0]
 */
import { createRequire } from "node:module";
import os from "node:os";
import pg from "pg";
import { freshDatabase } from "../../test/harness/freshDatabase.ts";
import { percentile as pct } from "../quantile.ts";

const require = createRequire(import.meta.url);
const { PostgresVectorStore } = require("../../flows/node-package/lib/vectorStore.js");
const { closePools } = require("../../flows/node-package/lib/pgPool.js");

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const ROWS = arg("rows", 20_000);
const DIMS = arg("dims", 384);
const QUERIES = arg("queries", 60);
const TOP_K = arg("topk", 10);
const ARRAY_QUERIES = arg("array", 0);
const SERVER = process.env.REDFORGE_PGVECTOR_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * Embedding-like vectors: 200 seeded cluster centres plus noise (real
 * embeddings cluster by topic; uniform random vectors are HNSW's worst case).
 */
function makeVectors(count: number, seed: number, centres: number[][]): number[][] {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  return Array.from({ length: count }, () => {
    const c = centres[Math.floor((next() + 0.5) * centres.length) % centres.length]!;
    return c.map((x) => x + 0.35 * next());
  });
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await f();
  return [r, performance.now() - t];
}

async function main() {
  const probe = new pg.Client({ connectionString: SERVER, connectionTimeoutMillis: 3000 });
  try {
    await probe.connect();
    const r = await probe.query("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'");
    if (r.rows.length === 0) {
      console.log(`[vector-index] SKIPPED: ${new URL(SERVER).host} has no pgvector extension (docs/agents.md "pgvector on a server")`);
      return;
    }
  } catch (err) {
    console.log(`[vector-index] SKIPPED: no PostgreSQL at ${new URL(SERVER).host} (${(err as Error).message})`);
    return;
  } finally {
    await probe.end().catch(() => {});
  }

  const db = await freshDatabase(SERVER, "redforge_bench_vectors");
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query("CREATE EXTENSION IF NOT EXISTS vector");
    const centres = makeVectors(200, 1, [new Array(DIMS).fill(0)]).map((v) => v.map((x) => x * 2));
    const rows = makeVectors(ROWS, 42, centres);
    const queries = makeVectors(QUERIES, 4242, centres);
    console.log(`[vector-index] ${ROWS} vectors of ${DIMS} dimensions, ${QUERIES} queries, topK ${TOP_K}, pgvector ${(await c.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).rows[0].extversion}, load ${os.loadavg()[0]!.toFixed(1)}`);

    const exact = new PostgresVectorStore({ url: db.url, table: "bench.vectors", index: "none" });
    const [, loadMs] = await timed(async () => {
      for (let i = 0; i < ROWS; i += 1000) {
        await exact.upsert("docs", rows.slice(i, i + 1000).map((v, j) => ({ id: `r${i + j}`, text: `row ${i + j}`, vector: v })));
      }
    });
    console.log(`load without index: ${(ROWS / (loadMs / 1000)).toFixed(0)} rows/s (${(loadMs / 1000).toFixed(1)} s)`);

    // The first upsert through an indexed store builds the index over the rows already there.
    const indexed = new PostgresVectorStore({ url: db.url, table: "bench.vectors" });
    const [, buildMs] = await timed(() => indexed.upsert("docs", [{ id: "r0", text: "row 0", vector: rows[0]! }]));
    await c.query("ANALYZE bench.vectors");
    console.log(`HNSW build over ${ROWS} rows (m 16, ef_construction 64): ${(buildMs / 1000).toFixed(1)} s`);

    const q0 = `[${queries[0]!.join(",")}]`;
    const plan = (await c.query(`EXPLAIN SELECT id FROM bench.vectors WHERE collection = 'docs' AND dims = ${DIMS} ORDER BY embedding::vector(${DIMS}) <=> '${q0}'::vector(${DIMS}) LIMIT ${TOP_K}`)).rows
      .map((r) => String(r["QUERY PLAN"]).slice(0, 90)).join(" / ");
    console.log(`indexed query's plan: ${plan}`);

    // Warm both paths (buffers, plans), then alternate.
    await exact.search("docs", queries[0]!, { topK: TOP_K });
    await indexed.search("docs", queries[0]!, { topK: TOP_K });
    const tExact: number[] = [];
    const tIndexed: number[] = [];
    let hits = 0;
    for (const q of queries) {
      const [a, ta] = await timed<any>(() => exact.search("docs", q, { topK: TOP_K }));
      const [b, tb] = await timed<any>(() => indexed.search("docs", q, { topK: TOP_K }));
      tExact.push(ta);
      tIndexed.push(tb);
      const want = new Set(a.results.map((r: { id: string }) => r.id));
      hits += b.results.filter((r: { id: string }) => want.has(r.id)).length;
    }
    const row = (name: string, t: number[]) => console.log(`${name.padEnd(28)} p50 ${ms(pct(t, 50)).padStart(10)}   p99 ${ms(pct(t, 99)).padStart(10)}`);
    row("exact scan (index: none)", tExact);
    row("HNSW index (default)", tIndexed);
    console.log(`ratio exact / indexed: p50 ${(pct(tExact, 50) / pct(tIndexed, 50)).toFixed(1)}x, p99 ${(pct(tExact, 99) / pct(tIndexed, 99)).toFixed(1)}x`);
    console.log(`recall@${TOP_K} of the indexed search against the exact one: ${(hits / (QUERIES * TOP_K)).toFixed(3)}; load ${os.loadavg()[0]!.toFixed(1)}`);

    if (ARRAY_QUERIES > 0) {
      const fallback = new PostgresVectorStore({ url: db.url, table: "bench.vectors_array", mode: "array" });
      for (let i = 0; i < ROWS; i += 1000) {
        await fallback.upsert("docs", rows.slice(i, i + 1000).map((v, j) => ({ id: `r${i + j}`, text: `row ${i + j}`, vector: v })));
      }
      const tArray: number[] = [];
      for (const q of queries.slice(0, ARRAY_QUERIES)) tArray.push((await timed(() => fallback.search("docs", q, { topK: TOP_K })))[1]);
      row("float8[] fallback (exact)", tArray);
      console.log(`ratio float8[] / indexed: p50 ${(pct(tArray, 50) / pct(tIndexed, 50)).toFixed(0)}x`);
    }
  } finally {
    await c.end();
    await closePools();
    await db.drop();
  }
}

await main();
