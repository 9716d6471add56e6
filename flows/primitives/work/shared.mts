/**
 * Pieces every primitive is built from (flows/primitives/build.mts): the
 * Work a primitive does between reading msg_input and building msg_output,
 * and the model call block with retries, back-off and dead-lettering.
 * The strings below are Node-RED function node code: plain JavaScript run
 * by Node-RED with `msg`, `env` and `node` in scope.
 */
export type FlowNode = { id: string; type: string } & Record<string, unknown>;

/** `id(local)` names a node of this primitive; the work's last node wires to id("out") (build msg_output). */
export type Work = (id: (local: string) => string, name: string) => { nodes: FlowNode[]; first: string; catchable: string[] };

export function functionNode(id: string, name: string, func: string, wires: string[][]): FlowNode {
  return { id, type: "function", name, func, outputs: wires.length, timeout: 0, noerr: 0, initialize: "", finalize: "", libs: [], wires };
}

/**
 * Reads the model endpoint settings of a primitive from its environment
 * (PREFIX_API, PREFIX_URL, PREFIX_MODEL, PREFIX_API_KEY), as function code.
 * URL is the server's root: the flow adds /api/... (Ollama) or /v1/... (OpenAI-compatible).
 */
export function endpointCode(prefix: string, defaults: { ollama: string; openai: string }): string {
  return `const api = String(env.get("${prefix}_API") || "ollama").toLowerCase();
if (api !== "ollama" && api !== "openai") {
  msg.agent.error = { code: "invalid_input", message: "${prefix}_API must be ollama or openai, not " + api };
  return [null, msg];
}
const root = String(env.get("${prefix}_URL") || (api === "openai" ? "https://api.openai.com" : "http://127.0.0.1:11434")).replace(/\\/+$/, "").replace(/\\/v1$/, "");
const model = String(msg.agent.config.model || env.get("${prefix}_MODEL") || (api === "openai" ? ${JSON.stringify(defaults.openai)} : ${JSON.stringify(defaults.ollama)}));
const headers = { "content-type": "application/json" };
if (env.get("${prefix}_API_KEY")) headers.authorization = "Bearer " + env.get("${prefix}_API_KEY");`;
}

/**
 * The model call: the approved-model check (redforge-model-policy; a refused
 * model goes to redforge-ai-audit as a blocked record, then `out` with
 * model_not_approved) → `prepare` (from msg.agent.request) → http request →
 * `check` → answered (to `answered`), or back-off delay and again, or
 * give up: msg.agent.error, dead letter, then `out` (msg_output status error).
 * MODEL_MAX_ATTEMPTS (default 3), MODEL_BACKOFF_MS (first wait, doubled each
 * time, default 500, at most 30 s) and MODEL_TIMEOUT_MS (per call, default 60 s)
 * tune it. Refused connections, timeouts, 408, 429 and 5xx are retried; other 4xx are not.
 */
export interface CallOptions {
  /** Prefix of the tuning variables: MODEL (MODEL_MAX_ATTEMPTS, …) unless set. */
  envPrefix?: string;
  /**
   * Function code deciding a failed call: sets `transient` (retry?) and `failCode` (error.code when giving up)
   * from `ok`, `code` and `msg.payload`. The default retries refused, timed-out, 408, 429 and 5xx.
   */
  classify?: string;
  /** false when the call goes to something other than a model (error-handling calls primitives): no approved-model check. */
  model?: boolean;
}

const MODEL_CLASSIFY = `const transient = !ok && (typeof code !== "number" || code === 408 || code === 429 || code >= 500);
const failCode = ok ? "model_bad_answer" : transient ? "model_unavailable" : "model_rejected";`;

export function modelCall(id: (local: string) => string, name: string, answered: string, opts: CallOptions = {}): { nodes: FlowNode[]; first: string; catchable: string[] } {
  const env = opts.envPrefix ?? "MODEL";
  // id("call") stays the block's entry (the primitives wire to it); retries go back to "attempt", after the check.
  const checked = opts.model !== false;
  const policy = checked
    ? { id: id("call"), type: "redforge-model-policy", name: "approved model?", outputs: 2, wires: [[id("attempt")], [id("blocked")]] }
    : { id: id("call"), type: "junction", wires: [[id("attempt")]] };
  const blocked = checked ? [{ id: id("blocked"), type: "redforge-ai-audit", name: "report blocked call", property: "aiDecision", wires: [[id("out")]] }] : [];
  const prepare = functionNode(id("attempt"), "call model", `const r = msg.agent.request;
msg.agent.attempts = (msg.agent.attempts || 0) + 1;
msg.agent.callStarted = Date.now();
msg.url = r.url;
msg.method = "POST";
msg.headers = Object.assign({}, r.headers);
msg.payload = r.body;
msg.requestTimeout = Number(env.get("${env}_TIMEOUT_MS")) || 60000;
return msg;`, [[id("http")]]);
  const http = { id: id("http"), type: "http request", name: "model endpoint", method: "use", ret: "obj", paytoqs: "ignore", url: "", tls: "", persist: false, proxy: "", insecureHTTPParser: false, authType: "", senderr: false, headers: [], wires: [[id("check")]] };
  const check = functionNode(id("check"), "answered?", `const a = msg.agent;
const code = msg.statusCode;
const max = Number(env.get("${env}_MAX_ATTEMPTS")) || 3;
const first = Number(env.get("${env}_BACKOFF_MS")) || 500;
const ok = typeof code === "number" && code >= 200 && code < 300;
if (ok && msg.payload && typeof msg.payload === "object") {
  node.status({});
  return [msg, null, null];
}
const what = ok ? "an answer that is not JSON" : typeof code === "number" ? "HTTP " + code : String(msg.payload).slice(0, 300);
${opts.classify ?? MODEL_CLASSIFY}
if (transient && a.attempts < max) {
  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);
  node.status({ fill: "yellow", shape: "ring", text: "retry " + (a.attempts + 1) + "/" + max + " in " + msg.delay + " ms" });
  return [null, msg, null];
}
node.status({ fill: "red", shape: "dot", text: what.slice(0, 40) });
a.error = {
  code: failCode,
  message: a.request.url + " gave " + what + " (attempt " + a.attempts + " of " + max + ")",
  attempts: a.attempts,
};
return [null, null, msg];`, [[answered], [id("backoff")], [id("dlq")]]);
  const backoff = { id: id("backoff"), type: "delay", name: "back off", pauseType: "delayv", timeout: "1", timeoutUnits: "seconds", rate: "1", nbRateUnits: "1", rateUnits: "second", randomFirst: "1", randomLast: "5", randomUnits: "seconds", drop: false, allowrate: false, outputs: 1, wires: [[id("attempt")]] };
  const dlq = { id: id("dlq"), type: "redforge-dlq", name: "dead letter", source: name, wires: [[id("out")]] };
  return { nodes: [policy, ...blocked, prepare, http, check, backoff, dlq], first: id("call"), catchable: [id("call"), id("attempt"), id("check")] };
}

/** Function code: msg.aiDecision from what the call block left in msg.agent, for redforge-ai-audit. */
export function aiDecisionCode(operation: string, fields: string): string {
  return `msg.aiDecision = Object.assign({
  provider: msg.agent.request.api === "openai" ? "openai" : "ollama",
  model: msg.agent.request.model,
  operationName: ${JSON.stringify(operation)},
  latencyMs: Date.now() - msg.agent.callStarted,
  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },
}, ${fields});`;
}
