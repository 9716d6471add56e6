/**
 * ClusterLink client: the bridge's end of the command channel. The bridge
 * dials OUT (NAT-friendly) to the control plane's ClusterLink, says hello,
 * acknowledges each command frame with a receipt and hands the command on.
 * It never gives up: every failure (network, auth, a dropped socket) ends in
 * a jittered exponential backoff and another attempt, until close().
 */
import WebSocket, { type RawData } from "ws";
import { bridgePaths, controlPlaneUrl } from "../protocol/paths.ts";
import { serverFrameSchema, type BridgeFrame, type Command, type ServerFrame } from "../protocol/commands.ts";
import { backoffDelay, LINK_BACKOFF, sleep, type BackoffPolicy } from "./backoff.ts";
import { errorMessage, type Logger } from "./log.ts";
import { AuthError, TokenSource } from "./token.ts";
import type { SupportedStack } from "../protocol/stacks.ts";

/** Where the link delivers what the control plane asks for. */
export interface CommandSink {
  command(command: Command): void;
  /** A command frame that does not match the protocol but carries an id: it can still be answered with an error. */
  invalidCommand(commandId: string, problem: string): void;
}

export interface ClusterLinkOptions {
  api: string;
  clusterId: string;
  secret: string;
  bridgeVersion: string;
  driver: "process" | "kubernetes";
  /** The Node-RED stacks the driver can start; sent in every hello. */
  stacks?: SupportedStack[];
  sink: CommandSink;
  log: Logger;
  backoff?: BackoffPolicy;
  /** A connection that stayed up this long resets the backoff (a flapping link keeps backing off). */
  stableAfterMs?: number;
  /** Ping interval; a link without a pong for one interval is considered dead. */
  heartbeatMs?: number;
  tokens?: TokenSource;
  /** The control plane welcomed this link (a session began). */
  onConnected?: () => void;
  /** A welcomed session ended: until the next welcome nobody can send this bridge a command (deployment holds go on a short lease). */
  onDisconnected?: () => void;
}

interface SessionEnd {
  welcomedAt?: number;
  code: number;
  reason: string;
}

const MAX_FRAME_BYTES = 32 * 1024 * 1024;

export class ClusterLink {
  private readonly tokens: TokenSource;
  private readonly abort = new AbortController();
  private ws?: WebSocket;
  private loop?: Promise<void>;
  private welcomed = false;

  constructor(private readonly opts: ClusterLinkOptions) {
    this.tokens = opts.tokens ?? new TokenSource(opts);
  }

  /** True while a socket is open and the control plane has welcomed us. */
  get connected(): boolean {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.abort.abort();
    this.ws?.close(1000, "bridge shutting down");
    // A peer that never answers the close handshake must not hold up shutdown.
    const force = setTimeout(() => this.ws?.terminate(), 2_000);
    await this.loop;
    clearTimeout(force);
  }

