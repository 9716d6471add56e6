/**
 * Local stand-in for Neon's proxy, so the unmodified `@neondatabase/serverless`
 * driver (and drizzle on top of it) can talk to a plain Postgres:
 *  - WebSocket `/v2?address=host:port`: raw Postgres wire protocol tunnelled
 *    over binary WebSocket frames to a TCP socket (what `Pool`/`Client` use);
 *  - `POST /sql`: Neon's SQL-over-HTTP (what `neon()` uses), one query or a
 *    `{queries}` batch run in a single transaction.
 * Only loopback targets are served; hostnames are never resolved, so nothing
 * here can send traffic beyond this machine.
 */
import http from "node:http";
import net from "node:net";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import pg from "pg";
import type { RunningService } from "./config.ts";
import { assertPortFree, listen } from "./ports.ts";
import { readBody, sendJson } from "./httpJson.ts";
import { BackendPool, proxySession } from "./pg-proxy.ts";

/**
 * How a WebSocket session logs in to Postgres:
 *  - "relay" (default), as Neon's proxy: the relay asks the client for its
 *    password in cleartext, logs in itself and serves a pooled backend
 *    (dev/pg-proxy.ts). Works with the driver's production default
 *    `pipelineConnect: "password"` and with `false`.
 *  - "tunnel": bytes straight to Postgres; the driver runs SCRAM-SHA-256 itself
 *    (its pure-JS PBKDF2: ~140 ms of CPU per connect) and must not pipeline.
 *    Kept to measure what the relay mode saves (bench/api) and for servers
 *    that are not Postgres.
 */
export type NeonRelayAuth = "relay" | "tunnel";

export interface NeonRelayOptions {
  port: number;
  host?: string;
  onLog?: (line: string) => void;
  auth?: NeonRelayAuth;
}

export interface NeonRelay extends RunningService {
  /** Applies to sessions opened from now on. */
  auth: NeonRelayAuth;
  /** Postgres logins made and sessions served from an idle backend, in "relay" mode. */
  readonly backends: { opened: number; reused: number };
}

/**
 * The `neonConfig` settings that point the driver at this relay. Apply with
 * `Object.assign(neonConfig, neonLocalConfig("127.0.0.1:8790"))`.
 *  - wsProxy: Neon's proxy takes the Postgres address in `?address=`.
 *  - useSecureWebSocket false: the relay speaks ws://, not wss://.
 *  - pipelineConnect false: the default ("password") sends the password
 *    before the server asks, which only works for cleartext auth; a local
 *    Postgres with SCRAM rejects it.
 *  - pipelineTLS false: no TLS inside the tunnel (there is none to pipeline).
 *  - fetchEndpoint: where `neon()` POSTs its queries.
 * In Node 20 (no global WebSocket) also pass the `ws` constructor; the
 * Worker runtime has a global WebSocket and leaves it out.
 */
export interface NeonLocalConfig {
  wsProxy: (host: string, port: number | string) => string;
  useSecureWebSocket: false;
  pipelineConnect: false;
  pipelineTLS: false;
  fetchEndpoint: string;
  webSocketConstructor?: unknown;
}

export function neonLocalConfig(relayHostPort: string, webSocketConstructor?: unknown): NeonLocalConfig {
  const settings: NeonLocalConfig = {
    wsProxy: (host, port) => `${relayHostPort}/v2?address=${host}:${port}`,
    useSecureWebSocket: false,
    pipelineConnect: false,
    pipelineTLS: false,
    fetchEndpoint: `http://${relayHostPort}/sql`,
  };
  if (webSocketConstructor !== undefined) settings.webSocketConstructor = webSocketConstructor;
  return settings;
}

/** Literal loopback addresses only; "localhost" maps to 127.0.0.1 without a DNS lookup. */
export function loopbackTarget(host: string): string | undefined {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost") return "127.0.0.1";
  if (h === "::1") return "::1";
  if (net.isIPv4(h) && h.startsWith("127.")) return h;
  return undefined;
}

