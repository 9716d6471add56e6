/**
 * Response generation: a chat completion answering a question from the
 * context it is given (streaming off). msg_input payload is a question
 * string or {question, context?}, context being texts or chunks [{text}]
 * (what a retrieval step answers); msg_output payload is
 * {answer, model, inputTokens, outputTokens, finishReason}.
 * Ollama POST /api/chat or OpenAI-compatible POST /v1/chat/completions, by CHAT_API.
 */
import { aiDecisionCode, endpointCode, functionNode, modelCall, type Work } from "./shared.mts";

const SYSTEM_PROMPT = "Answer the question from the context only. If the context does not hold the answer, say so.";

export const responseWork: Work = (id, name) => {
  const build = functionNode(id("request"), "chat request", `${endpointCode("CHAT", { ollama: "llama3.2", openai: "gpt-4o-mini" })}
const p = typeof msg.payload === "string" ? { question: msg.payload } : msg.payload;
const context = p && p.context === undefined ? [] : p && p.context;
const texts = Array.isArray(context) ? context.map((c) => typeof c === "string" ? c : c && typeof c.text === "string" ? c.text : null) : null;
if (!p || typeof p.question !== "string" || p.question.trim() === "" || !texts || texts.some((t) => t === null)) {
  msg.agent.error = { code: "invalid_input", message: "payload must be a question, or {question, context} with context texts or chunks [{text}]" };
  return [null, msg];
}
const system = String(msg.agent.config.systemPrompt || env.get("CHAT_SYSTEM_PROMPT") || ${JSON.stringify(SYSTEM_PROMPT)});
const user = (texts.length ? "Context:\\n" + texts.join("\\n\\n") + "\\n\\n" : "") + "Question: " + p.question.trim();
const messages = [{ role: "system", content: system }, { role: "user", content: user }];
const body = { model: model, messages: messages, stream: false };
const temperature = msg.agent.config.temperature !== undefined ? Number(msg.agent.config.temperature) : undefined;
if (temperature !== undefined && Number.isFinite(temperature)) {
  if (api === "openai") body.temperature = temperature; else body.options = { temperature: temperature };
}
msg.agent.request = { api: api, model: model, url: root + (api === "openai" ? "/v1/chat/completions" : "/api/chat"), headers: headers, body: body, prompt: user };
return [msg, null];`, [[id("call")], [id("out")]]);
  const call = modelCall(id, name, id("read"));
  const read = functionNode(id("read"), "read answer", `const r = msg.payload;
const api = msg.agent.request.api;
const choice = api === "openai" && Array.isArray(r.choices) ? r.choices[0] : undefined;
const answer = api === "openai" ? choice && choice.message && choice.message.content : r.message && r.message.content;
if (typeof answer !== "string") {
  msg.agent.error = { code: "model_bad_answer", message: "no answer text from " + msg.agent.request.url, attempts: msg.agent.attempts };
  return [null, msg];
}
const inputTokens = api === "openai" ? r.usage && r.usage.prompt_tokens : r.prompt_eval_count;
const outputTokens = api === "openai" ? r.usage && r.usage.completion_tokens : r.eval_count;
const finishReason = api === "openai" ? choice.finish_reason : r.done_reason;
${aiDecisionCode("chat", "{ responseModel: r.model, responseId: r.id, prompt: msg.agent.request.prompt, response: answer, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason }")}
msg.payload = { answer: answer, model: r.model || msg.agent.request.model, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason };
return [msg, null];`, [[id("audit")], [id("out")]]);
  const audit = { id: id("audit"), type: "redforge-ai-audit", name: "report model call", property: "aiDecision", wires: [[id("out")]] };
  return { nodes: [build, ...call.nodes, read, audit], first: id("request"), catchable: [id("request"), ...call.catchable, id("read")] };
};
