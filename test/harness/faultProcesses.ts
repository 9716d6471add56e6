/**
 * The processes a fault-injection run starts and kills: the bridge as an
 * operator runs it (the real CLI, `bridge/bin.mjs`, its own process group,
 * its output in a file that outlives it), everything a bridge started (found
 * by its state dir, since Node-REDs and data planes need not share its
 * process group), and a CPU hog.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "../../dev/config.ts";
import { until } from "./eventually.ts";

export interface BridgeCliOptions {
  clusterId: string;
  api: string;
  secretFile: string;
  stateDir: string;
  mqttUrl: string;
  nodePackage: string;
  /** Every start of this bridge appends here. */
  logFile: string;
  /** More CLI arguments (e.g. --max-hold-seconds). */
  extraArgs?: string[];
}

/** One `redforge-bridge --driver process` child; `start()` again after a kill is a restart on the same state dir. */
export class BridgeProcess {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  readonly starts: number[] = [];

  constructor(readonly o: BridgeCliOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const logOffset = fs.existsSync(this.o.logFile) ? fs.statSync(this.o.logFile).size : 0;
    fs.appendFileSync(this.o.logFile, `\n===== ${new Date().toISOString()} harness: bridge start #${this.starts.length + 1} =====\n`);
    const out = fs.openSync(this.o.logFile, "a");
    const child = spawn(process.execPath, [
      path.join(ROOT, "bridge/bin.mjs"), "--cluster", this.o.clusterId, "--api", this.o.api, "--secret-file", this.o.secretFile,
      "--driver", "process", "--state-dir", this.o.stateDir, "--mqtt-url", this.o.mqttUrl, "--node-package", this.o.nodePackage,
      ...(this.o.extraArgs ?? []),
    ], { cwd: ROOT, env: { ...process.env }, detached: true, stdio: ["ignore", out, out] });
    fs.closeSync(out);
    this.child = child;
    this.starts.push(Date.now());
    this.exited = new Promise((resolve) => { child.once("exit", () => resolve()); child.once("error", () => resolve()); });
    let gone = false;
    void this.exited.then(() => { gone = true; });
    await until("the bridge's link to the control plane", () => this.logSince(logOffset).includes("link: connected to"), {
      timeoutMs: 90_000, intervalMs: 100, failIf: () => (gone ? "the bridge exited" : undefined), explain: () => this.tail(20),
    });
  }

  /**
   * The crash: SIGKILL to the bridge's whole process group (it was spawned detached, so the group is its
   * own), as issue 12 states the fault. What it started detached by design (the data plane, every
   * Node-RED: their own groups) lives on; anything it left in its group dies with it.
   */
  async kill9(): Promise<void> {
    const pid = this.child?.pid;
    if (!pid) return;
    try { process.kill(-pid, "SIGKILL"); } catch {
      try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
    }
    await this.exited;
  }

  /** A clean stop (SIGTERM, as systemd does), SIGKILL after `graceMs`. */
  async stop(graceMs = 35_000): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    try { process.kill(child.pid, "SIGTERM"); } catch { return; }
    const timer = setTimeout(() => { try { process.kill(child.pid!, "SIGKILL"); } catch { /* gone */ } }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  log(): string {
    return fs.existsSync(this.o.logFile) ? fs.readFileSync(this.o.logFile, "utf8") : "";
  }

  private logSince(offset: number): string {
    return this.log().slice(offset);
  }

  tail(lines: number): string {
    return this.log().trimEnd().split("\n").slice(-lines).join("\n");
  }
}

export interface OsProcess { pid: number; args: string }

/**
 * Every process whose command line or working directory is under `dir` (not this process): what
 * `ps -eo pid,args` shows, read from /proc directly, since forking ps on a loaded machine took
 * seconds, long enough for a kill meant for the drain to land in the switch.
 */
export function processesUnder(dir: string): OsProcess[] {
  const found: OsProcess[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let args = "";
    let cwd = "";
    try { args = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim(); } catch { continue; }
    try { cwd = fs.readlinkSync(`/proc/${entry}/cwd`); } catch { /* gone, or not ours to read */ }
    if (args.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`)) found.push({ pid: Number(entry), args });
  }
  return found;
}

/** Node-RED processes working exactly in `userDir` (their /proc cwd; "node-red" or red.js), zombies left out: what runtimeRecord.ts would find. */
export async function nodeRedsIn(userDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.promises.readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cwd = await fs.promises.readlink(`/proc/${entry}/cwd`).catch(() => "");
    if (cwd !== userDir) continue;
    const cmd = await fs.promises.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const stat = await fs.promises.readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const zombie = /^[ZX]$/.test(stat.charAt(stat.lastIndexOf(")") + 2));
    if (!zombie && (cmd.startsWith("node-red") || cmd.includes("red.js"))) pids.push(Number(entry));
  }
  return pids;
}

/** kill -9 of everything `processesUnder(dir)` finds, as a host or container restart would; returns what it killed. */
export async function killEverythingUnder(dir: string): Promise<OsProcess[]> {
  const victims = processesUnder(dir);
  for (const p of victims) {
    try { process.kill(p.pid, "SIGKILL"); } catch { /* already gone */ }
  }
  await until(`the processes under ${dir} to be gone`, () => victims.every((p) => !alive(p.pid)), { timeoutMs: 10_000 });
  return victims;
}

function alive(pid: number): boolean {
  try {
    // A zombie (killed, not yet reaped by its new parent) has died all the same.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** `cores` child processes that spin until stopped: a machine whose CPUs are all busy. */
export function startCpuHog(cores = 2): { stop(): void; pids: number[] } {
  const hogs = Array.from({ length: cores }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore", detached: true }));
  const stop = () => { for (const h of hogs) { try { process.kill(h.pid!, "SIGKILL"); } catch { /* gone */ } } };
  process.once("exit", stop);
  return { stop, pids: hogs.map((h) => h.pid!) };
}
