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
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
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

/**
 * Requests this front accepted and answered, for its successor after a kill (issue 12 (g): a host
 * restart resets every request inside the data plane, and the product counted none of them).
 * `<dir>/http.journal` is two 8-byte counters (accepted, ended) rewritten in place with one `pwrite`
 * per request event: no fsync, because a kill keeps the page cache and a single write is never torn
 * by one. `<dir>/http.hold` exists while the front holds (a deployment's hold). The next front on the
 * directory reads accepted − ended: requests its predecessor took and never answered. Cut inside a
 * hold, they are the deployment's: they join `unanswered` when the bridge resumes the hold
 * (`hold()`), after it read its baseline, so the hand-over's `httpUnanswered` carries them.
 * Connections refused while no front listened reach no process, and nothing here can count them.
 */
class RequestJournal {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(16);
  private accepted = 0;
  private ended = 0;
  /** Requests the previous process accepted and never answered. */
  readonly cutBefore: number;
  readonly cutInHold: boolean;
  private readonly holdFlag: string;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, "http.journal");
    this.holdFlag = path.join(dir, "http.hold");
    let before = 0;
    try {
      const old = fs.readFileSync(file);
      if (old.length >= 16) before = Math.max(0, Number(old.readBigUInt64BE(0) - old.readBigUInt64BE(8)));
    } catch { /* none yet */ }
    this.cutBefore = before;
    this.cutInHold = fs.existsSync(this.holdFlag);
    this.fd = fs.openSync(file, "w", 0o600);
    this.write();
  }

  accept(): void { this.accepted++; this.write(); }
  end(): void { this.ended++; this.write(); }

  holding(on: boolean): void {
    try {
      if (on) fs.writeFileSync(this.holdFlag, new Date().toISOString(), { mode: 0o600 });
      else fs.rmSync(this.holdFlag, { force: true });
    } catch { /* a full disk: the count after a kill is then a lower bound */ }
  }

  close(): void {
    try { fs.closeSync(this.fd); } catch { /* closed */ }
  }

  private write(): void {
    this.buf.writeBigUInt64BE(BigInt(this.accepted), 0);
    this.buf.writeBigUInt64BE(BigInt(this.ended), 8);
    try { fs.writeSync(this.fd, this.buf, 0, 16, 0); } catch { /* counting must never stop traffic */ }
  }
}

export interface HttpFrontOptions {
  holdLimit?: number;
  maxHoldMs?: number;
  /** Where the request journal lives (the instance's spool dir in the data plane); none: not journaled. */
  journalDir?: string;
  log?: (line: string) => void;
}

export class HttpFront implements HttpRoute {
  private target?: URL;
  private holding = false;
  private held: Array<{ req: http.IncomingMessage; res: http.ServerResponse; timer: NodeJS.Timeout }> = [];
  private readonly count: Required<Omit<FrontCounters, "cutInHold">> = { forwarded: 0, held: 0, refused: 0, serverErrors: 0, unanswered: 0, heldRefused: 0 };
  url = "";
  private readonly holdLimit: number;
  private readonly maxHoldMs: number;
  private readonly journal?: RequestJournal;
  /** Requests a killed predecessor cut inside a hold, added to `unanswered` when the hold is resumed. */
  private cutPending = 0;
  /** The same, reported as `cutInHold` until a new hold begins after a release (see FrontCounters). */
  private cutInHold = 0;
  private releasedSinceStart = false;

  constructor(private readonly host: string, o: HttpFrontOptions = {}) {
    this.holdLimit = o.holdLimit ?? DEFAULT_HOLD_LIMIT;
    this.maxHoldMs = o.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    if (!o.journalDir) return;
    try {
      this.journal = new RequestJournal(o.journalDir);
    } catch (err) {
      o.log?.(`http front: no request journal (${(err as Error).message}): requests cut by a kill of this process will not be counted`);
      return;
    }
    const cut = this.journal.cutBefore;
    if (cut) o.log?.(`http front: ${cut} request(s) accepted by the previous process and never answered (it was killed)${this.journal.cutInHold ? "; inside a deployment's hold: counted as unanswered when the hold resumes" : "; outside any hold"}`);
    if (this.journal.cutInHold) this.cutPending = this.cutInHold = cut;
  }

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
    if (!this.holding && this.releasedSinceStart) this.cutInHold = 0; // a new hold: the predecessor's cut was the last one's
    this.holding = true;
    this.journal?.holding(true);
    // The hold a killed predecessor was in goes on: what it cut is this hold's loss (see RequestJournal).
    this.count.unanswered += this.cutPending;
    this.cutPending = 0;
  }

  async heldCount(): Promise<number> {
    return this.held.length;
  }

  async counters(): Promise<FrontCounters> {
    return { ...this.count, cutInHold: this.cutInHold };
  }

  /** Stops holding and forwards what waited, in arrival order, to the current target. */
  async release(): Promise<number> {
    return this.releaseNow();
  }

  private releaseNow(): number {
    if (this.holding) this.releasedSinceStart = true;
    this.holding = false;
    this.journal?.holding(false);
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
    this.journal?.close();
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
    this.journal?.accept();
    res.once("close", () => {
      this.journal?.end();
      if (!res.writableFinished) this.count.unanswered++;
    });
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
