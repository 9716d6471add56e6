/**
 * The local stack on free ports in a throwaway state dir, for integration
 * suites. Honours the same overrides as `npm start` (REDFORGE_DATABASE_URL —
 * given a fresh database here —, REDIS_URL, MQTT_URL), which is how CI reruns
 * the suites against the machine's own Postgres, Redis and Mosquitto.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig, type StackConfig } from "../../dev/config.ts";
import { freePort } from "../../dev/ports.ts";
import { startStack, type RunningStack } from "../../scripts/stack.ts";
import { startWranglerDev } from "../../scripts/wrangler-dev.ts";
import { freshDatabase } from "./freshDatabase.ts";

export interface TestStack extends RunningStack {
  cfg: StackConfig;
  /** Stops wrangler dev (workerd and every Durable Object in it) and starts it again on the same port and state. */
  restartWorker(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestStack(opts: { worker: "wrangler" | "none" }): Promise<TestStack> {
  const base = loadConfig();
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stack-"));
  const fresh = base.postgres.url ? await freshDatabase(base.postgres.url, "redforge_it") : undefined;
  // As root, embedded Postgres runs as "postgres", which must be able to enter the dir.
  await fs.chmod(stateDir, 0o755);
  const cfg: StackConfig = {
    ...base,
    stateDir,
    ports: {
      api: await freePort(), postgres: await freePort(), neonRelay: await freePort(),
      qstash: await freePort(), upstashRelay: await freePort(), mqtt: await freePort(),
    },
    postgres: { ...base.postgres, url: fresh?.url },
  };
  const lines: string[] = [];
  const stack = await startStack(cfg, { worker: opts.worker, log: (s, l) => { if (process.env.STACK_LOG) console.log(`[${s}] ${l}`); lines.push(`[${s}] ${l}`); if (lines.length > 200) lines.shift(); } });
  return {
    ...stack,
    cfg,
    async restartWorker() {
      const i = stack.services.findIndex((s) => s.name === "worker");
      if (i < 0) throw new Error("this stack runs no worker");
      await stack.services[i]!.close();
      stack.services[i] = await startWranglerDev({ port: cfg.ports.api, stateDir, vars: stack.workerVars, onLog: (l) => lines.push(`[worker] ${l}`) });
    },
    async stop() {
      await stack.close();
      await fresh?.drop();
      await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
}
