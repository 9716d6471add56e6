/**
 * Upstash Redis REST protocol in front of a real redis-server, so the
 * unmodified `@upstash/redis` client can be exercised locally:
 *  - `POST /` with `["SET","k","v"]`      → `{result}` | 400 `{error}`
 *  - `POST /pipeline` with `[[...],...]`   → `[{result}|{error}, ...]`
 *  - `POST /multi-exec` (same body)        → the same, run in MULTI/EXEC
 *  - `GET|POST /set/k/v` path form (a POST body becomes the last argument)
 * `Authorization: Bearer <token>` (or `?_token=`) is required. With
 * `Upstash-Encoding: base64` (the client's default) every string in a result
 * is base64 of its bytes; integers stay numbers, nil is null.
 */
import http from "node:http";
import net from "node:net";
import { timingSafeEqual } from "node:crypto";
// Default import, then destructure: ioredis is CommonJS, and named imports of it
// come back undefined when vite (vitest's globalSetup) transforms this file.
import ioredis, { type Pipeline } from "ioredis";
const { Redis, Command } = ioredis;
type Redis = InstanceType<typeof Redis>;
type Command = InstanceType<typeof Command>;
import type { RunningService } from "./config.ts";
import { assertPortFree, listen } from "./ports.ts";
import { readBody, sendJson } from "./httpJson.ts";

export interface UpstashRelayOptions {
  port: number;
  host?: string;
  redisUrl: string;
  token: string;
  onLog?: (line: string) => void;
}

/** Commands that would change the shared connection's state for every caller. */
const REFUSED = new Set([
  "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "monitor",
  "select", "multi", "exec", "discard", "watch", "unwatch", "quit", "reset", "hello", "sync", "psync",
]);
/** Blocking commands get their own connection so they cannot stall everyone else. */
const BLOCKING = new Set(["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait", "waitaof"]);

type Reply = { result: unknown } | { error: string };

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function startUpstashRelay(opts: UpstashRelayOptions): Promise<RunningService> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.onLog ?? (() => {});
  await assertPortFree(opts.port, "upstash relay", "REDFORGE_UPSTASH_RELAY_PORT", host);
  const target = redisTarget(opts.redisUrl);

  const redis = new Redis({
    ...target,
    // Upstash answers in RESP2 shapes (HGETALL a flat array, scores as
    // strings); ioredis 6 defaults to RESP3 (HELLO 3), so ask for RESP2.
    protocol: 2,
    lazyConnect: true,
    enableAutoPipelining: false,
    maxRetriesPerRequest: 2,
  });
  redis.on("error", (err: Error) => log(`[redis] ${err.message}`));
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`upstash relay: cannot reach redis at ${opts.redisUrl}: ${(err as Error).message}`);
  }

  const expected = Buffer.from(opts.token);
  const authorized = (req: http.IncomingMessage, url: URL) => {
    const auth = req.headers.authorization ?? "";
    const given = Buffer.from(auth.startsWith("Bearer ") ? auth.slice(7) : (url.searchParams.get("_token") ?? ""));
    return given.length === expected.length && timingSafeEqual(given, expected);
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://relay");
    handle(req, url)
      .then(([status, body]) => sendJson(res, status, body))
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) log(`[http] ${String(err)}`);
        sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
      });
  });

  async function handle(req: http.IncomingMessage, url: URL): Promise<[number, unknown]> {
    if (req.method !== "POST" && req.method !== "GET") throw new HttpError(405, "ERR method not allowed");
    if (!authorized(req, url)) throw new HttpError(401, "Unauthorized");
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const body = req.method === "POST" ? await readBody(req, MAX_BODY, () => new HttpError(413, "ERR request body too large")) : "";
    const route = url.pathname.replace(/\/+$/, "");

    if (route === "/pipeline" || route === "/multi-exec") {
      const cmds = parseJson(body);
      if (!Array.isArray(cmds) || cmds.length === 0 || !cmds.every(Array.isArray)) {
        throw new HttpError(400, "ERR a pipeline body must be a non-empty array of command arrays");
      }
      const argvs = cmds.map((c) => toArgv(c as unknown[]));
      const replies = route === "/pipeline" ? await pipeline(argvs) : await transaction(argvs);
      return [200, replies.map((r) => ("result" in r ? { result: encode(r.result, base64) } : r))];
    }

    let argv: string[];
    if (route === "") {
      const cmd = parseJson(body);
      if (!Array.isArray(cmd)) throw new HttpError(400, "ERR the body must be a JSON array: [command, ...args]");
      argv = toArgv(cmd);
    } else {
      argv = route.slice(1).split("/").map((s) => decodeURIComponent(s));
      if (body !== "") argv.push(body);
    }
    const reply = await single(argv);
    return "error" in reply ? [400, reply] : [200, { result: encode(reply.result, base64) }];
  }

  async function single(argv: string[]): Promise<Reply> {
    const name = argv[0]!.toLowerCase();
    if (!isBlocking(name, argv)) return settle(redis.sendCommand(raw(argv)) as Promise<unknown>);
    const conn = redis.duplicate();
    conn.on("error", () => undefined);
    try {
      return await settle(conn.sendCommand(raw(argv)) as Promise<unknown>);
    } finally {
      conn.disconnect();
    }
  }

  async function pipeline(argvs: string[][]): Promise<Reply[]> {
    const p = redis.pipeline() as unknown as Pipeline;
    for (const a of argvs) p.sendCommand(raw(a));
    const out = (await p.exec()) ?? [];
    return out.map(([err, result]) => (err ? { error: err.message } : { result }));
  }

  async function transaction(argvs: string[][]): Promise<Reply[]> {
    // ioredis writes MULTI ... EXEC as one contiguous batch, so commands of
    // concurrent requests cannot interleave on the shared connection.
    const m = redis.multi() as unknown as Pipeline;
    for (const a of argvs) m.sendCommand(raw(a));
    try {
      const out = (await m.exec()) ?? [];
      return out.map(([err, result]) => (err ? { error: err.message } : { result }));
    } catch (err) {
      // A command rejected while queueing aborts the whole transaction (EXECABORT).
      const first = (err as { previousErrors?: Error[] }).previousErrors?.[0];
      throw new HttpError(400, first ? `${(err as Error).message} ${first.message}` : (err as Error).message);
    }
  }

  // Node closes an idle keep-alive connection after 5 s by default; a client (workerd) that reuses
  // one at that moment gets "Network connection lost" and the request a 503. Managed services keep
  // idle connections far longer than their clients' pools do, so the client always closes first.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  await listen(server, opts.port, host);
  log(`upstash relay on ${host}:${opts.port} → redis ${target.host}:${target.port}`);

  let closing: Promise<void> | undefined;
  return {
    name: "upstash relay",
    url: `http://${host}:${opts.port}`,
    close: () =>
      (closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        await closed;
        await redis.quit().catch(() => redis.disconnect());
      })()),
  };
}

