/**
 * The data plane's control API on a Unix domain socket: only processes that
 * can open `<stateDir>/dataplane.sock` (the bridge's user; the state dir is
 * 0700) reach it, so it needs no token. Bodies are JSON, parsed with the
 * schemas of protocol.ts; every failure is `{error: {code, message}}`.
 */
import http from "node:http";
import type { FrontRegistry } from "../routing/frontRegistry.ts";
import { CALL_HANDLERS, DataPlaneError, type CallContext } from "./calls.ts";
import type { HoldLease } from "./lease.ts";
import { callRequest, DATA_PLANE_PROTOCOL, frontHoldsWork, leaseArgs, shutdownArgs, type AnyCall, type DataPlaneInfo, type DataPlaneStatus } from "./protocol.ts";

/** A control request body is small (ids and URLs); anything bigger is a mistake. */
const MAX_BODY = 64 * 1024;

export interface ControlServerOptions {
  fronts: FrontRegistry;
  info: DataPlaneInfo;
  mqttUrl?: string;
  /** The bridges' lease (lease.ts); without it `POST /lease` is refused. */
  lease?: HoldLease;
  /** Asked to stop (`POST /shutdown`); resolves when the answer may go out. */
  onShutdown: () => void;
  log: (line: string) => void;
}

export function createControlServer(o: ControlServerOptions): http.Server {
  const status = async (): Promise<DataPlaneStatus> => ({
    ...o.info, protocol: DATA_PLANE_PROTOCOL, ...(o.mqttUrl ? { mqttUrl: o.mqttUrl } : {}),
    fronts: await Promise.all(o.fronts.instanceIds().map(async (instanceId) => {
      const h = o.fronts.http(instanceId);
      const m = o.fronts.mqtt(instanceId);
      return {
        instanceId,
        ...(h ? { http: { url: h.url, holding: h.holdingNow, held: await h.heldCount(), ...(h.targetBase ? { target: h.targetBase } : {}) } } : {}),
        ...(m ? { mqtt: await m.counters() } : {}),
      };
    })),
  });

  return http.createServer((req, res) => {
    if (req.method === "POST" && req.url === "/lease" && o.lease) return void holdLease(o.lease, req, res);
    void route(req).then(
      (body) => send(res, 200, body),
      (err: unknown) => {
        if (err instanceof DataPlaneError) return send(res, err.code === "unknown_front" ? 404 : err.code === "invalid_request" ? 400 : 409, { error: { code: err.code, message: err.message } });
        o.log(`control API: ${req.method} ${req.url}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
        send(res, 500, { error: { code: "internal", message: err instanceof Error ? err.message : String(err) } });
      },
    );
  });

  async function route(req: http.IncomingMessage): Promise<unknown> {
    const key = `${req.method} ${req.url}`;
    if (key === "GET /ping") return { ...o.info, protocol: DATA_PLANE_PROTOCOL };
    if (key === "GET /status") return status();
    if (key === "POST /call") {
      const parsed = callRequest.safeParse(await readJson(req));
      if (!parsed.success) throw new DataPlaneError("invalid_request", parsed.error.message);
      const call = parsed.data as AnyCall;
      const ctx: CallContext = o.lease ? { lease: o.lease } : {};
      return (CALL_HANDLERS[call.op] as (f: FrontRegistry, a: AnyCall, c: CallContext) => Promise<unknown>)(o.fronts, call, ctx);
    }
    if (key === "POST /shutdown") {
      const parsed = shutdownArgs.safeParse(await readJson(req));
      if (!parsed.success) throw new DataPlaneError("invalid_request", parsed.error.message);
      const now = await status();
      const busy = now.fronts.filter(frontHoldsWork);
      if (parsed.data.onlyIfIdle && busy.length) return { stopping: false, reason: `fronts hold work: ${busy.map((f) => f.instanceId).join(", ")}` };
      setImmediate(o.onShutdown);
      return { stopping: true };
    }
    throw new DataPlaneError("invalid_request", `no route ${key}`);
  }
}

/** One bridge's lease: open until its connection closes (the bridge died or let go). */
async function holdLease(lease: HoldLease, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let args;
  try {
    args = leaseArgs.safeParse(await readJson(req));
  } catch (err) {
    return send(res, 400, { error: { code: "invalid_request", message: err instanceof Error ? err.message : String(err) } });
  }
  if (!args.success) return send(res, 400, { error: { code: "invalid_request", message: args.error.message } });
  if (res.closed || req.socket.destroyed) return;
  let closed = false;
  res.once("close", () => {
    closed = true;
    lease.detach();
  });
  // The socket stays open without traffic for as long as the bridge lives.
  req.socket.setTimeout(0);
  res.setTimeout(0);
  await lease.attach(args.data.leaseMs);
  if (closed) return;
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  res.write(`${JSON.stringify({ leased: true })}\n`);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new DataPlaneError("invalid_request", `body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
  } catch {
    throw new DataPlaneError("invalid_request", "body is not JSON");
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
