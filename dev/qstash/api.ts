/**
 * QStash v2 REST surface, matched to what @upstash/qstash 2.12's Client sends
 * (paths, query parameters, response shapes). Destinations travel inside the
 * path (`/v2/publish/http://127.0.0.1:8787/hook?x=1`), so those routes read the
 * raw request target rather than a parsed URL.
 */
import type http from "node:http";
import type { QStashEngine } from "./engine.ts";
import type { Filter } from "./filter.ts";
import { normalizeHeaders, parseCron, parseDestination, parsePublishHeaders, type HeaderBag } from "./parse.ts";
import { ApiError } from "./types.ts";
import { dlqJson, messageJson, scheduleJson } from "./views.ts";

const MAX_BODY = 10 << 20;

export interface ApiContext {
  engine: QStashEngine;
  token: string;
  keys: { current: string; next: string };
  log: (line: string) => void;
}

export async function handle(ctx: ApiContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  try {
    const auth = req.headers.authorization ?? "";
    if (auth !== `Bearer ${ctx.token}`) throw new ApiError(401, auth ? "invalid token" : "missing Authorization: Bearer <token>");
    const body = await readBody(req);
    const target = req.url ?? "/";
    const result = route(ctx, req.method ?? "GET", target, req.headers, body);
    send(res, result.status ?? 200, result.json);
  } catch (err) {
    if (err instanceof ApiError) send(res, err.status, { error: err.message });
    else {
      ctx.log(`internal error on ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      send(res, 500, { error: (err as Error).message });
    }
  }
}

function send(res: http.ServerResponse, status: number, json: unknown): void {
  if (res.headersSent) return;
  const text = json === undefined ? "" : JSON.stringify(json);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Over-long bodies are read to the end and discarded rather than cut off, so
 * the client gets a 413 it can report instead of a connection reset.
 */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on("end", () =>
      size > MAX_BODY ? reject(new ApiError(413, `message body larger than ${MAX_BODY} bytes`)) : resolve(Buffer.concat(chunks)),
    );
    req.on("error", reject);
  });
}

interface Result {
  status?: number;
  json?: unknown;
}

const UNSUPPORTED = /^\/(v2\/(enqueue|queues|topics|events|logs|flowControl|globalParallelism|keys\/rotate|workflows)|llm)(\/|$)/;

function route(ctx: ApiContext, method: string, target: string, headers: HeaderBag, body: Buffer): Result {
  const { engine } = ctx;
  const qIndex = target.indexOf("?");
  const path = qIndex < 0 ? target : target.slice(0, qIndex);
  const query = new URLSearchParams(qIndex < 0 ? "" : target.slice(qIndex + 1));
  const allow = (...methods: string[]) => {
    if (!methods.includes(method)) throw new ApiError(405, `method ${method} not allowed on ${path}`);
  };

  if (path.startsWith("/v2/publish/")) {
    allow("POST");
    return publishOne(ctx, target.slice("/v2/publish/".length), normalizeHeaders(headers), body);
  }
  if (path === "/v2/batch") {
    allow("POST");
    return batch(ctx, body);
  }
  if (path === "/v2/schedules" || path.startsWith("/v2/schedules/")) return schedules(ctx, method, target, path, headers, body);
  // Only now: a destination embedded in the path may hold '%' sequences that are not ours to decode.
  const seg = segments(path);

  if (seg[0] === "v2" && seg[1] === "messages") {
    if (seg.length === 2) {
      allow("DELETE");
      const f = parseFilter(query, "messageIds", ["url", "scheduleId", "label"]);
      return { json: { cancelled: engine.cancelMessages(f) } };
    }
    if (seg.length === 3) {
      allow("GET", "DELETE");
      const id = seg[2]!;
      if (method === "GET") {
        const m = engine.getMessage(id);
        if (!m) throw new ApiError(404, `message ${id} not found`);
        return { json: messageJson(m) };
      }
      const n = engine.cancelMessages({ ids: [id] });
      if (!n) throw new ApiError(404, `message ${id} not found`);
      return { json: { cancelled: n } };
    }
  }

  if (seg[0] === "v2" && seg[1] === "dlq") {
    if (seg.length === 2 && method === "GET") {
      const f = parseFilter(query, "dlqIds", ["url", "scheduleId", "label", "responseStatus", "messageId"]);
      return { json: page(engine.listDlq(f).map(dlqJson), query) };
    }
    if (seg.length === 2) {
      allow("GET", "DELETE");
      return { json: { deleted: engine.deleteDlq(parseFilter(query, "dlqIds", ["url", "scheduleId", "label", "responseStatus"])) } };
    }
    if (seg.length === 3 && seg[2] === "retry") {
      allow("POST");
      const ids = engine.retryDlq(parseFilter(query, "dlqIds", ["url", "scheduleId", "label", "responseStatus"]));
      return { json: { responses: ids.map((messageId) => ({ messageId })) } };
    }
    if (seg.length === 3) {
      allow("GET", "DELETE");
      const id = seg[2]!;
      if (method === "GET") {
        const d = engine.listDlq({ ids: [id] })[0];
        if (!d) throw new ApiError(404, `dlq message ${id} not found`);
        return { json: dlqJson(d) };
      }
      if (!engine.deleteDlq({ ids: [id] })) throw new ApiError(404, `dlq message ${id} not found`);
      return {};
    }
  }


  if (path === "/v2/keys") {
    allow("GET");
    return { json: { current: ctx.keys.current, next: ctx.keys.next } };
  }

  if (UNSUPPORTED.test(path)) throw new ApiError(501, `${path} is a QStash feature the local emulator does not implement`);
  throw new ApiError(404, `no such endpoint: ${method} ${path}`);
}

function segments(path: string): string[] {
  return path
    .split("/")
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new ApiError(400, `malformed path segment "${s}"`);
      }
    });
}

function publishOne(ctx: ApiContext, rawDest: string, headers: Map<string, string>, body: Buffer): Result {
  const url = parseDestination(rawDest);
  const p = parsePublishHeaders(url, headers, body, Date.now());
  if (p.ignored.length) ctx.log(`publish to ${url}: ignoring unsupported ${p.ignored.join(", ")}`);
  const { messageId, deduplicated } = ctx.engine.publish(p);
  // QStash answers a duplicate with 202 and the original message's id.
  return { status: deduplicated ? 202 : 201, json: { messageId, url, ...(deduplicated ? { deduplicated: true } : {}) } };
}

function batch(ctx: ApiContext, body: Buffer): Result {
  let items: unknown;
  try {
    items = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ApiError(400, "batch body must be a JSON array");
  }
  if (!Array.isArray(items) || items.length === 0) throw new ApiError(400, "batch body must be a non-empty JSON array");
  // Validate every entry before publishing any, so a bad entry publishes nothing.
  const parsed = items.map((raw, i) => {
    const it = raw as { destination?: unknown; headers?: unknown; body?: unknown; queue?: unknown };
    if (typeof it?.destination !== "string") throw new ApiError(400, `batch[${i}]: destination is required`);
    if (it.queue !== undefined) throw new ApiError(501, `batch[${i}]: queues are not implemented by the local emulator`);
    const url = parseDestination(it.destination);
    const h = normalizeHeaders((it.headers ?? {}) as HeaderBag);
    const b = typeof it.body === "string" ? Buffer.from(it.body) : Buffer.alloc(0);
    return { url, p: parsePublishHeaders(url, h, b, Date.now()) };
  });
  return {
    status: 201,
    json: parsed.map(({ url, p }) => {
      const { messageId, deduplicated } = ctx.engine.publish(p);
      return { messageId, url, ...(deduplicated ? { deduplicated: true } : {}) };
    }),
  };
}

function schedules(ctx: ApiContext, method: string, target: string, path: string, headers: HeaderBag, body: Buffer): Result {
  const { engine } = ctx;
  const rest = path.slice("/v2/schedules".length).replace(/^\//, "");
  const isDestination = /^https?(:|%3A)/i.test(rest);

  if (rest === "" && method === "GET") return { json: engine.listSchedules().map(scheduleJson) };
  if (isDestination) {
    if (method !== "POST") throw new ApiError(405, `method ${method} not allowed on ${path}`);
    const h = normalizeHeaders(headers);
    const cron = h.get("upstash-cron");
    if (!cron) throw new ApiError(400, "Upstash-Cron header is required");
    parseCron(cron);
    const scheduleId = h.get("upstash-schedule-id");
    if (scheduleId !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(scheduleId)) {
      throw new ApiError(400, `invalid Upstash-Schedule-Id "${scheduleId}": use letters, digits and _ . : -`);
    }
    if (h.has("upstash-queue-name")) throw new ApiError(501, "queues are not implemented by the local emulator");
    const url = parseDestination(target.slice("/v2/schedules/".length));
    const p = parsePublishHeaders(url, h, body, Date.now());
    if (p.ignored.length) ctx.log(`schedule for ${url}: ignoring unsupported ${p.ignored.join(", ")}`);
    const id = engine.upsertSchedule({ ...(scheduleId ? { scheduleId } : {}), cron, spec: p.spec, delayMs: p.delayMs });
    return { status: 201, json: { scheduleId: id } };
  }
  const seg = segments(path);
  const id = seg[2];
  if (id === undefined) throw new ApiError(405, `method ${method} not allowed on ${path}`);
  const notFound = () => new ApiError(404, `schedule ${id} not found`);
  if (seg.length === 3) {
    if (method === "GET") {
      const s = engine.getSchedule(id);
      if (!s) throw notFound();
      return { json: scheduleJson(s) };
    }
    if (method === "DELETE") {
      if (!engine.deleteSchedule(id)) throw notFound();
      return {};
    }
    throw new ApiError(405, `method ${method} not allowed on ${path}`);
  }
  if (seg.length === 4 && (seg[3] === "pause" || seg[3] === "resume")) {
    if (method !== "PATCH" && method !== "POST") throw new ApiError(405, `method ${method} not allowed on ${path}`);
    if (!engine.setPaused(id, seg[3] === "pause")) throw notFound();
    return {};
  }
  throw new ApiError(404, `no such endpoint: ${method} ${path}`);
}

/**
 * Bulk actions must never widen silently: a filter we do not understand would
 * otherwise match everything, so it is refused instead of ignored.
 */
function parseFilter(q: URLSearchParams, idsParam: string, fields: string[]): Filter {
  const known = new Set([idsParam, ...fields, "count", "cursor"]);
  for (const k of q.keys()) if (!known.has(k)) throw new ApiError(400, `filter "${k}" is not supported by the local emulator`);
  const f: Filter = {};
  const all = (k: string) => q.getAll(k).flatMap((v) => v.split(",")).filter(Boolean);
  if (q.has(idsParam)) f.ids = all(idsParam);
  if (q.has("messageId")) f.messageId = all("messageId");
  if (q.has("url")) f.url = all("url");
  if (q.has("scheduleId")) f.scheduleId = all("scheduleId");
  if (q.has("label")) f.label = all("label");
  if (q.has("responseStatus")) f.responseStatus = all("responseStatus").map(Number);
  return f;
}

function page<T>(items: T[], q: URLSearchParams): { messages: T[]; cursor?: string } {
  const start = Number(q.get("cursor") ?? 0) || 0;
  const count = Math.max(1, Math.min(1000, Number(q.get("count") ?? 100) || 100));
  const end = start + count;
  return { messages: items.slice(start, end), ...(end < items.length ? { cursor: String(end) } : {}) };
}