/** A command object that keeps Redis' reply untouched: raw bytes, no ioredis reply transformers (e.g. HGETALL→object). */
function raw(argv: string[]): Command {
  const [name, ...args] = argv;
  if (!name) throw new HttpError(400, "ERR empty command");
  if (REFUSED.has(name.toLowerCase())) throw new HttpError(400, `ERR ${name} is not supported over REST`);
  const cmd = new Command(name, args, { replyEncoding: null });
  (cmd as unknown as { transformReply: (r: unknown) => unknown }).transformReply = (r) => r;
  return cmd;
}

function isBlocking(name: string, argv: string[]): boolean {
  if (BLOCKING.has(name)) return true;
  return (name === "xread" || name === "xreadgroup") && argv.some((a) => a.toLowerCase() === "block");
}

async function settle(p: Promise<unknown>): Promise<Reply> {
  try {
    return { result: await p };
  } catch (err) {
    // Redis error replies are the caller's problem (400); anything else (lost connection) is ours (500).
    if (!(err instanceof Error) || err.name !== "ReplyError") throw err;
    return { error: err.message };
  }
}

/** JSON arguments arrive as strings, numbers or booleans; Redis wants bytes. */
function toArgv(cmd: unknown[]): string[] {
  if (cmd.length === 0) throw new HttpError(400, "ERR empty command");
  return cmd.map((a) => (typeof a === "string" ? a : a === null ? "" : typeof a === "object" ? JSON.stringify(a) : String(a)));
}

function encode(v: unknown, base64: boolean): unknown {
  if (Buffer.isBuffer(v)) return base64 ? v.toString("base64") : v.toString("utf8");
  if (typeof v === "string") return base64 ? Buffer.from(v).toString("base64") : v;
  if (Array.isArray(v)) return v.map((x) => encode(x, base64));
  // An error reply nested in an array (e.g. inside an EVAL result) becomes its message.
  if (v instanceof Error) return encode(v.message, base64);
  return v === undefined ? null : v;
}

function redisTarget(redisUrl: string): { host: string; port: number; db: number; username?: string; password?: string } {
  let url: URL;
  try {
    url = new URL(redisUrl);
  } catch {
    throw new Error(`upstash relay: redisUrl "${redisUrl}" is not a URL (expected redis://127.0.0.1:6379)`);
  }
  if (url.protocol !== "redis:") throw new Error(`upstash relay: only redis:// URLs are supported, got ${url.protocol}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const loopback = host === "localhost" || host === "::1" || (net.isIPv4(host) && host.startsWith("127."));
  if (!loopback) throw new Error(`upstash relay: redis host ${host} is not a loopback address`);
  return {
    host: host === "localhost" ? "127.0.0.1" : host,
    port: url.port ? Number(url.port) : 6379,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, "ERR failed to parse the request body as JSON");
  }
}

const MAX_BODY = 16 * 1024 * 1024;
