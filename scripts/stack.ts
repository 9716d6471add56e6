/**
 * The local stack, in dependency order: Postgres → migrations → Neon relay →
 * Upstash relay (only with a reachable REDIS_URL) → QStash emulator → MQTT
 * broker (unless MQTT_URL) → the Worker. `npm start` and the integration tests
 * both start it through here, so what the tests exercise is what developers run.
 * The child processes (Postgres, wrangler dev) are supervised: one that exits on
 * its own is restarted with backoff and the log says so; close() stops them for good.
 */
import path from "node:path";
import { migrate } from "../db/migrate.ts";
import type { RunningService, StackConfig } from "../dev/config.ts";
import { startMqttBroker } from "../dev/mqtt-broker.ts";
import { startNeonRelay } from "../dev/neon-relay.ts";
import { startStallWatch, stallLogTo } from "../dev/stallWatch.ts";
import { assertPortFree, isReachable, PortInUseError } from "../dev/ports.ts";
import { startEmbeddedPostgres } from "../dev/postgres.ts";
import { startQStashEmulator, type QStashEmulator } from "../dev/qstash/index.ts";
import { startUpstashRelay } from "../dev/upstash-relay.ts";
import { syncSchedules } from "./schedules.ts";
import { supervise, type SuperviseOptions } from "./supervise.ts";
import { startWranglerDev } from "./wrangler-dev.ts";
import { workerVars } from "./worker-vars.ts";

export type StackLog = (service: string, line: string) => void;

export interface RunningStack {
  services: RunningService[];
  workerVars: Record<string, string>;
  apiUrl: string;
  mqttUrl: string;
  qstash: QStashEmulator;
  /** "durable-object" unless a redis-server was reachable. */
  kvBackend: "upstash" | "durable-object";
  close(): Promise<void>;
}

/** Every port we are about to bind, checked together so one message names them all. */
async function checkPorts(cfg: StackConfig, withWorker: boolean, withRedis: boolean): Promise<void> {
  const wanted: [number, string, string][] = [
    [cfg.ports.neonRelay, "neon relay", "REDFORGE_NEON_RELAY_PORT"],
    [cfg.ports.qstash, "qstash emulator", "REDFORGE_QSTASH_PORT"],
  ];
  if (!cfg.postgres.url) wanted.push([cfg.ports.postgres, "postgres", "REDFORGE_PG_PORT"]);
  if (withRedis) wanted.push([cfg.ports.upstashRelay, "upstash relay", "REDFORGE_UPSTASH_RELAY_PORT"]);
  if (!cfg.mqttUrl) wanted.push([cfg.ports.mqtt, "mqtt broker", "REDFORGE_MQTT_PORT"]);
  if (withWorker) wanted.push([cfg.ports.api, "api (wrangler dev)", "REDFORGE_API_PORT"]);
  const taken: PortInUseError[] = [];
  for (const [port, what, envVar] of wanted) {
    await assertPortFree(port, what, envVar).catch((err) => {
      if (err instanceof PortInUseError) taken.push(err);
      else throw err;
    });
  }
  if (taken.length === 1) throw taken[0];
  if (taken.length > 1) {
    throw new Error(`ports already in use:\n  ${taken.map((e) => e.message).join("\n  ")}`);
  }
}

async function redisIfReachable(cfg: StackConfig): Promise<string | undefined> {
  if (!cfg.redisUrl) return undefined;
  const u = new URL(cfg.redisUrl);
  return (await isReachable(Number(u.port || 6379), u.hostname)) ? cfg.redisUrl : undefined;
}

export interface StackOptions {
  worker: "wrangler" | "none";
  log?: StackLog;
  /** Aborting mid-start stops what already started and rejects with the signal's reason (Ctrl-C during start-up). */
  signal?: AbortSignal;
  /** Child processes (Postgres, wrangler dev) that exit on their own are restarted with this backoff (scripts/supervise.ts). */
  restartBackoff?: Pick<SuperviseOptions, "initialBackoffMs" | "maxBackoffMs" | "stableAfterMs">;
}

