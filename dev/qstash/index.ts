/**
 * Local stand-in for QStash v2. The official dev server downloads a binary at
 * install time and cannot be used offline, so this speaks enough of the wire
 * protocol for @upstash/qstash's Client (baseUrl pointed here) and Receiver to
 * work unchanged: publish/batch, delays, retries with backoff, DLQ, cron
 * schedules, signing keys, and JWT-signed deliveries — to loopback hosts only.
 */
import http from "node:http";
import type { RunningService } from "../config.ts";
import { assertPortFree, listen } from "../ports.ts";
import { handle } from "./api.ts";
import { QStashEngine } from "./engine.ts";

export { defaultRetryBackoff } from "./engine.ts";

export interface QStashEmulatorOptions {
  port: number;
  host?: string;
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  /** Persist schedules, undelivered messages and the DLQ here across restarts. */
  stateFile?: string;
  /** Delay in ms before retry number `retried` (1-based); default QStash's min(1 day, e^(2.5n) s). */
  retryBackoff?: (retried: number) => number;
  onLog?: (line: string) => void;
}

export interface QStashEmulator extends RunningService {
  /** Test hook: does everything due at `now` (cron firings, delayed messages, retries) and waits for those attempts. */
  tick(now?: Date): Promise<void>;
  /** Test hook: fires a schedule immediately, whatever its cron says; returns the published messageId. */
  fireSchedule(scheduleId: string): string;
  /** Test hook: resolves once no delivery attempt is in flight. */
  idle(): Promise<void>;
  stats(): { pending: number; inFlight: number; dlq: number; schedules: number };
}

export async function startQStashEmulator(opts: QStashEmulatorOptions): Promise<QStashEmulator> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.onLog ?? (() => {});
  await assertPortFree(opts.port, "qstash emulator", "REDFORGE_QSTASH_PORT", host);

  const engine = new QStashEngine({
    currentSigningKey: opts.currentSigningKey,
    ...(opts.stateFile ? { stateFile: opts.stateFile } : {}),
    ...(opts.retryBackoff ? { retryBackoff: opts.retryBackoff } : {}),
    log,
  });
  const ctx = { engine, token: opts.token, keys: { current: opts.currentSigningKey, next: opts.nextSigningKey }, log };
  const server = http.createServer((req, res) => void handle(ctx, req, res));

  try {
    await listen(server, opts.port, host);
  } catch (err) {
    await engine.close();
    throw err;
  }
  engine.start();
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${opts.port}`;
  log(`QStash emulator listening on ${url}`);

  let closing: Promise<void> | undefined;
  return {
    name: "qstash emulator",
    url,
    tick: (now) => engine.tick(now?.getTime()),
    fireSchedule: (id) => engine.fireSchedule(id),
    idle: () => engine.idle(),
    stats: () => engine.stats(),
    close() {
      closing ??= (async () => {
        // Stop taking API calls first so nothing mutates state during the final save.
        const stopped = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        await stopped;
        await engine.close();
        // An in-process keep-alive client (undici's fetch) needs a couple of loop
        // turns to notice the FIN; a restart on the same port sooner than that
        // gets "other side closed" on the stale socket. Measured: 2 turns suffice.
        await new Promise((r) => setTimeout(r, 20));
        log("QStash emulator stopped");
      })();
      return closing;
    },
  };
}
