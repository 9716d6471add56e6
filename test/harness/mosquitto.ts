/**
 * The machine's Mosquitto on a port of its own, with a queue limit for offline persistent sessions
 * (`max_queued_messages`; 0: none): what the bridge's start-up broker check (bridge/brokerCheck.ts)
 * is about. `MOSQUITTO` is undefined where the binary is missing; tests skip then.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, isReachable } from "../../dev/ports.ts";
import { until } from "./eventually.ts";

export const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p));

export interface RunningMosquitto {
  url: string;
  close(): Promise<void>;
}

/** `port`: a given one (a broker restarted with another configuration on the same address). */
export async function startMosquitto(maxQueued: number, opts: { port?: number } = {}): Promise<RunningMosquitto> {
  if (!MOSQUITTO) throw new Error("no mosquitto binary on this machine");
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-mosquitto-"));
  const port = opts.port ?? await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  await fs.writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages ${maxQueued}\n`);
  const child: ChildProcess = spawn(MOSQUITTO, ["-c", conf], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Resolves once the process is gone, so the port is free for a broker started after it.
  const close = async () => { if (child.exitCode === null) child.kill("SIGTERM"); await exited; await fs.rm(dir, { recursive: true, force: true }); };
  try {
    await until(`mosquitto on ${port}`, () => isReachable(port, "127.0.0.1"), { timeoutMs: 20_000, failIf: () => (child.exitCode !== null ? `mosquitto exited ${child.exitCode}` : undefined) });
  } catch (err) {
    await close();
    throw err;
  }
  return { url: `mqtt://127.0.0.1:${port}`, close };
}