/** Waits until a dead child's port is free again, so its replacement can bind it. */
async function portFreed(port: number, signal: AbortSignal, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await assertPortFree(port, "api (wrangler dev)").then(() => true, () => false))) {
    signal.throwIfAborted();
    if (Date.now() > deadline) throw new Error(`port ${port} is still held by the previous wrangler dev`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function startStack(cfg: StackConfig, opts: StackOptions): Promise<RunningStack> {
  const log: StackLog = opts.log ?? (() => {});
  const logTo = (service: string) => (line: string) => log(service, line);
  const redisUrl = await redisIfReachable(cfg);
  if (!cfg.redisUrl) log("stack", "no REDIS_URL: the Worker uses its Durable-Object KV store");
  else if (!redisUrl) log("stack", `REDIS_URL ${cfg.redisUrl} is not reachable: the Worker uses its Durable-Object KV store`);
  await checkPorts(cfg, opts.worker === "wrangler", Boolean(redisUrl));
  const supervision = (service: string): SuperviseOptions => ({ log: logTo(service), ...opts.restartBackoff });
  // Between steps, so an abort never leaves a half-started service unowned.
  const checkpoint = () => opts.signal?.throwIfAborted();

  const services: RunningService[] = [];
  const close = async () => {
    for (const s of [...services].reverse()) {
      await s.close().catch((err) => log(s.name, `close failed: ${String(err)}`));
    }
    services.length = 0;
  };
  try {
    checkpoint();
    let databaseUrl = cfg.postgres.url;
    if (!databaseUrl) {
      const startPg = () => startEmbeddedPostgres(cfg, { port: cfg.ports.postgres, onLog: logTo("postgres") });
      const pg = await startPg();
      services.push(supervise(pg, startPg, supervision("postgres")));
      databaseUrl = pg.connectionString;
    }
    checkpoint();
    await migrate(databaseUrl);
    log("postgres", "schema is up to date");
    const watch = startStallWatch({ databaseUrl, report: stallLogTo("stack", logTo("postgres")) });
    services.push({ name: "stall watch", url: "", close: () => watch.close() });
    checkpoint();
    services.push(await startNeonRelay({ port: cfg.ports.neonRelay, host: cfg.host, onLog: logTo("neon-relay") }));
    let upstashRelayUrl: string | undefined;
    if (redisUrl) {
      const relay = await startUpstashRelay({ port: cfg.ports.upstashRelay, host: cfg.host, redisUrl, token: cfg.upstashToken, onLog: logTo("upstash-relay") });
      services.push(relay);
      upstashRelayUrl = relay.url;
    }
    checkpoint();
    const qstash = await startQStashEmulator({
      port: cfg.ports.qstash, host: cfg.host, token: cfg.qstash.token,
      currentSigningKey: cfg.qstash.currentSigningKey, nextSigningKey: cfg.qstash.nextSigningKey,
      stateFile: path.join(cfg.stateDir, "qstash.json"), onLog: logTo("qstash"),
    });
    services.push(qstash);
    checkpoint();
    let mqttUrl = cfg.mqttUrl;
    if (!mqttUrl) {
      const broker = await startMqttBroker({ port: cfg.ports.mqtt, host: cfg.host, onLog: logTo("mqtt") });
      services.push(broker);
      mqttUrl = broker.url;
    }
    const apiUrl = `http://${cfg.host}:${cfg.ports.api}`;
    const vars = workerVars(cfg, {
      databaseUrl, neonRelay: `${cfg.host}:${cfg.ports.neonRelay}`, qstashUrl: qstash.url, upstashRelayUrl, publicUrl: apiUrl,
    });
    if (opts.worker === "wrangler") {
      checkpoint();
      const startWorker = (signal?: AbortSignal) => startWranglerDev({ port: cfg.ports.api, stateDir: cfg.stateDir, vars, onLog: logTo("worker"), signal });
      const worker = await startWorker(opts.signal);
      services.push(supervise(worker, async (signal) => {
        await portFreed(cfg.ports.api, signal);
        return startWorker(signal);
      }, supervision("worker")));
      checkpoint();
      const ids = await syncSchedules({ qstashUrl: qstash.url, token: cfg.qstash.token, publicUrl: apiUrl });
      log("qstash", `schedules in place: ${ids.join(", ")}`);
    }
    return { services, workerVars: vars, apiUrl, mqttUrl, qstash, kvBackend: upstashRelayUrl ? "upstash" : "durable-object", close };
  } catch (err) {
    await close();
    throw err;
  }
}