  private async run(): Promise<void> {
    const policy = this.opts.backoff ?? LINK_BACKOFF;
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      let problem: string;
      try {
        const end = await this.session(await this.tokens.get(this.abort.signal));
        if (end.welcomedAt !== undefined && Date.now() - end.welcomedAt >= (this.opts.stableAfterMs ?? 10_000)) attempt = 0;
        problem = `connection closed (code ${end.code}${end.reason ? `: ${end.reason}` : ""})`;
        // The control plane keeps one bridge per cluster and closes the older socket with 4000.
        if (end.code === 4000) problem += "; is another bridge running for this cluster?";
      } catch (err) {
        if (err instanceof AuthError && err.status === 401) this.tokens.invalidate();
        problem = err instanceof AuthError ? `AUTH FAILED: ${err.message}` : `cannot connect: ${errorMessage(err)}`;
      }
      if (this.abort.signal.aborted) break;
      const delay = backoffDelay(attempt++, policy);
      const line = `link: ${problem}; reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})`;
      if (problem.startsWith("AUTH")) this.opts.log.error(line);
      else this.opts.log.warn(line);
      await sleep(delay, this.abort.signal);
    }
  }

  /** One connection, from upgrade to close. Rejects if it never opened. */
  private session(token: string): Promise<SessionEnd> {
    return new Promise((resolve, reject) => {
      const url = controlPlaneUrl(this.opts.api, bridgePaths.link(this.opts.clusterId), { ws: true });
      const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` }, handshakeTimeout: 15_000, maxPayload: MAX_FRAME_BYTES });
      this.ws = ws;
      this.welcomed = false;
      let opened = false;
      let refused: number | undefined;
      let lastError: Error | undefined;
      let welcomedAt: number | undefined;
      const stopHeartbeat = this.heartbeat(ws);

      ws.on("unexpected-response", (_req, res) => {
        refused = res.statusCode;
        res.resume();
        ws.terminate();
      });
      ws.on("open", () => {
        opened = true;
        this.send(ws, { kind: "hello", bridgeVersion: this.opts.bridgeVersion, driver: this.opts.driver, ...(this.opts.stacks ? { stacks: this.opts.stacks } : {}) });
      });
      ws.on("message", (data) => {
        if (this.onMessage(data) === "welcome") welcomedAt = Date.now();
      });
      ws.on("error", (err) => { lastError = err; });
      ws.on("close", (code, reason) => {
        stopHeartbeat();
        const wasWelcomed = this.welcomed;
        this.welcomed = false;
        // Not when this bridge closes the link itself (a shutdown): its holds are the next bridge's, through the data plane's lease.
        if (wasWelcomed && !this.abort.signal.aborted) this.notify(this.opts.onDisconnected, "onDisconnected");
        if (opened) return resolve({ welcomedAt, code, reason: reason.toString() });
        if (refused === 401 || refused === 403) {
          return reject(new AuthError(`control plane refused the link upgrade (${refused}): the cluster token was not accepted`, refused));
        }
        reject(refused ? new Error(`link upgrade refused: HTTP ${refused}`) : (lastError ?? new Error(`closed before opening (code ${code})`)));
      });
      if (this.abort.signal.aborted) ws.terminate();
    });
  }

  /** A half-open TCP connection never closes by itself; a missed pong is how we notice. */
  private heartbeat(ws: WebSocket): () => void {
    let alive = true;
    ws.on("pong", () => { alive = true; });
    const timer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (!alive) {
        this.opts.log.warn(`link: no pong within ${this.opts.heartbeatMs ?? 30_000} ms; dropping the connection`);
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, this.opts.heartbeatMs ?? 30_000);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Parses one frame; anything that does not match the protocol is logged and dropped, never fatal. */
  private onMessage(data: RawData): ServerFrame["kind"] | undefined {
    const text = Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString("utf8");
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.opts.log.warn(`link: ignored a frame that is not JSON: ${excerpt(text)}`);
      return undefined;
    }
    const parsed = serverFrameSchema.safeParse(raw);
    if (!parsed.success) {
      this.onInvalidFrame(raw, parsed.error.issues.map((i) => `${i.path.join(".") || "frame"}: ${i.message}`).join("; "), text);
      return undefined;
    }
    const frame = parsed.data;
    if (frame.kind === "welcome") {
      this.welcomed = true;
      if (frame.clusterId !== this.opts.clusterId) this.opts.log.warn(`link: welcomed as cluster ${frame.clusterId}, expected ${this.opts.clusterId}`);
      this.opts.log.info(`link: connected to ${this.opts.api} as cluster ${frame.clusterId} (${frame.pending} command(s) pending)`);
      this.notify(this.opts.onConnected, "onConnected");
    } else {
      if (this.ws) this.send(this.ws, { kind: "received", commandId: frame.command.id });
      this.deliver(() => this.opts.sink.command(frame.command));
    }
    return frame.kind;
  }

  private onInvalidFrame(raw: unknown, problem: string, text: string): void {
    const command = (raw as { kind?: unknown; command?: { id?: unknown } } | null)?.command;
    const id = (raw as { kind?: unknown })?.kind === "command" ? command?.id : undefined;
    if (typeof id === "string" && id.length > 0 && id.length <= 64) {
      this.opts.log.warn(`link: command ${id} does not match the protocol (${problem}); answering with an error`);
      this.deliver(() => this.opts.sink.invalidCommand(id, problem));
      return;
    }
    this.opts.log.warn(`link: ignored an invalid frame (${problem}): ${excerpt(text)}`);
  }

  private notify(fn: (() => void) | undefined, what: string): void {
    try {
      fn?.();
    } catch (err) {
      this.opts.log.error(`link: ${what} threw: ${errorMessage(err)}`);
    }
  }

  private deliver(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log.error(`link: command handler threw: ${errorMessage(err)}`);
    }
  }

  private send(ws: WebSocket, frame: BridgeFrame): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }
}

function excerpt(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