export async function startNeonRelay(opts: NeonRelayOptions): Promise<NeonRelay> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.onLog ?? (() => {});
  await assertPortFree(opts.port, "neon relay", "REDFORGE_NEON_RELAY_PORT", host);

  const pools = new Map<string, pg.Pool>();
  const tunnels = new Set<{ ws: WebSocket; tcp: net.Socket }>();
  const wss = new WebSocketServer({ noServer: true });
  const backends = new BackendPool();
  let auth: NeonRelayAuth = opts.auth ?? "relay";

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://relay");
    if (url.pathname !== "/sql") return sendJson(res, 404, { message: `no route ${url.pathname}` });
    if (req.method !== "POST") return sendJson(res, 405, { message: "POST only" });
    handleSql(req, res, pools, log).catch((err: unknown) => {
      log(`[sql] internal error: ${String(err)}`);
      if (!res.headersSent) sendJson(res, 500, { message: String(err) });
    });
  });

  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://relay");
    const address = url.searchParams.get("address") ?? "";
    const m = /^(.*):(\d{1,5})$/.exec(address);
    const target = m ? loopbackTarget(m[1]!) : undefined;
    const port = m ? Number(m[2]) : 0;
    if (url.pathname !== "/v2" || !m || port < 1 || port > 65535) return rejectUpgrade(socket, 400, "expected /v2?address=host:port");
    if (!target) {
      log(`[ws] refused non-loopback address ${address}`);
      return rejectUpgrade(socket, 403, `address ${address} is not a loopback address`);
    }
    if (auth === "relay") return void wss.handleUpgrade(req, socket, head, (ws) => proxySession(ws, target, port, backends, log));
    // Connect first so an unreachable database fails the upgrade instead of
    // opening a socket that closes at once.
    const tcp = net.connect({ host: target, port });
    tcp.once("error", (err) => rejectUpgrade(socket, 502, `cannot reach ${address}: ${err.message}`));
    tcp.once("connect", () => {
      tcp.removeAllListeners("error");
      if (socket.destroyed) return void tcp.destroy();
      wss.handleUpgrade(req, socket, head, (ws) => tunnel(ws, tcp, address, tunnels, log));
    });
  });

  // Node closes an idle keep-alive connection after 5 s by default; a client (workerd) that reuses
  // one at that moment gets "Network connection lost" and the request a 503. Managed services keep
  // idle connections far longer than their clients' pools do, so the client always closes first.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  await listen(server, opts.port, host);
  log(`neon relay on ${host}:${opts.port}`);

  let closing: Promise<void> | undefined;
  return {
    name: "neon relay",
    url: `http://${host}:${opts.port}`,
    get auth() { return auth; },
    set auth(mode: NeonRelayAuth) { auth = mode; },
    backends: backends.stats,
    close: () =>
      (closing ??= (async () => {
        for (const t of tunnels) {
          t.tcp.destroy();
          t.ws.terminate();
        }
        for (const client of wss.clients) client.terminate();
        wss.close();
        backends.closeAll();
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        await closed;
        await Promise.all([...pools.values()].map((p) => p.end()));
      })()),
  };
}

