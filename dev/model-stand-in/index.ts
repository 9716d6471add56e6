/**
 * A local stand-in for the model endpoints agent flows call: a test double of
 * an external service (like dev/neon-relay.ts and dev/qstash/), never shipped.
 * One HTTP server speaks both APIs flows use, so a flow runs unchanged against
 * it, a real Ollama, or an OpenAI-compatible server:
 *
 *   Ollama:  POST /api/chat, /api/generate, /api/embed (and the older /api/embeddings), GET /api/tags, /api/version
 *   OpenAI:  POST /v1/chat/completions, /v1/completions, /v1/embeddings, GET /v1/models
 *
 * Answers, token counts and vectors are deterministic (./answers.ts); any
 * model name is served. Ollama streams unless `"stream": false` (NDJSON), as
 * Ollama does; OpenAI streams with `"stream": true` (server-sent events).
 * Tests inject failures with `fault()` and see every call in `calls`.
 *
 *   npx tsx dev/model-stand-in/index.ts [--port 11434] [--host 127.0.0.1] [--api-key KEY]
 */
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { readBody, sendJson } from "../httpJson.ts";
import { listen } from "../ports.ts";
import { answer, base64Vector, countTokens, DEFAULT_DIMENSIONS, embed, promptTokens, type ChatMessage } from "./answers.ts";

export interface ModelCall { api: "ollama" | "openai"; path: string; model?: string; status: number; at: number }

/** Answer the next `times` model calls (default: all) with `status`; `pathPrefix` limits it to some routes. */
export interface ModelFault { status: number; times?: number; pathPrefix?: string }

export interface ModelStandInOptions {
  port?: number;
  host?: string;
  /** Vector size when the request names none (default 64). */
  dimensions?: number;
  /** When set, OpenAI routes want `Authorization: Bearer <apiKey>` (401 otherwise), as a hosted endpoint would. */
  apiKey?: string;
  /**
   * Replaces the extractive answer (a test that needs a particular reply), optionally with
   * the token counts to report instead of the counted ones.
   */
  answer?: (messages: ChatMessage[], model: string) => string | ScriptedAnswer;
  /** The model name answers carry (OpenAI answers "gpt-4o-mini-2024-07-18" for "gpt-4o-mini"); the requested one by default. */
  answeredModel?: (requested: string) => string;
}

export interface ScriptedAnswer { content: string; promptTokens?: number; completionTokens?: number }

export interface ModelStandIn {
  url: string;
  port: number;
  calls: ModelCall[];
  fault(f: ModelFault | undefined): void;
  close(): Promise<void>;
}

class BadRequest extends Error {
  constructor(message: string, readonly status = 400) { super(message); }
}

const MAX_BODY = 8 * 1024 * 1024;
type Json = Record<string, any>;

