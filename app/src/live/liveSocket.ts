/**
 * The console's one WebSocket client (/ws/fleet, /ws/deployments/:id). It
 * reconnects with jittered backoff after any drop, and calls `onOpen` on every
 * (re)connect so the page can resubscribe: re-read what it may have missed
 * while the socket was down (the fleet hub does not replay; a deployment's
 * stream starts with its current state anyway).
 */
import { backoffDelay, type BackoffOptions } from "./backoff.ts";

export type LiveState = "connecting" | "open" | "reconnecting" | "closed";

/** The part of the browser's WebSocket this client uses (tests pass a fake). */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface LiveSocketOptions {
  /** Where to connect now (the token may have changed since the last try); null: do not connect. */
  url: () => string | null;
  onMessage: (message: unknown) => void;
  onOpen?: () => void;
  onState?: (state: LiveState) => void;
  connect?: (url: string) => SocketLike;
  backoff?: BackoffOptions;
  /** Idle proxies close silent sockets; the fleet hub answers "ping" with "pong". */
  pingEveryMs?: number;
  timers?: { set: (fn: () => void, ms: number) => unknown; clear: (handle: unknown) => void };
}

const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

export class LiveSocket {
  private socket: SocketLike | null = null;
  private attempt = 0;
  private retry: unknown = null;
  private ping: unknown = null;
  private stopped = false;
  private readonly timers: NonNullable<LiveSocketOptions["timers"]>;

  constructor(private readonly opts: LiveSocketOptions) {
    this.timers = opts.timers ?? {
      set: (fn, ms) => setTimeout(fn, ms),
      clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.open();
  }

  /** Stops for good: no reconnect after this. */
  close(): void {
    this.stopped = true;
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    if (s) { s.onclose = null; s.close(1000, "done"); }
    this.opts.onState?.("closed");
  }

  private open(): void {
    if (this.stopped) return;
    const url = this.opts.url();
    if (!url) { this.opts.onState?.("closed"); return; }
    this.opts.onState?.(this.attempt === 0 ? "connecting" : "reconnecting");
    const connect = this.opts.connect ?? ((u: string) => new WebSocket(u) as unknown as SocketLike);
    const socket = connect(url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.opts.onState?.("open");
      this.schedulePing();
      this.opts.onOpen?.();
    };
    socket.onmessage = (ev) => {
      if (typeof ev.data !== "string" || ev.data === "pong") return;
      let message: unknown;
      try { message = JSON.parse(ev.data); } catch { return; }
      this.opts.onMessage(message);
    };
    socket.onerror = () => { /* onclose follows and decides */ };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.clearTimers();
      if (this.stopped) return;
      this.opts.onState?.("reconnecting");
      const delay = backoffDelay(this.attempt++, this.opts.backoff ?? DEFAULT_BACKOFF);
      this.retry = this.timers.set(() => { this.retry = null; this.open(); }, delay);
    };
  }

  private schedulePing(): void {
    const every = this.opts.pingEveryMs ?? 30_000;
    this.ping = this.timers.set(() => {
      try { this.socket?.send("ping"); } catch { /* closing; onclose reconnects */ }
      this.schedulePing();
    }, every);
  }

  private clearTimers(): void {
    if (this.retry !== null) this.timers.clear(this.retry);
    if (this.ping !== null) this.timers.clear(this.ping);
    this.retry = this.ping = null;
  }
}

/** ws(s):// for a path on this origin, with the session token (browsers cannot set headers on a WebSocket). */
export function liveUrl(origin: string, path: string, token: string): string {
  const u = new URL(path, origin);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.searchParams.set("token", token);
  return u.toString();
}
