/**
 * Writes core/blueprints/catalog.generated.ts: the blueprints GET /api/blueprints
 * serves, i.e. every importable flow under flows/primitives/*.json with the
 * environment variables it reads (found in the flow JSON, described below), and
 * the RAG pipeline description (rag-pipeline.json). The Worker cannot read the
 * filesystem, so the catalog is a generated module; test/workers/blueprints.test.ts
 * fails when it is stale and this script fails when a flow reads a variable
 * that has no description here.
 *
 *   npx tsx flows/primitives/blueprints.mts
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const DIR = path.dirname(fileURLToPath(import.meta.url));
export const CATALOG_FILE = path.join(DIR, "../../core/blueprints/catalog.generated.ts");

interface ParamInfo { description: string; default?: string; required?: boolean; secret?: boolean }

const MODEL = (what: string): Record<string, ParamInfo> => ({
  [`${what}_API`]: { description: "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks", default: "ollama" },
  [`${what}_URL`]: { description: "the model server's root URL (a trailing /v1 is accepted)", default: "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)" },
  [`${what}_API_KEY`]: { description: "sent as Authorization: Bearer", secret: true },
});

/** Every variable a flow reads; descriptions and defaults as docs/agents.md gives them. */
const PARAMS: Record<string, ParamInfo> = {
  ...MODEL("EMBED"),
  EMBED_MODEL: { description: "the embedding model", default: "nomic-embed-text (ollama), text-embedding-3-small (openai)" },
  EMBED_DIMENSIONS: { description: "dimensions to ask the model for (optional)" },
  ...MODEL("CHAT"),
  CHAT_MODEL: { description: "the chat model", default: "llama3.2 (ollama), gpt-4o-mini (openai)" },
  CHAT_SYSTEM_PROMPT: { description: "the system message", default: "Answer the question from the context only. If the context does not hold the answer, say so." },
  MODEL_MAX_ATTEMPTS: { description: "model calls per message before giving up", default: "3" },
  MODEL_BACKOFF_MS: { description: "first wait before a retry; doubles, capped at 30 s", default: "500" },
  MODEL_TIMEOUT_MS: { description: "per model call", default: "60000" },
  CHUNK_SIZE: { description: "chunk size in characters (at most 100,000)", default: "1000" },
  CHUNK_OVERLAP: { description: "overlap in characters, less than the size", default: "200" },
  TIKA_URL: { description: "an Apache Tika server; when set, documents are converted by PUT {TIKA_URL}/tika, else by the built-in PDF/DOCX/text readers" },
  TIKA_TIMEOUT_MS: { description: "per Tika call", default: "60000" },
  CONVERT_MAX_BYTES: { description: "largest document accepted", default: "20971520" },
  STORE_BACKEND: { description: "`auto` (pgvector when the extension can be created, else float8[]), `pgvector` or `array`", default: "auto" },
  STORE_POSTGRES_URL: { description: "the Postgres holding the vectors", default: "the instance's DATABASE_URL", secret: true },
  STORE_TABLE: { description: "the vectors' table (schema.table allowed), created at first use", default: "redforge_vectors" },
  STORE_COLLECTION: { description: "the collection when a message names none", default: "default" },
  MILVUS_URL: { description: "a Milvus REST v2 server; when set it is the vector store instead of Postgres" },
  MILVUS_TOKEN: { description: "Milvus Authorization: Bearer token", secret: true },
  MILVUS_DB: { description: "Milvus dbName" },
  QUERY_TOP_K: { description: "results per search", default: "5" },
  QUERY_MIN_SCORE: { description: "lowest cosine similarity kept", default: "-1" },
  QUERY_CANDIDATES: { description: "rows fetched from the store before reranking", default: "4 × top K (at most 1000)" },
  MEMORY_POSTGRES_URL: { description: "the Postgres holding conversation memory", default: "the instance's DATABASE_URL", secret: true },
  MEMORY_TABLE: { description: "the memory table, created at first use", default: "redforge_memory" },
  MEMORY_RECALL_LAST: { description: "turns a recall returns", default: "20" },
  REDIS_URL: { description: "redis://, rediss:// or an Upstash https:// URL; when set memory lives in Redis", secret: true },
  REDIS_TOKEN: { description: "Upstash REST token (https:// REDIS_URL)", secret: true },
  MEMORY_REDIS_PREFIX: { description: "key prefix of a conversation's list", default: "redforge:memory:" },
  MEMORY_TTL_S: { description: "TTL refreshed on each append (Redis)" },
  MEMORY_MAX_KEPT: { description: "turns kept per conversation (Redis)" },
  ERROR_TARGETS: { description: "comma-separated URL prefixes error-handling may call", default: "http://127.0.0.1:1880/agents/" },
  ERROR_MAX_ATTEMPTS: { description: "calls before giving up", default: "3" },
  ERROR_BACKOFF_MS: { description: "first wait; doubles, capped at 30 s", default: "500" },
  ERROR_TIMEOUT_MS: { description: "per call; must exceed the called primitive's own retries", default: "60000" },
  VOTING_PARTICIPANTS: { description: "participant instance ids, comma-separated (or config.participants per message)", required: true },
  VOTING_RULE: { description: "`majority`, `best_score` or `judge`", default: "majority" },
  VOTING_QUORUM: { description: "answers needed to decide", default: "a strict majority of the participants" },
  VOTING_DEADLINE_MS: { description: "how long answers are collected", default: "30000" },
  VOTING_JUDGE: { description: "the judge's instance id (rule judge)" },
  VOTING_JUDGE_DEADLINE_MS: { description: "how long the judge may take", default: "30000" },
  REFINE_GENERATOR: { description: "the generator's instance id (or config.generator)", required: true },
  REFINE_CRITIC: { description: "the critic's instance id (or config.critic)", required: true },
  REFINE_MAX_ROUNDS: { description: "rounds at most (at most 20)", default: "3" },
  REFINE_STOP_PHRASE: { description: "a critique holding it stops the loop", default: "APPROVED" },
  REFINE_STEP_TIMEOUT_MS: { description: "how long one step may take", default: "30000" },
  REDFORGE_MQTT_URL: { description: "the cluster's MQTT bus (RAG stage flows publish the next stage's work there); set by the bridge on every managed instance", default: "set by the bridge" },
  REDFORGE_INSTANCE_ID: { description: "this instance's id (named in a RAG stage's trail); set by the bridge", default: "set by the bridge" },
};

