/**
 * RAG ingest throughput with 1, 2 and 4 embedding instances in one run
 * (docs/agents.md "RAG pipeline", issue 16's "4 embedding instances" figure):
 * real Node-RED instances created through the API from the rag-pipeline/<role>
 * blueprints (wrangler dev, bridge, process driver, Postgres for the store),
 * one ingest, four embed, one store; documents spread round-robin over the
 * first N embed instances by the caller.
 *
 * Each embed instance has its own "model host": a proxy in front of the model
 * stand-in that serves one call at a time and takes --model-ms per call (a
 * model server on its own machine, like Ollama with OLLAMA_NUM_PARALLEL=1).
 * That is the case a second instance is for; with --model-ms 0 the instances
 * call the stand-in directly (answers in under a millisecond), which measures
 * the pipeline's own cost, where more instances do not help (see bench/agents/rag.ts).
 * Passes run 1, 2, 4, 4, 2, 1 so a drift in load hits each count alike; one
 * unmeasured warm-up pass first. Chained over HTTP (ragClient.mts), or over
 * the cluster's MQTT bus with --mqtt (ragMqttClient.mts, rag-stage-<role> flows).
 *
 *   npx tsx bench/agents/embed-fanout.ts [--docs 48] [--concurrency 8] [--model-ms 150] [--mqtt]
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { startModelStandIn } from "../../dev/model-stand-in/index.ts";
import { ingest, type RagFronts } from "../../flows/primitives/ragClient.mts";
import { RagMqttClient, type RagInstances } from "../../flows/primitives/ragMqttClient.mts";
import { agentsPostgres } from "../../test/harness/agentsPostgres.ts";
import { eventually } from "../../test/harness/eventually.ts";
import { startFleetStack } from "../../test/harness/fleetStack.ts";
import { createRagFleet, type RagRole } from "./ragFleet.ts";
import { percentile as pct } from "../quantile.ts";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined && Number.isFinite(Number(process.argv[i + 1])) ? Number(process.argv[i + 1]) : dflt;
}
const DOCS = arg("docs", 48);
const CONCURRENCY = arg("concurrency", 8);
const MODEL_MS = arg("model-ms", 150);
const OVER_MQTT = process.argv.includes("--mqtt");
const EMBEDDERS = 4;
const TOPICS = ["reactor", "ferry", "orchard", "glacier", "lighthouse", "bakery", "observatory", "vineyard", "quarry", "monastery"];
const doc = (i: number) => `Document ${i} is about the ${TOPICS[i % TOPICS.length]} number ${i}. The ${TOPICS[i % TOPICS.length]} ${i} opens at ${i % 12 + 1} o'clock. `.repeat(2);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** A model host: one call at a time, `serviceMs` each, then the stand-in's answer. */
function modelHost(target: string, serviceMs: number): Promise<{ url: string; calls: () => number; close(): void }> {
  let busy = Promise.resolve();
  let calls = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      busy = busy.then(async () => {
        calls++;
        await new Promise((r) => setTimeout(r, serviceMs));
        try {
          const r = await fetch(`${target}${req.url}`, { method: req.method, headers: { "content-type": "application/json" }, body: req.method === "GET" ? undefined : Buffer.concat(chunks) });
          res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" });
          res.end(Buffer.from(await r.arrayBuffer()));
        } catch (err) {
          res.writeHead(502);
          res.end((err as Error).message);
        }
      });
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls: () => calls, close: () => server.close() })));
}

async function pool<T>(n: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { for (let i = next++; i < n; i = next++) out[i] = await work(i); }));
  return out;
}