export async function startModelStandIn(opts: ModelStandInOptions = {}): Promise<ModelStandIn> {
  const calls: ModelCall[] = [];
  let fault: (ModelFault & { left: number }) | undefined;
  const reply = (messages: ChatMessage[], model: string): Reply => {
    const a = (opts.answer ?? answer)(messages, model);
    const scripted = typeof a === "string" ? { content: a } : a;
    return { text: scripted.content, inTokens: scripted.promptTokens ?? promptTokens(messages), outTokens: scripted.completionTokens ?? countTokens(scripted.content) };
  };
  const dims = (body: Json) => {
    const d = body.dimensions ?? body.options?.dimensions ?? opts.dimensions ?? DEFAULT_DIMENSIONS;
    if (!Number.isInteger(d) || d < 1 || d > 4096) throw new BadRequest("dimensions must be an integer 1..4096");
    return d as number;
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://stand-in");
    const api = url.pathname.startsWith("/v1/") ? "openai" : "ollama";
    const fail = (status: number, message: string) => api === "openai"
      ? sendJson(res, status, { error: { message, type: status === 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error", param: null, code: null } })
      : sendJson(res, status, { error: message });
    let model: string | undefined;
    try {
      if (req.method === "GET") return listing(url.pathname, res) || fail(404, "not found");
      if (req.method !== "POST") return fail(405, "method not allowed");
      const route = ROUTES[url.pathname];
      if (!route) return fail(404, `no route ${url.pathname}`);
      if (api === "openai" && opts.apiKey && req.headers.authorization !== `Bearer ${opts.apiKey}`) throw new BadRequest("Incorrect API key provided", 401);
      const raw = await readBody(req, MAX_BODY, () => new BadRequest("request body too large", 413));
      let body: Json;
      try { body = JSON.parse(raw || "{}"); } catch { throw new BadRequest("invalid JSON body"); }
      if (!body || typeof body !== "object") throw new BadRequest("the body must be a JSON object");
      model = typeof body.model === "string" && body.model ? body.model : undefined;
      if (!model) throw new BadRequest("model is required");
      if (fault && fault.left > 0 && (!fault.pathPrefix || url.pathname.startsWith(fault.pathPrefix))) {
        fault.left--;
        throw new BadRequest(`injected fault (${fault.status})`, fault.status);
      }
      route({ body, model, answeredAs: opts.answeredModel?.(model) ?? model, res, reply: (m) => reply(m, model!), dims: () => dims(body) });
      calls.push({ api, path: url.pathname, model, status: 200, at: Date.now() });
    } catch (err) {
      const status = err instanceof BadRequest ? err.status : 500;
      calls.push({ api, path: url.pathname, ...(model ? { model } : {}), status, at: Date.now() });
      if (!res.headersSent) fail(status, (err as Error).message);
      else res.end();
    }
  });
  await listen(server, opts.port ?? 0, opts.host ?? "127.0.0.1");
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
    port,
    calls,
    fault: (f) => { fault = f ? { ...f, left: f.times ?? Number.POSITIVE_INFINITY } : undefined; },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

interface Reply { text: string; inTokens: number; outTokens: number }
interface RouteContext { body: Json; model: string; answeredAs: string; res: http.ServerResponse; reply: (m: ChatMessage[]) => Reply; dims: () => number }

function chatMessages(body: Json): ChatMessage[] {
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw new BadRequest("messages must be a non-empty array");
  return body.messages.map((m: Json, i: number) => {
    const content = Array.isArray(m?.content) ? m.content.map((p: Json) => p?.text ?? "").join("") : m?.content;
    if (typeof m?.role !== "string" || typeof content !== "string") throw new BadRequest(`messages[${i}] needs a role and a string content`);
    return { role: m.role, content };
  });
}

function prompt(body: Json): string {
  if (typeof body.prompt !== "string") throw new BadRequest("prompt must be a string");
  return body.prompt;
}

function inputs(body: Json, field: string): string[] {
  const v = body[field];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === "string")) throw new BadRequest(`${field} must be a string or a non-empty array of strings`);
  return list;
}

const now = () => new Date().toISOString();
const pieces = (text: string) => text.match(/\S+\s*/g) ?? [""];

/** Ollama answers: one JSON object, or NDJSON pieces then the final object (stream is on unless false). */
function ollamaAnswer(c: RouteContext, { text, inTokens, outTokens }: Reply, shape: (piece: string) => Json) {
  const final = { model: c.answeredAs, created_at: now(), ...shape(""), done: true, done_reason: "stop", total_duration: 1_000_000, load_duration: 0, prompt_eval_count: inTokens, prompt_eval_duration: 500_000, eval_count: outTokens, eval_duration: 500_000 };
  if (c.body.stream === false) return sendJson(c.res, 200, { ...final, ...shape(text) });
  c.res.writeHead(200, { "content-type": "application/x-ndjson" });
  for (const p of pieces(text)) c.res.write(`${JSON.stringify({ model: c.answeredAs, created_at: now(), ...shape(p), done: false })}\n`);
  c.res.end(`${JSON.stringify(final)}\n`);
}

/** OpenAI answers: one JSON object, or server-sent events ending in [DONE] when stream is true. */
function openaiAnswer(c: RouteContext, kind: "chat.completion" | "text_completion", { text, inTokens, outTokens }: Reply) {
  const id = `${kind === "chat.completion" ? "chatcmpl" : "cmpl"}-standin-${outTokens}-${inTokens}`;
  const usage = { prompt_tokens: inTokens, completion_tokens: outTokens, total_tokens: inTokens + outTokens };
  const choice = (content: string, done: boolean, stream: boolean) => kind === "chat.completion"
    ? { index: 0, [stream ? "delta" : "message"]: stream && !done ? { content } : { role: "assistant", content }, finish_reason: done ? "stop" : null, logprobs: null }
    : { index: 0, text: content, finish_reason: done ? "stop" : null, logprobs: null };
  const created = Math.floor(Date.now() / 1000);
  if (c.body.stream !== true) return sendJson(c.res, 200, { id, object: kind, created, model: c.answeredAs, choices: [choice(text, true, false)], usage });
  c.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const event = (data: unknown) => c.res.write(`data: ${JSON.stringify(data)}\n\n`);
  const chunkKind = kind === "chat.completion" ? "chat.completion.chunk" : "text_completion";
  for (const p of pieces(text)) event({ id, object: chunkKind, created, model: c.answeredAs, choices: [choice(p, false, true)] });
  event({ id, object: chunkKind, created, model: c.answeredAs, choices: [{ ...choice("", true, true), ...(kind === "chat.completion" ? { delta: {} } : {}) }] });
  if (c.body.stream_options?.include_usage) event({ id, object: chunkKind, created, model: c.answeredAs, choices: [], usage });
  c.res.end("data: [DONE]\n\n");
}

const ROUTES: Record<string, (c: RouteContext) => void> = {
  "/api/chat": (c) => {
    const messages = chatMessages(c.body);
    ollamaAnswer(c, c.reply(messages), (p) => ({ message: { role: "assistant", content: p } }));
  },
  "/api/generate": (c) => {
    const p = prompt(c.body);
    const messages = [...(typeof c.body.system === "string" ? [{ role: "system", content: c.body.system }] : []), { role: "user", content: p }];
    ollamaAnswer(c, c.reply(messages), (piece) => ({ response: piece }));
  },
  "/api/embed": (c) => {
    const texts = inputs(c.body, "input");
    const d = c.dims();
    sendJson(c.res, 200, { model: c.answeredAs, embeddings: texts.map((t) => embed(t, d)), total_duration: 1_000_000, load_duration: 0, prompt_eval_count: texts.reduce((n, t) => n + countTokens(t), 0) });
  },
  "/api/embeddings": (c) => sendJson(c.res, 200, { embedding: embed(prompt(c.body), c.dims()) }),
  "/v1/chat/completions": (c) => {
    const messages = chatMessages(c.body);
    openaiAnswer(c, "chat.completion", c.reply(messages));
  },
  "/v1/completions": (c) => {
    const messages = [{ role: "user", content: prompt(c.body) }];
    openaiAnswer(c, "text_completion", c.reply(messages));
  },
  "/v1/embeddings": (c) => {
    const texts = inputs(c.body, "input");
    const d = c.dims();
    const base64 = c.body.encoding_format === "base64";
    const tokens = texts.reduce((n, t) => n + countTokens(t), 0);
    sendJson(c.res, 200, {
      object: "list", model: c.answeredAs, usage: { prompt_tokens: tokens, total_tokens: tokens },
      data: texts.map((t, index) => ({ object: "embedding", index, embedding: base64 ? base64Vector(embed(t, d)) : embed(t, d) })),
    });
  },
};

const LISTED_MODELS = ["llama3.2", "nomic-embed-text", "gpt-4o-mini", "text-embedding-3-small"];

function listing(pathname: string, res: http.ServerResponse): boolean {
  if (pathname === "/api/version") return sendJson(res, 200, { version: "0.0.0-redforge-stand-in" }), true;
  if (pathname === "/api/tags") {
    return sendJson(res, 200, { models: LISTED_MODELS.map((name) => ({ name: `${name}:latest`, model: `${name}:latest`, modified_at: "2026-01-01T00:00:00Z", size: 0, digest: "0".repeat(64), details: { format: "gguf" } })) }), true;
  }
  if (pathname === "/v1/models") return sendJson(res, 200, { object: "list", data: LISTED_MODELS.map((id) => ({ id, object: "model", created: 1767225600, owned_by: "redforge-stand-in" })) }), true;
  return false;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
  const standIn = await startModelStandIn({ port: Number(arg("port") ?? 11434), host: arg("host") ?? "127.0.0.1", ...(arg("api-key") ? { apiKey: arg("api-key")! } : {}) });
  process.stdout.write(`model stand-in (Ollama + OpenAI-compatible) on ${standIn.url}\n`);
  process.on("SIGINT", () => void standIn.close().then(() => process.exit(0)));
}
