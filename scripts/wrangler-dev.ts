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
  /** Aborting stops waiting for readiness and takes wrangler down (Ctrl-C during start-up). */
  signal?: AbortSignal;
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
  let exitedWith = "";
  const exit = new Promise<void>((resolve) => {
    child.once("exit", (code, sig) => { exited = true; exitedWith = sig ?? `code ${code}`; resolve(); });
    // e.g. node_modules/.bin/wrangler missing: no "exit" follows, and an unhandled "error" would crash us.
    child.once("error", (err) => { recent.push(String(err)); exited = true; exitedWith = "a spawn error"; resolve(); });
  });
  const signalGroup = (sig: NodeJS.Signals) => {
    try { process.kill(-child.pid!, sig); } catch { /* already gone */ }
  };
  // Detached means our own death no longer reaches workerd: if this process
  // exits without close() (second Ctrl-C, a crash), take the group down with it.
  const onParentExit = () => signalGroup("SIGTERM");
  process.on("exit", onParentExit);
  void exit.then(() => process.off("exit", onParentExit));

  const close = async () => {
    if (child.pid === undefined) return;
    // Even after the wrangler wrapper has exited, workerd may linger in the group.
    signalGroup("SIGTERM");
    if (exited) {
      // The wrapper died on its own (e.g. SIGKILL): workerd in its group must not keep the port.
      await new Promise((r) => setTimeout(r, 500));
      signalGroup("SIGKILL");
      return;
    }
    const timer = setTimeout(() => signalGroup("SIGKILL"), 5_000);
    await exit;
    clearTimeout(timer);
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  while (Date.now() < deadline && !exited && !opts.signal?.aborted) {
    try {
      const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      return { name: "worker", url, close, pid: child.pid, exited: exit.then(() => exitedWith) };
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  // Read before close(), which makes every run look like it exited.
  const why = exited ? `(it exited with ${exitedWith})` : `within ${((opts.readyTimeoutMs ?? 90_000) / 1000).toFixed(1)} s`;
  await close();
  if (opts.signal?.aborted) throw opts.signal.reason;
  throw new Error(
    `wrangler dev did not come up on ${url} ${why}; its last output:\n  ${recent.slice(-12).join("\n  ") || "(none)"}`,
  );
}
