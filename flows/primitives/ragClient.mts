/**
 * The RAG pipeline's caller (flows/primitives/rag-pipeline.json, docs/agents.md
 * "RAG pipeline"): chains the primitives across instances over HTTP, each
 * stage's msg_output becoming the next stage's msg_input (payload and config
 * forwarded, flowId kept, a new timestamp). Used by the end-to-end test and
 * bench/agents/rag.ts; an application does the same from its own code.
 */

export interface RagFronts {
  /** Base URLs (an instance's front) of each role; `embed` may list several, used round-robin. */
  ingest: string;
  embed: string[];
  store: string;
  answer: string;
}

export interface StageAnswer { stage: string; url: string; status: number; body: any; ms: number }

export class RagStageError extends Error {
  constructor(readonly answer: StageAnswer) {
    super(`RAG stage ${answer.stage} (${answer.url}) answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 500)}`);
  }
}

type ContentType = "text" | "json" | "binary";

let turn = 0;

async function stage(name: string, url: string, flowId: string, payload: unknown, contentType: ContentType, config?: Record<string, unknown>): Promise<StageAnswer> {
  const body = { payload, metadata: { flowId, timestamp: new Date().toISOString(), source: "rag-pipeline", contentType }, ...(config ? { config } : {}) };
  const started = performance.now();
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: any = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON: reported as is */ }
  const answer = { stage: name, url, status: res.status, body: parsed, ms: performance.now() - started };
  if (res.status !== 200 || parsed?.metadata?.status !== "success") throw new RagStageError(answer);
  return answer;
}

/** A document (text, or bytes as base64 with binary: true) → convert → chunk → embed → store in `collection`. */
export async function ingest(fronts: RagFronts, doc: { text?: string; base64?: string }, collection: string, flowId = `rag-${crypto.randomUUID()}`) {
  const config = { collection };
  const converted = doc.base64 !== undefined
    ? await stage("convert", `${fronts.ingest}/agents/file-converter`, flowId, doc.base64, "binary", config)
    : await stage("convert", `${fronts.ingest}/agents/file-converter`, flowId, doc.text ?? "", "text", config);
  const chunked = await stage("chunk", `${fronts.ingest}/agents/text-chunking`, flowId, converted.body.payload, "text", config);
  const embedFront = fronts.embed[turn++ % fronts.embed.length]!;
  const embedded = await stage("embed", `${embedFront}/agents/embeddings`, flowId, chunked.body.payload, "json", config);
  const stored = await stage("store", `${fronts.store}/agents/storage`, flowId, embedded.body.payload, "json", config);
  return { flowId, stored: stored.body.payload as { collection: string; upserted: number; ids: string[] }, stages: [converted, chunked, embedded, stored] };
}

/** A question → retrieve from `collection` (query-processing, store mode) → respond with the retrieved chunks as context. */
export async function query(fronts: RagFronts, question: string, collection: string, flowId = `rag-${crypto.randomUUID()}`) {
  const retrieved = await stage("retrieve", `${fronts.store}/agents/query-processing`, flowId, { query: question, collection }, "json");
  const { query: q, results } = retrieved.body.payload as { query: string; results: Array<{ text: string; score: number }> };
  const answered = await stage("respond", `${fronts.answer}/agents/response-generation`, flowId, { question: q, context: results }, "json");
  return { flowId, results, answer: answered.body.payload as { answer: string; model: string }, stages: [retrieved, answered] };
}