const fleet = await startFleetStack("bench-embed-fanout");
const model = await startModelStandIn();
const hosts = MODEL_MS > 0 ? await Promise.all(Array.from({ length: EMBEDDERS }, () => modelHost(model.url, MODEL_MS))) : [];
const db = await agentsPostgres("redforge_embed_fanout");
let bus: RagMqttClient | undefined;
try {
  const embedders = Array.from({ length: EMBEDDERS }, (_, i) => `embed-${i + 1}`);
  const roles: RagRole[] = [
    ["ingest", "ingest", { CHUNK_SIZE: "200", CHUNK_OVERLAP: "0" }],
    ...embedders.map((name, i): RagRole => [name, "embed", { EMBED_API: "ollama", EMBED_URL: hosts[i]?.url ?? model.url, MODEL_TIMEOUT_MS: "120000" }]),
    ["store", "store", { EMBED_API: "ollama", EMBED_URL: model.url, STORE_POSTGRES_URL: db.url, STORE_TABLE: "rag.vectors" }],
  ];
  const { ids, front } = await createRagFleet(fleet, "bench-fanout", roles, 300_000);
  if (OVER_MQTT) bus = await RagMqttClient.connect(`mqtt://${fleet.broker.host}:${fleet.broker.port}`);
  const fronts = (n: number): RagFronts => ({ ingest: front.ingest!, embed: embedders.slice(0, n).map((e) => front[e]!), store: front.store!, answer: "" });
  const instances = (n: number): RagInstances => ({ ingest: ids.ingest!, embed: embedders.slice(0, n).map((e) => ids[e]!), store: ids.store!, answer: "" });
  /** One document through the pipeline; the embed stage's time (ms) as the caller or the trail saw it. */
  const one = async (n: number, i: number, collection: string): Promise<number> => {
    if (bus) {
      const r = await bus.ingest(instances(n), { text: doc(i) }, collection);
      const h = r.trail.find((x) => x.stage === "embed")!;
      return h.answered - h.received;
    }
    const r = await ingest(fronts(n), { text: doc(i) }, collection);
    return r.stages.find((s) => s.stage === "embed")!.ms;
  };
  // Every route of every embed instance live, then one unmeasured pass.
  await eventually(async () => {
    try {
      for (let n = 1; n <= EMBEDDERS; n++) await one(EMBEDDERS, n, "warm");
      return true;
    } catch { return undefined; }
  }, 240_000);
  await pool(DOCS, (i) => one(EMBEDDERS, i, "warm"));

  console.log(`RAG ingest, ${DOCS} documents (~${doc(1).length} chars, 1 embedding call each), ${CONCURRENCY} at a time, chained over ${bus ? "MQTT" : "HTTP"}; ` +
    `${MODEL_MS > 0 ? `each embed instance's model host serves 1 call at a time, ${MODEL_MS} ms each` : "embed instances call the stand-in directly"}; load ${os.loadavg()[0]!.toFixed(1)}`);
  const rates: Record<number, number[]> = { 1: [], 2: [], 4: [] };
  for (const n of [1, 2, 4, 4, 2, 1]) {
    const collection = `fanout_${n}_${crypto.randomUUID().slice(0, 6)}`;
    const before = hosts.map((h) => h.calls());
    const t0 = performance.now();
    const embedMs = await pool(DOCS, (i) => one(n, i, collection));
    const s = (performance.now() - t0) / 1000;
    rates[n]!.push(DOCS / s);
    const spread = hosts.length ? ` calls per model host ${hosts.map((h, i) => h.calls() - before[i]!).join("/")}` : "";
    console.log(`  ${n} embedding instance(s): ${(DOCS / s).toFixed(2)} documents/s, embed stage p50 ${pct(embedMs, 50).toFixed(0)} / p99 ${pct(embedMs, 99).toFixed(0)} ms;${spread}; load ${os.loadavg()[0]!.toFixed(1)}`);
  }
  console.log(`documents/s (mean of two passes): 1: ${mean(rates[1]!).toFixed(2)}, 2: ${mean(rates[2]!).toFixed(2)}, 4: ${mean(rates[4]!).toFixed(2)}`);
  console.log(`ratio vs 1 embedding instance: 2 → ${(mean(rates[2]!) / mean(rates[1]!)).toFixed(2)}x, 4 → ${(mean(rates[4]!) / mean(rates[1]!)).toFixed(2)}x`);
} finally {
  await bus?.close();
  for (const h of hosts) h.close();
  await model.close();
  await fleet.close();
  await db.stop();
}
