/**
 * Query processing: embeds the query with the same endpoint and model as the
 * embeddings primitive (EMBED_*), then either
 * - message mode, payload {query, candidates: [{text, embedding, ...}]} (what
 *   embeddings answers): ranks the candidates by cosine similarity; results
 *   [{rank, score, index, text, ...the candidate's other fields except embedding}];
 * - store mode, payload {query, collection?} (no candidates): searches the
 *   vector store (redforge-vector-store, STORE_*) for QUERY_CANDIDATES rows,
 *   then reranks them by score (drops duplicate texts and those under
 *   minScore, keeps topK); results [{rank, score, id, text, metadata}].
 * msg_output payload is {query, model, results, collection?}, best first.
 */
import { aiDecisionCode, endpointCode, functionNode, modelCall, type Work } from "./shared.mts";

export const queryWork: Work = (id, name) => {
  const build = functionNode(id("request"), "query embedding request", `${endpointCode("EMBED", { ollama: "nomic-embed-text", openai: "text-embedding-3-small" })}
const p = msg.payload;
const store = !!(p && typeof p === "object" && p.candidates === undefined);
const ok = p && typeof p.query === "string" && p.query.trim() !== "" && (store
  ? p.collection === undefined || typeof p.collection === "string"
  : Array.isArray(p.candidates) && p.candidates.every((c) => c && Array.isArray(c.embedding) && c.embedding.length > 0 && c.embedding.every((x) => typeof x === "number")));
if (!ok) {
  msg.agent.error = { code: "invalid_input", message: "payload must be {query, candidates: [{embedding: number[], ...}]} or {query, collection?} (search the vector store)" };
  return [null, msg];
}
const topK = Math.min(Number(msg.agent.config.topK || env.get("QUERY_TOP_K")) || 5, 1000);
const minScore = Number(msg.agent.config.minScore !== undefined ? msg.agent.config.minScore : env.get("QUERY_MIN_SCORE") || -1);
const fetchK = Math.min(Math.max(Number(msg.agent.config.candidates || env.get("QUERY_CANDIDATES")) || topK * 4, topK), 1000);
msg.agent.query = { text: p.query, candidates: store ? null : p.candidates, topK: topK, minScore: Number.isFinite(minScore) ? minScore : -1,
  store: store, collection: store ? (p.collection || msg.agent.config.collection) : undefined, fetchK: fetchK };
msg.agent.request = { api: api, model: model, url: root + (api === "openai" ? "/v1/embeddings" : "/api/embed"), headers: headers, body: { model: model, input: [p.query] } };
return [msg, null];`, [[id("call")], [id("out")]]);
  const call = modelCall(id, name, id("rank"));
  const rank = functionNode(id("rank"), "rank by similarity", `const r = msg.payload;
const api = msg.agent.request.api;
const q = api === "openai" ? r.data && r.data[0] && r.data[0].embedding : r.embeddings && r.embeddings[0];
if (!Array.isArray(q) || q.length === 0) {
  msg.agent.error = { code: "model_bad_answer", message: "no query vector from " + msg.agent.request.url, attempts: msg.agent.attempts };
  return [null, msg];
}
const wanted = msg.agent.query;
const inputTokens = api === "openai" ? (r.usage && r.usage.prompt_tokens) : r.prompt_eval_count;
${aiDecisionCode("embeddings", "{ responseModel: r.model, inputTokens: inputTokens, outputTokens: 0, prompt: wanted.text }")}
if (wanted.store) {
  // Store mode: the search runs after the audit node (search or answer).
  wanted.vector = q;
  msg.payload = null;
  return [msg, null];
}
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
const qn = norm(q);
const mismatch = wanted.candidates.findIndex((c) => c.embedding.length !== q.length);
if (mismatch >= 0) {
  msg.agent.error = { code: "invalid_input", message: "candidate " + mismatch + " has " + wanted.candidates[mismatch].embedding.length + " dimensions, the query " + q.length + ": embed both with the same model" };
  return [null, msg];
}
const scored = wanted.candidates.map((c, i) => {
  const score = c.embedding.reduce((s, x, k) => s + x * q[k], 0) / (norm(c.embedding) * qn);
  const rest = Object.assign({}, c);
  delete rest.embedding;
  return Object.assign({ index: i }, rest, { score: Math.round(score * 1e6) / 1e6 });
});
scored.sort((a, b) => b.score - a.score || a.index - b.index);
const results = scored.filter((s) => s.score >= wanted.minScore).slice(0, wanted.topK).map((s, i) => Object.assign({ rank: i + 1 }, s));
msg.payload = { query: wanted.text, model: msg.agent.request.model, results: results };
return [msg, null];`, [[id("audit")], [id("out")]]);
  const audit = { id: id("audit"), type: "redforge-ai-audit", name: "report model call", property: "aiDecision", wires: [[id("route")]] };
  const route = functionNode(id("route"), "search the store?", `const wanted = msg.agent.query;
if (!wanted.store) return [msg, null];
msg.payload = { action: "search", vector: wanted.vector, topK: wanted.fetchK, minScore: wanted.minScore };
if (wanted.collection !== undefined) msg.payload.collection = wanted.collection;
return [null, msg];`, [[id("out")], [id("store")]]);
  // Same settings as the storage primitive (STORE_*, MILVUS_*), so both see one store.
  const store = {
    id: id("store"), type: "redforge-vector-store", name: "vector store",
    collection: "${STORE_COLLECTION}", postgresUrl: "${STORE_POSTGRES_URL}", table: "${STORE_TABLE}", backend: "${STORE_BACKEND}",
    milvusUrl: "${MILVUS_URL}", milvusToken: "${MILVUS_TOKEN}", milvusDb: "${MILVUS_DB}", topK: "",
    wires: [[id("rerank")], [id("dlq")]],
  };
  const rerank = functionNode(id("rerank"), "rerank by score", `if (msg.agent.error) return msg;
const wanted = msg.agent.query;
const found = msg.payload;
// The store's order is its own (approximate for Milvus): sort by score again, one result per text, then cut to topK.
const seen = new Set();
const results = found.results.slice()
  .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  .filter((x) => x.score >= wanted.minScore && !seen.has(x.text) && seen.add(x.text))
  .slice(0, wanted.topK)
  .map((x, i) => ({ rank: i + 1, score: x.score, id: x.id, text: x.text, metadata: x.metadata }));
msg.payload = { query: wanted.text, model: msg.agent.request.model, collection: found.collection, backend: found.backend, results: results };
return msg;`, [[id("out")]]);
  return { nodes: [build, ...call.nodes, rank, audit, route, store, rerank], first: id("request"), catchable: [id("request"), ...call.catchable, id("rank"), id("route"), id("store"), id("rerank")] };
};
