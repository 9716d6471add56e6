/**
 * Error handling as a primitive of its own: calls another primitive (any
 * endpoint answering msg_output) with retries and back-off, and dead-letters
 * the message when it gives up. msg_input payload is
 * {url, message}: the target's URL (under one of ERROR_TARGETS) and the
 * msg_input to send it; msg_output payload is {answer, attempts}, answer
 * being the target's msg_output. Retried: refused, timed out, 408, 429, and
 * 5xx except a msg_output whose error says retrying cannot help
 * (model_rejected, model_bad_answer, invalid_input).
 */
import { functionNode, modelCall, type Work } from "./shared.mts";

const DEFAULT_TARGETS = "http://127.0.0.1:1880/agents/";

const CLASSIFY = `const answeredCode = msg.payload && typeof msg.payload === "object" && msg.payload.error && msg.payload.error.code;
const final = ["model_rejected", "model_bad_answer", "invalid_input"].includes(answeredCode);
const transient = !ok && !final && (typeof code !== "number" || code === 408 || code === 429 || code >= 500);
const failCode = answeredCode || (ok ? "target_bad_answer" : transient ? "target_unavailable" : "target_rejected");`;

export const errorHandlingWork: Work = (id, name) => {
  const build = functionNode(id("request"), "target", `const p = msg.payload;
const targets = String(env.get("ERROR_TARGETS") || ${JSON.stringify(DEFAULT_TARGETS)}).split(",").map((t) => t.trim()).filter(Boolean);
if (!p || typeof p !== "object" || typeof p.url !== "string" || !p.message || typeof p.message !== "object") {
  msg.agent.error = { code: "invalid_input", message: "payload must be {url, message}: the primitive to call and the msg_input to send it" };
  return [null, msg];
}
if (!targets.some((t) => p.url.startsWith(t))) {
  msg.agent.error = { code: "invalid_input", message: p.url + " is not under ERROR_TARGETS (" + targets.join(", ") + ")" };
  return [null, msg];
}
msg.agent.request = { api: "primitive", model: "", url: p.url, headers: { "content-type": "application/json" }, body: p.message };
return [msg, null];`, [[id("call")], [id("out")]]);
  const call = modelCall(id, name, id("read"), { envPrefix: "ERROR", classify: CLASSIFY, model: false });
  const read = functionNode(id("read"), "answered", `msg.payload = { answer: msg.payload, attempts: msg.agent.attempts };
return msg;`, [[id("out")]]);
  return { nodes: [build, ...call.nodes, read], first: id("request"), catchable: [id("request"), ...call.catchable, id("read")] };
};