function rejectUpgrade(socket: import("node:stream").Duplex, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  const body = message + "\n";
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Bytes from Postgres not yet flushed to the WebSocket before we stop reading (a big result set). */
const HIGH_WATER = 4 * 1024 * 1024;

function tunnel(
  ws: WebSocket,
  tcp: net.Socket,
  address: string,
  tunnels: Set<{ ws: WebSocket; tcp: net.Socket }>,
  log: (l: string) => void,
): void {
  const entry = { ws, tcp };
  tunnels.add(entry);
  const framer = new FrontendFramer();
  tcp.setNoDelay(true);

  ws.on("message", (data: RawData) => {
    const chunk = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const terminated = framer.feed(chunk);
    if (!tcp.write(chunk)) {
      ws.pause();
      tcp.once("drain", () => ws.resume());
    }
    // Terminate ('X') ends the session. Postgres closes on its own, but other
    // servers (PGlite) wait for the client's FIN; without it client.end() hangs.
    if (terminated) tcp.end();
  });
  let unsent = 0;
  tcp.on("data", (chunk: Buffer) => {
    framer.fromServer(chunk);
    unsent += chunk.length;
    ws.send(chunk, { binary: true }, () => {
      unsent -= chunk.length;
      if (unsent < HIGH_WATER / 2 && tcp.isPaused()) tcp.resume();
    });
    if (unsent > HIGH_WATER) tcp.pause();
  });
  ws.on("close", () => {
    tcp.end();
    // A server that never answers the FIN must not keep the socket forever.
    setTimeout(() => tcp.destroy(), 2_000).unref();
  });
  ws.on("error", () => tcp.destroy());
  tcp.on("error", (err) => log(`[ws] ${address}: ${err.message}`));
  tcp.on("close", () => {
    tunnels.delete(entry);
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
  });
}

/**
 * Follows client→server message boundaries of the Postgres protocol to spot
 * the Terminate message. Startup-phase messages carry no type byte (int32
 * length, int32 code); after an SSL/GSS request the server's one-byte answer
 * decides: 'N' keeps plain framing, anything else means encrypted bytes follow
 * and the framer stops looking.
 */
export class FrontendFramer {
  private phase: "startup" | "await-ssl-answer" | "typed" | "opaque" = "startup";
  private header = Buffer.alloc(0);
  private remaining = 0;

  /** Returns true when this chunk completes the header of a Terminate message. */
  feed(chunk: Buffer): boolean {
    let terminated = false;
    let i = 0;
    while (i < chunk.length && this.phase !== "opaque" && this.phase !== "await-ssl-answer") {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, chunk.length - i);
        i += skip;
        this.remaining -= skip;
        continue;
      }
      const need = this.phase === "startup" ? 8 : 5;
      const take = Math.min(need - this.header.length, chunk.length - i);
      this.header = Buffer.concat([this.header, chunk.subarray(i, i + take)]);
      i += take;
      if (this.header.length < need) break;
      if (this.phase === "startup") {
        const len = this.header.readInt32BE(0);
        const code = this.header.readInt32BE(4);
        this.remaining = Math.max(0, len - 8);
        // 80877103 SSLRequest, 80877104 GSSENCRequest.
        this.phase = code === 80877103 || code === 80877104 ? "await-ssl-answer" : "typed";
      } else {
        if (this.header[0] === 0x58) terminated = true;
        this.remaining = Math.max(0, this.header.readInt32BE(1) - 4);
      }
      this.header = Buffer.alloc(0);
    }
    return terminated;
  }

  fromServer(chunk: Buffer): void {
    if (this.phase === "await-ssl-answer" && chunk.length > 0) this.phase = chunk[0] === 0x4e ? "startup" : "opaque";
  }
}

// ---------------------------------------------------------------- SQL over HTTP

interface HttpQuery {
  query: string;
  params?: unknown[];
}

/** Every value stays in Postgres text form: the driver sends Neon-Raw-Text-Output and parses by dataTypeID itself. */
const rawText: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

const ISOLATION: Record<string, string> = {
  ReadUncommitted: "READ UNCOMMITTED",
  ReadCommitted: "READ COMMITTED",
  RepeatableRead: "REPEATABLE READ",
  Serializable: "SERIALIZABLE",
};

/** The fields the driver copies from a 400 body onto its NeonDbError. */
const ERROR_FIELDS = [
  "severity", "code", "detail", "hint", "position", "internalPosition", "internalQuery", "where",
  "schema", "table", "column", "dataType", "constraint", "file", "line", "routine",
] as const;

class BadRequest extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

async function handleSql(req: http.IncomingMessage, res: http.ServerResponse, pools: Map<string, pg.Pool>, log: (l: string) => void) {
  try {
    const connectionString = header(req, "neon-connection-string");
    const arrayMode = header(req, "neon-array-mode") === "true";
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, MAX_BODY, () => new BadRequest("request body too large", 413)));
    } catch {
      throw new BadRequest("request body is not valid JSON");
    }
    if (isObject(body) && Array.isArray(body.queries)) {
      const queries = body.queries.map(asQuery);
      const begin = beginStatement(req);
      const client = await poolFor(connectionString, "transaction", pools, log).connect();
      let broken: Error | undefined;
      try {
        await client.query(begin);
        const results = [];
        try {
          for (const q of queries) results.push(toNeonResult(await run(client, q), arrayMode));
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK").catch((e: Error) => (broken = e));
          throw err;
        }
        sendJson(res, 200, { results });
      } finally {
        client.release(broken);
      }
    } else {
      const result = await run(poolFor(connectionString, "query", pools, log), asQuery(body));
      sendJson(res, 200, toNeonResult(result, arrayMode));
    }
  } catch (err) {
    const status = err instanceof BadRequest ? err.status : 400;
    sendJson(res, status, errorBody(err));
  }
}