type Flow = Array<Record<string, unknown>>;

/** `${VAR}` in node settings and env.get("VAR") in function nodes. */
export function envVarsOf(flows: Flow): string[] {
  const text = JSON.stringify(flows);
  const names = new Set<string>();
  for (const m of text.matchAll(/\$\{([A-Z][A-Z0-9_]*)\}/g)) names.add(m[1]!);
  for (const m of text.matchAll(/env\.get\(\\?["']([A-Z][A-Z0-9_]*)\\?["']\)/g)) names.add(m[1]!);
  return [...names].sort();
}

export function buildCatalog() {
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".json") && f !== "rag-pipeline.json").sort();
  const flowsBlueprints = files.map((file) => {
    const flows = JSON.parse(fs.readFileSync(path.join(DIR, file), "utf8")) as Flow;
    const tab = flows.find((n) => n.type === "tab");
    const endpoints = flows.filter((n) => n.type === "http in").map((n) => `${String(n.method).toUpperCase()} ${String(n.url)}`);
    const mqtt = flows.some((n) => n.type === "redforge-gate" && n.source === "mqtt");
    const params = envVarsOf(flows).map((name) => {
      const info = PARAMS[name];
      if (!info) throw new Error(`${file} reads ${name}, which has no description in flows/primitives/blueprints.mts`);
      return { name, description: info.description, default: info.default ?? null, required: info.required ?? false, secret: info.secret ?? false };
    });
    return {
      id: file.replace(/\.json$/, ""), kind: "flow" as const,
      name: String(tab?.label ?? file).replace(/^RedForge · /, ""),
      description: String(tab?.info ?? ""),
      entry: [...endpoints, ...(mqtt ? ["MQTT redforge/ingest/{instance}"] : [])],
      params, flows,
    };
  });
  const rag = JSON.parse(fs.readFileSync(path.join(DIR, "rag-pipeline.json"), "utf8")) as {
    id: string; name: string; description: string; chaining: string; instances: Array<{ role: string; blueprints: string[] }>;
  };
  const byId = new Map(flowsBlueprints.map((b) => [b.id, b]));
  for (const inst of rag.instances) for (const id of inst.blueprints) if (!byId.has(id)) throw new Error(`rag-pipeline.json names unknown blueprint ${id}`);
  // A pipeline's parameters: the union of its stages', each naming the roles that read it.
  const params = new Map<string, { name: string; description: string; default: string | null; required: boolean; secret: boolean; roles: string[] }>();
  for (const inst of rag.instances) {
    for (const id of inst.blueprints) {
      for (const p of byId.get(id)!.params) {
        const seen = params.get(p.name) ?? { ...p, roles: [] };
        if (!seen.roles.includes(inst.role)) seen.roles.push(inst.role);
        params.set(p.name, seen);
      }
    }
  }
  const pipeline = {
    ...rag, kind: "pipeline" as const,
    entry: rag.instances.flatMap((i) => i.blueprints.flatMap((id) => byId.get(id)!.entry.map((e) => `${i.role}: ${e}`))),
    params: [...params.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
  return [...flowsBlueprints, pipeline];
}

export function renderCatalog(): string {
  return `// GENERATED from flows/primitives/*.json by flows/primitives/blueprints.mts. Do not edit.
import type { Blueprint } from "./types.ts";

export const BLUEPRINT_CATALOG: readonly Blueprint[] = ${JSON.stringify(buildCatalog(), null, 1)};
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  fs.writeFileSync(CATALOG_FILE, renderCatalog());
  process.stdout.write(`wrote ${path.relative(process.cwd(), CATALOG_FILE)}\n`);
}
