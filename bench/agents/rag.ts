/**
 * The RAG pipeline's throughput (docs/agents.md "RAG pipeline"): real Node-RED
 * instances created through the API from the rag-pipeline/<role> blueprints
 * (wrangler dev, bridge, process driver, the model stand-in as Ollama, Postgres
 * for the store), stages chained over HTTP by flows/primitives/ragClient.mts.
 * Ingests --docs documents (--concurrency at a time) with 1 and then 2
 * embedding instances, answers --queries questions, and prints documents/s,
 * queries/s, p50/p99 per stage and the 2-vs-1 ratio. The stand-in answers
 * embeddings in well under a millisecond, so this measures the pipeline's own
 * cost (HTTP hops, the gate, Postgres), not a model's.
 *
 *   npx tsx bench/agents/rag.ts [--docs 40] [--queries 40] [--concurrency 4]
 */
import os from "node:os";
import { startModelStandIn } from "../../dev/model-stand-in/index.ts";
import { ingest, query, type RagFronts, type StageAnswer } from "../../flows/primitives/ragClient.mts";
import { agentsPostgres } from "../../test/harness/agentsPostgres.ts";
import { eventually } from "../../test/harness/eventually.ts";
import { startFleetStack } from "../../test/harness/fleetStack.ts";
import { createRagFleet, type RagRole } from "./ragFleet.ts";
import { percentile as pct } from "../quantile.ts";

const arg = (name: string, dflt: number) => Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) || dflt;
const DOCS = arg("docs", 40);
const QUERIES = arg("queries", 40);
const CONCURRENCY = arg("concurrency", 4);
const TOPICS = ["reactor", "ferry", "orchard", "glacier", "lighthouse", "bakery", "observatory", "vineyard", "quarry", "monastery"];
const doc = (i: number) => `Document ${i} is about the ${TOPICS[i % TOPICS.length]} number ${i}. The ${TOPICS[i % TOPICS.length]} ${i} opens at ${i % 12 + 1} o'clock. `.repeat(4);

async function pool<T>(n: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { for (let i = next++; i < n; i = next++) out[i] = await work(i); }));
  return out;
}

function stages(all: StageAnswer[][]) {
  const by = new Map<string, number[]>();
  for (const s of all.flat()) by.set(s.stage, [...(by.get(s.stage) ?? []), s.ms]);
  return [...by].map(([name, xs]) => `${name} p50 ${pct(xs, 50).toFixed(0)} / p99 ${pct(xs, 99).toFixed(0)} ms`).join(", ");
}

const fleet = await startFleetStack("bench-rag");
const model = await startModelStandIn();
const db = await agentsPostgres("redforge_rag_bench");
try {
  const embed = { EMBED_API: "ollama", EMBED_URL: model.url };
  const roles: RagRole[] = [
    ["ingest", "ingest", { CHUNK_SIZE: "200", CHUNK_OVERLAP: "0" }],
    ["embed-1", "embed", embed], ["embed-2", "embed", embed],
    ["store", "store", { ...embed, STORE_POSTGRES_URL: db.url, STORE_TABLE: "rag.vectors", QUERY_TOP_K: "3" }],
    ["answer", "answer", { CHAT_API: "ollama", CHAT_URL: model.url }],
  ];
  const { front } = await createRagFleet(fleet, "bench-rag", roles, 240_000);
  const fronts = (embedders: number): RagFronts => ({ ingest: front.ingest!, embed: ["embed-1", "embed-2"].slice(0, embedders).map((n) => front[n]!), store: front.store!, answer: front.answer! });
  // Warm: every route live (the first calls wait for the flows to start).
  await eventually(async () => { try { await ingest(fronts(2), { text: "Warm up." }, "warm"); await ingest(fronts(1), { text: "Warm up." }, "warm"); await query(fronts(1), "warm", "warm"); return true; } catch { return undefined; } }, 180_000);

  console.log(`RAG pipeline: ${DOCS} documents (~${doc(1).length} chars), ${QUERIES} queries, ${CONCURRENCY} at a time, model stand-in, load ${os.loadavg()[0]!.toFixed(1)}`);
  // One unmeasured pass first: the first run after start was twice as slow as the later ones (JIT, pools, the table).
  await pool(DOCS, (i) => ingest(fronts(2), { text: doc(i) }, `warm_${i % 2}`));
  // Alternated (1, 2, 1, 2) so a warmer second half does not favour one side.
  const rates: Record<number, number[]> = { 1: [], 2: [] };
  for (const embedders of [1, 2, 1, 2]) {
    const collection = `bench_${embedders}_${crypto.randomUUID().slice(0, 6)}`;
    const t0 = performance.now();
    const runs = await pool(DOCS, (i) => ingest(fronts(embedders), { text: doc(i) }, collection));
    const s = (performance.now() - t0) / 1000;
    rates[embedders]!.push(DOCS / s);
    console.log(`ingest, ${embedders} embedding instance(s): ${(DOCS / s).toFixed(2)} documents/s (${runs.reduce((n, r) => n + r.stored.upserted, 0)} chunks); ${stages(runs.map((r) => r.stages))}`);
    if (embedders === 1 && rates[1]!.length === 1) {
      const q0 = performance.now();
      const answers = await pool(QUERIES, (i) => query(fronts(1), `When does the ${TOPICS[i % TOPICS.length]} ${i % DOCS} open?`, collection));
      console.log(`query: ${(QUERIES / ((performance.now() - q0) / 1000)).toFixed(2)} queries/s; ${stages(answers.map((r) => r.stages))}`);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`ratio ingest documents/s, 2 vs 1 embedding instances (mean of two runs each): ${(mean(rates[2]!) / mean(rates[1]!)).toFixed(2)}x`);
} finally {
  await model.close();
  await fleet.close();
  await db.stop();
}
