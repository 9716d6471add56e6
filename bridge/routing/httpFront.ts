/**
 * The HTTP half of an instance's front door, where the bridge itself routes
 * HTTP (the process driver, inside the data plane process: bridge/dataplane/;
 * on Kubernetes a Service does it). The stable front door of one instance: a port that never changes while the
 * Node-RED behind it may (a restart, and in blue-green deployments a switch
 * from blue to green). Plain HTTP forwarding; WebSocket upgrades are not
 * proxied yet. During a deployment's switch the front holds new requests
 * (up to a bound, then 503 + Retry-After) and releases them, in arrival
 * order, to whichever Node-RED serves after the switch.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { FrontCounters, HttpRoute } from "./fronts.ts";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);

/** Requests held while a deployment switches; beyond this the front answers 503 + Retry-After. */
export const DEFAULT_HOLD_LIMIT = 5_000;
/**
 * How long one request may wait at the front before it is refused (503 + Retry-After). A hold
 * normally lasts a switch (well under a second); one cut off by a host restart or a control plane
 * that is away can last minutes, and a request that waits that long is hung for its client, who
 * gave up long before (issue 12 (g): 242 requests held past the load's 60 s). Refused is honest.
 */
export const DEFAULT_MAX_HOLD_MS = 30_000;

export class HttpFront implements HttpRoute {
  private target?: URL;
  private holding = false;
  private held: Array<{ req: http.IncomingMessage; res: http.ServerResponse; timer: NodeJS.Timeout }> = [];
  private readonly count: Required<FrontCounters> = { forwarded: 0, held: 0, refused: 0, serverErrors: 0, unanswered: 0, heldRefused: 0 };
  url = "";

  constructor(private readonly host: string, private readonly holdLimit = DEFAULT_HOLD_LIMIT, private readonly maxHoldMs = DEFAULT_MAX_HOLD_MS) {}

  async listen(port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.server.once("error", fail);
      this.server.listen(port, this.host, () => { this.server.off("error", fail); resolve(); });
    });
    const bound = (this.server.address() as AddressInfo).port;
    this.url = `http://${this.host}:${bound}`;
    return bound;
  }

  /** Where traffic goes from now on; requests already forwarded finish where they are. */
  async setTarget(base: string | undefined): Promise<void> {
    this.target = base ? new URL(base) : undefined;
  }

  get targetBase(): string | undefined {
    return this.target?.origin;
  }

  get holdingNow(): boolean {
    return this.holding;
  }

  /** From now on new requests wait here instead of reaching the instance. */
  async hold(): Promise<void> {
    this.holding = true;
  }

  async heldCount(): Promise<number> {
    return this.held.length;
  }

  async counters(): Promise<FrontCounters> {
    return { ...this.count };
  }

  /** Stops holding and forwards what waited, in arrival order, to the current target. */
  async release(): Promise<number> {
    return this.releaseNow();
  }

  private releaseNow(): number {
    this.holding = false;
    const waiting = this.held.splice(0);
    for (const { req, res, timer } of waiting) {
      clearTimeout(timer);
      this.forward(req, res);
    }
    return waiting.length;
  }

  async close(): Promise<void> {
    this.releaseNow();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A request held past maxHoldMs: refused, so its client knows (and may retry) instead of waiting for nothing. */
  private refuseHeld(entry: { req: http.IncomingMessage; res: http.ServerResponse }): void {
    const at = this.held.indexOf(entry as (typeof this.held)[number]);
    if (at < 0) return;
    this.held.splice(at, 1);
    this.count.refused++;
    // Also counted as held: the deployment's accounting takes these out of "held and never released" (not lost: told).
    this.count.heldRefused++;
    if (entry.res.headersSent || entry.res.destroyed) return;
    entry.res.writeHead(503, { "content-type": "application/json", "retry-after": "2", connection: "close" });
    entry.res.end(JSON.stringify({ error: { code: "front_hold_timeout", message: `held ${Math.round(this.maxHoldMs / 1000)} s while a deployment moves this instance; retry shortly` } }));
  }

  private readonly server = http.createServer((req, res) => {
    // Seen, and never answered: the connection closed before the answer was complete.
    res.once("close", () => { if (!res.writableFinished) this.count.unanswered++; });
    this.forward(req, res);
  });

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.holding) {
      if (this.held.length >= this.holdLimit) {
        this.count.refused++;
        res.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
        return void res.end(JSON.stringify({ error: { code: "front_hold_full", message: "a deployment is switching this instance and the hold queue is full; retry shortly" } }));
      }
      this.count.held++;
      // Paused so the body waits in the socket rather than in memory until release.
      req.pause();
      const entry = { req, res, timer: setTimeout(() => this.refuseHeld(entry), this.maxHoldMs) };
      entry.timer.unref();
      this.held.push(entry);
      return;
    }
    const target = this.target;
    if (!target) return unavailable(res, "instance is not running");
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers["x-forwarded-for"] = req.socket.remoteAddress ?? "";
    this.count.forwarded++;
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (up) => {
      if ((up.statusCode ?? 502) >= 500) this.count.serverErrors++;
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.on("error", () => {
      this.count.serverErrors++;
      unavailable(res, "instance did not answer");
    });
    req.pipe(upstream);
  }
}

function unavailable(res: http.ServerResponse, message: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(503, { "content-type": "application/json", "retry-after": "2" });
  res.end(JSON.stringify({ error: { code: "instance_unavailable", message } }));
}
