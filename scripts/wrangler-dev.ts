/**
 * Runs the Worker under `wrangler dev` as one of the stack's services: its
 * variables come from an env file (never argv), it is up when /api/health
 * answers, and close() takes down wrangler and its workerd children together.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { ROOT, type RunningService } from "../dev/config.ts";
import { freePort } from "../dev/ports.ts";
import { toEnvFile } from "./worker-vars.ts";

export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
} as const;

export interface WranglerDevOptions {
  port: number;
  stateDir: string;
  vars: Record<string, string>;
  onLog?: (line: string) => void;
  readyTimeoutMs?: number;
}

export async function startWranglerDev(opts: WranglerDevOptions): Promise<RunningService> {
  const envFile = path.join(opts.stateDir, "dev.vars");
  await fs.mkdir(opts.stateDir, { recursive: true });
  await fs.writeFile(envFile, toEnvFile(opts.vars), { mode: 0o600 });
  const url = `http://127.0.0.1:${opts.port}`;
  const child = spawn(path.join(ROOT, "node_modules/.bin/wrangler"), [
    "dev", "--ip", "127.0.0.1", "--port", String(opts.port),
    // The devtools inspector would otherwise claim 9229 and collide with a second stack.
    "--inspector-port", String(await freePort()),
    "--persist-to", path.join(opts.stateDir, "wrangler"),
    "--env-file", envFile,
    "--show-interactive-dev-session=false", "--log-level", "info",
  ], {
    cwd: ROOT,
    env: { ...process.env, ...OFFLINE_ENV, FORCE_COLOR: "0" },
    detached: true, // its own process group, so workerd dies with it
    stdio: ["ignore", "pipe", "pipe"],
  });
  const recent: string[] = [];
  const onData = (buf: Buffer) => {
    for (const line of buf.toString().split("\n")) {
      if (!line.trim()) continue;
      recent.push(line);
      if (recent.length > 30) recent.shift();
      opts.onLog?.(line);
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => { exited = true; resolve(); }));

  const close = async () => {
    if (exited || child.pid === undefined) return;
    try { process.kill(-child.pid, "SIGTERM"); } catch { /* already gone */ }
    const timer = setTimeout(() => { try { process.kill(-child.pid!, "SIGKILL"); } catch { /* gone */ } }, 5_000);
    await exit;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      return { name: "worker", url, close };
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  await close();
  throw new Error(
    `wrangler dev did not come up on ${url} ${exited ? "(it exited)" : "in time"}; its last output:\n  ${recent.slice(-12).join("\n  ")}`,
  );
}
