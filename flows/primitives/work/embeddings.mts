/**
 * Embeddings: msg_input payload is a string, an array of strings, or the
 * chunks text-chunking answers ([{text, ...}]); msg_output payload is
 * [{index, text, embedding, ...the chunk's other fields}] in input order.
 * Ollama POST /api/embed or OpenAI-compatible POST /v1/embeddings, by EMBED_API.
 */
import { aiDecisionCode, endpointCode, functionNode, modelCall, type Work } from "./shared.mts";

export const embeddingsWork: Work = (id, name) => {
  const build = functionNode(id("request"), "embedding request", `${endpointCode("EMBED", { ollama: "nomic-embed-text", openai: "text-embedding-3-small" })}
const items = typeof msg.payload === "string" ? [msg.payload] : msg.payload;
const texts = Array.isArray(items) ? items.map((i) => typeof i === "string" ? i : i && typeof i.text === "string" ? i.text : null) : null;
if (!texts || texts.length === 0 || texts.some((t) => t === null || t.length === 0)) {
  msg.agent.error = { code: "invalid_input", message: "payload must be a text, an array of texts, or chunks [{text}], none empty" };
  return [null, msg];
}
msg.agent.items = items;
const dimensions = Number(msg.agent.config.dimensions || env.get("EMBED_DIMENSIONS")) || undefined;
const body = { model: model, input: texts };
if (dimensions) body.dimensions = dimensions;
msg.agent.request = { api: api, model: model, url: root + (api === "openai" ? "/v1/embeddings" : "/api/embed"), headers: headers, body: body };
return [msg, null];`, [[id("call")], [id("out")]]);
  const call = modelCall(id, name, id("read"));
  const read = functionNode(id("read"), "read vectors", `const r = msg.payload;
const api = msg.agent.request.api;
const vectors = api === "openai"
  ? (Array.isArray(r.data) ? r.data.slice().sort((a, b) => a.index - b.index).map((d) => d.embedding) : null)
  : r.embeddings;
const items = msg.agent.items;
if (!Array.isArray(vectors) || vectors.length !== items.length || !vectors.every((v) => Array.isArray(v) && v.length > 0)) {
  msg.agent.error = { code: "model_bad_answer", message: "expected " + items.length + " vector(s) from " + msg.agent.request.url, attempts: msg.agent.attempts };
  return [null, msg];
}
const inputTokens = api === "openai" ? (r.usage && r.usage.prompt_tokens) : r.prompt_eval_count;
${aiDecisionCode("embeddings", `{ responseModel: r.model, inputTokens: inputTokens, outputTokens: 0, prompt: msg.agent.request.body.input.join("\\n\\n") }`)}
msg.payload = items.map((item, index) => Object.assign(typeof item === "string" ? { index: index, text: item } : Object.assign({ index: index }, item), { embedding: vectors[index] }));
return [msg, null];`, [[id("audit")], [id("out")]]);
  const audit = { id: id("audit"), type: "redforge-ai-audit", name: "report model call", property: "aiDecision", wires: [[id("out")]] };
  return { nodes: [build, ...call.nodes, read, audit], first: id("request"), catchable: [id("request"), ...call.catchable, id("read")] };
};
