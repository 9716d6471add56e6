/**
 * Query processing, first part: embeds the query with the same endpoint and
 * model as the embeddings primitive (EMBED_*) and ranks the candidates the
 * message carries by cosine similarity. msg_input payload is
 * {query, candidates: [{text, embedding, ...}]} (what embeddings answers);
 * msg_output payload is {query, model, results: [{rank, score, index, text,
 * ...the candidate's other fields except embedding}]}, best first.
 * Searching a vector store instead of the message waits for the storage primitive.
 */
import { aiDecisionCode, endpointCode, functionNode, modelCall, type Work } from "./shared.mts";

export const queryWork: Work = (id, name) => {
  const build = functionNode(id("request"), "query embedding request", `${endpointCode("EMBED", { ollama: "nomic-embed-text", openai: "text-embedding-3-small" })}
const p = msg.payload;
const ok = p && typeof p.query === "string" && p.query.trim() !== "" && Array.isArray(p.candidates)
  && p.candidates.every((c) => c && Array.isArray(c.embedding) && c.embedding.length > 0 && c.embedding.every((x) => typeof x === "number"));
if (!ok) {
  msg.agent.error = { code: "invalid_input", message: "payload must be {query, candidates: [{embedding: number[], ...}]}" };
  return [null, msg];
}
const topK = Number(msg.agent.config.topK || env.get("QUERY_TOP_K")) || 5;
const minScore = Number(msg.agent.config.minScore !== undefined ? msg.agent.config.minScore : env.get("QUERY_MIN_SCORE") || -1);
msg.agent.query = { text: p.query, candidates: p.candidates, topK: topK, minScore: Number.isFinite(minScore) ? minScore : -1 };
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
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
const qn = norm(q);
const wanted = msg.agent.query;
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
const inputTokens = api === "openai" ? (r.usage && r.usage.prompt_tokens) : r.prompt_eval_count;
${aiDecisionCode("embeddings", "{ responseModel: r.model, inputTokens: inputTokens, outputTokens: 0, prompt: wanted.text }")}
msg.payload = { query: wanted.text, model: msg.agent.request.model, results: results };
return [msg, null];`, [[id("audit")], [id("out")]]);
  const audit = { id: id("audit"), type: "redforge-ai-audit", name: "report model call", property: "aiDecision", wires: [[id("out")]] };
  return { nodes: [build, ...call.nodes, rank, audit], first: id("request"), catchable: [id("request"), ...call.catchable, id("rank")] };
};