function run(target: pg.Pool | pg.PoolClient, q: HttpQuery): Promise<pg.QueryArrayResult> {
  // Extended protocol always, as Neon does: a multi-statement string fails
  // here exactly as it would in production ("cannot insert multiple commands
  // into a prepared statement") instead of silently working locally.
  const config: pg.QueryArrayConfig & { queryMode: "extended" } = {
    text: q.query,
    values: q.params ?? [],
    rowMode: "array",
    types: rawText,
    queryMode: "extended",
  };
  return target.query(config);
}

function toNeonResult(r: pg.QueryArrayResult, arrayMode: boolean) {
  const fields = r.fields.map((f) => ({
    name: f.name,
    dataTypeID: f.dataTypeID,
    tableID: f.tableID,
    columnID: f.columnID,
    dataTypeSize: f.dataTypeSize,
    dataTypeModifier: f.dataTypeModifier,
    format: f.format,
  }));
  const rows = arrayMode ? r.rows : r.rows.map((row) => Object.fromEntries(fields.map((f, i) => [f.name, row[i]])));
  return { command: r.command, rowCount: r.rowCount, rows, fields, rowAsArray: arrayMode };
}

function beginStatement(req: http.IncomingMessage): string {
  const parts = ["BEGIN"];
  const iso = header(req, "neon-batch-isolation-level");
  if (iso !== undefined) {
    const level = ISOLATION[iso];
    if (!level) throw new BadRequest(`unknown Neon-Batch-Isolation-Level "${iso}"`);
    parts.push("ISOLATION LEVEL", level);
  }
  const readOnly = header(req, "neon-batch-read-only");
  if (readOnly !== undefined) parts.push(readOnly === "true" ? "READ ONLY" : "READ WRITE");
  const deferrable = header(req, "neon-batch-deferrable");
  if (deferrable !== undefined) parts.push(deferrable === "true" ? "DEFERRABLE" : "NOT DEFERRABLE");
  return parts.join(" ");
}

/**
 * Single queries and transactions draw from separate pools, as each of Neon's HTTP requests gets its own
 * connection: otherwise transactions waiting on a lock (the audit chain's) could take every connection
 * while the transaction that holds the lock waits for a single read, a wait Postgres cannot see.
 */
function poolFor(connectionString: string | undefined, purpose: "query" | "transaction", pools: Map<string, pg.Pool>, log: (l: string) => void): pg.Pool {
  if (!connectionString) throw new BadRequest("missing Neon-Connection-String header");
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new BadRequest("Neon-Connection-String is not a valid URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") throw new BadRequest("Neon-Connection-String must be a postgres:// URL");
  const target = loopbackTarget(url.hostname);
  if (!target) throw new BadRequest(`host ${url.hostname} is not a loopback address`, 403);
  url.hostname = target.includes(":") ? `[${target}]` : target;
  // Neon terminates TLS at its proxy; the hop to a local Postgres is plain, and
  // a production-style "sslmode=require" would otherwise make pg demand TLS.
  for (const p of ["sslmode", "ssl", "sslcert", "sslkey", "sslrootcert", "channel_binding"]) url.searchParams.delete(p);
  const key = `${purpose} ${url.toString()}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new pg.Pool({ connectionString: url.toString(), max: 10, idleTimeoutMillis: 10_000 });
    // An idle client dying (e.g. Postgres restarted) must not crash the relay.
    pool.on("error", (err) => log(`[sql] idle connection error: ${err.message}`));
    pools.set(key, pool);
  }
  return pool;
}

function asQuery(v: unknown): HttpQuery {
  if (!isObject(v) || typeof v.query !== "string") throw new BadRequest('expected {"query": string, "params": [...]}');
  if (v.params !== undefined && !Array.isArray(v.params)) throw new BadRequest("params must be an array");
  return { query: v.query, params: v.params as unknown[] | undefined };
}

function errorBody(err: unknown): Record<string, unknown> {
  const e = (isObject(err) ? err : {}) as Record<string, unknown>;
  const body: Record<string, unknown> = { message: err instanceof Error ? err.message : String(err) };
  for (const f of ERROR_FIELDS) if (e[f] !== undefined) body[f] = e[f];
  return body;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const MAX_BODY = 16 * 1024 * 1024;
