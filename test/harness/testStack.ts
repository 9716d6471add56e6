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
import { seedPostgresFromTemplate } from "./pgTemplate.ts";

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
  // The run's migrated template cluster instead of initdb + migrations per stack (test/harness/pgTemplate.ts).
  if (!fresh) await seedPostgresFromTemplate(stateDir);
  const lines: string[] = [];
  const log = (s: string, l: string) => { if (process.env.STACK_LOG) console.log(`[${s}] ${l}`); lines.push(`[${s}] ${l}`); if (lines.length > 200) lines.shift(); };
  let cfg: StackConfig;
  let stack: RunningStack;
  for (let attempt = 1; ; attempt++) {
    cfg = {
      ...base,
      stateDir,
      ports: {
        api: await freePort(), postgres: await freePort(), neonRelay: await freePort(),
        qstash: await freePort(), upstashRelay: await freePort(), mqtt: await freePort(),
      },
      postgres: { ...base.postgres, url: fresh?.url },
    };
    try {
      stack = await startStack(cfg, { worker: opts.worker, log });
      break;
    } catch (err) {
      // A free port can be taken between picking it and binding it (suites run side by side and spawn
      // Node-RED processes on ephemeral ports): pick a fresh set and try again.
      const taken = (err as Error).name === "PortInUseError" || (err as Error).message.startsWith("ports already in use")
        || /Address already in use/.test((err as Error).message); // wrangler dev's own bind (its inspector, its API port)
      if (!taken || attempt >= 3) {
        await fresh?.drop();
        await fs.rm(stateDir, { recursive: true, force: true });
        throw err;
      }
    }
  }
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
