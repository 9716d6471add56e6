/**
 * One Node-RED process and its supervision: start and wait until the Admin
 * API answers, restart after a crash with backoff, and give up (state
 * `failed`, with the last words it printed) after a boot loop of quick exits.
 *
 * Node-RED runs detached (its own process group, output to a file in its
 * userDir), so it outlives a bridge that is killed or crashes: the traffic it
 * serves does not share the bridge's fate (issue 12). A restarted bridge
 * adopts it (runtimeRecord.ts says which process it is) instead of starting a
 * second one on the same port; an adopted Node-RED is not this process's
 * child, so its death is noticed by polling, not by an exit event. A graceful
 * driver close still stops it, and so does the driver's exit handler.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { BridgeError } from "../../errors.ts";
import type { InstanceState } from "../driver.ts";
import type { AdminApi } from "../nodeRedAdmin.ts";
import { fileSize, linesSince, LogFollower, openForBoot } from "./nodeRedLog.ts";
import { isRuntimeProcess, LOG_FILE, readRecord, reapGroup, removeRecord, scanRuntimeProcesses, signalRuntime, writeRecord } from "./runtimeRecord.ts";
import type { Stack } from "./stacks.ts";

const require = createRequire(import.meta.url);
/** The gate's journal of accepted MQTT work (flows/node-package/lib/workJournal.js). */
export const WORK_JOURNAL = "redforge-work.journal";
/** node-red's CLI entry, resolved from this project's dependency. */
export const NODE_RED_CLI = path.join(path.dirname(require.resolve("node-red/package.json")), "red.js");

/** How often start() asks whether Node-RED answers yet (was 150 ms). */
const READY_POLL_MS = 50;

export interface RestartPolicy {
  /** Exits within quickExitMs of starting, in a row, before giving up. */
  maxQuickExits: number;
  quickExitMs: number;
  backoffMs: number;
}

export interface ProcessPlan {
  instanceId: string;
  /** node-red's red.js (NODE_RED_CLI unless the bridge was told otherwise). */
  cli: string;
  userDir: string;
  settingsFile: string;
  host: string;
  port: number;
  env: Record<string, string>;
}

export type StateChange = (state: InstanceState, reason?: string) => void;

export class NodeRedProcess {
  private child?: ChildProcess;
  /** A Node-RED an earlier bridge started, adopted by this one: watched by polling. */
  private adopted?: { pid: number; startTicks?: string };
  private watchTimer?: NodeJS.Timeout;
  /** In flight while looking for a live Node-RED to adopt, so two callers never adopt or spawn twice. */
  private looking?: Promise<boolean>;
  private wanted = false;
  private quickExits = 0;
  private startedAt = 0;
  /** Where this boot's output starts in the log file: a boot loop is reported with what the last boot printed. */
  private bootOffset = 0;
  private restartTimer?: NodeJS.Timeout;
  private readonly follower: LogFollower;
  state: InstanceState = "stopped";
  /** Why the last state change happened (a crash, a boot loop), for health reports. */
  reason?: string;

  constructor(
    readonly plan: ProcessPlan,
    private readonly admin: AdminApi,
    private readonly policy: RestartPolicy,
    private readonly onChange: StateChange,
    private readonly log: (line: string) => void,
    private readonly readyTimeoutMs: number,
    /** The Node-RED stack this process runs (plan.cli is its red.js unless the driver was given one). */
    readonly stack: Stack,
  ) {
    this.follower = new LogFollower(this.logFile, (line) => this.log(line.trim()));
  }

  get base(): string {
    return `http://${this.plan.host}:${this.plan.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid ?? this.adopted?.pid;
  }

  /** Node-RED's stdout and stderr, appended across boots. */
  get logFile(): string {
    return path.join(this.plan.userDir, LOG_FILE);
  }

  /** Starts (adopting a live Node-RED of this slot if there is one) and resolves once the Admin API answers; rejects if it never does. */
  async start(): Promise<void> {
    this.wanted = true;
    this.quickExits = 0;
    // pid checked again after the look: two start()s at once share one look, and only the first may spawn;
    // one stopped or released meanwhile spawns nothing.
    if (!this.pid && !(await this.findLive()) && !this.pid && this.wanted) this.spawn();
    await this.waitReady();
  }

  /**
   * After a bridge restart: supervises this slot's Node-RED if one is still
   * alive (and answers on the slot's port within the ready timeout). Starts
   * nothing; true when it runs under this supervisor now.
   */
  async adopt(): Promise<boolean> {
    if (!this.pid && !(await this.findLive())) return false;
    this.wanted = true;
    return this.waitReady().then(() => true, () => false);
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    const child = this.child;
    const adopted = this.adopted;
    if (child) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => signalRuntime(child.pid!, "SIGKILL"), timeoutMs);
      await exited;
      clearTimeout(timer);
      reapGroup(child.pid!);
    } else if (adopted) {
      // Not our child: no exit event, so poll until it is gone.
      try { process.kill(adopted.pid, "SIGTERM"); } catch { /* already gone */ }
      if (!(await this.gone(adopted, timeoutMs))) {
        signalRuntime(adopted.pid, "SIGKILL");
        await this.gone(adopted, 5_000);
      }
      reapGroup(adopted.pid);
    }
    this.unwatch();
    this.adopted = undefined;
    this.follower.stop();
    await removeRecord(this.plan.userDir);
    // Stopped on purpose: what its gate had accepted and not finished is counted as stopped in flight,
    // never replayed by the next Node-RED on this userDir (a later deployment's green: another version).
    fs.rmSync(path.join(this.plan.userDir, WORK_JOURNAL), { force: true });
    this.set("stopped");
  }

  /**
   * Lets it run without this supervisor (a bridge restart or upgrade: the next
   * bridge adopts it): no restart, no watching, and nothing here keeps the
   * bridge's process alive for it.
   */
  release(): void {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    this.unwatch();
    this.follower.stop();
    this.child?.unref();
  }

  /** Last resort at bridge exit (synchronous): no Node-RED outlives a bridge that exits on its own. */
  killNow(): void {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    const pid = this.pid;
    if (pid) signalRuntime(pid, "SIGKILL");
  }

  private set(state: InstanceState, reason?: string): void {
    if (this.state === state && !reason) return;
    this.state = state;
    this.reason = reason;
    this.onChange(state, reason);
  }

  /**
   * A live Node-RED of this slot, adopted: the recorded one while it is still
   * that process on this slot's port, else (Linux) one found working in the
   * userDir, which a bridge killed before it recorded the pid leaves behind.
   * One that runs on another port than this slot's now is stopped.
   */
  private findLive(): Promise<boolean> {
    this.looking ??= (async () => {
      const { userDir, port } = this.plan;
      const record = await readRecord(userDir);
      if (record && (await isRuntimeProcess(record.pid, userDir, record.startTicks))) {
        if (record.port === port) return this.attach(record.pid, record.startTicks);
        this.log(`Node-RED pid ${record.pid} of an earlier bridge runs on port ${record.port}, this slot is on ${port} now: stopping it`);
        signalRuntime(record.pid, "SIGKILL");
        await this.gone({ pid: record.pid, ...(record.startTicks ? { startTicks: record.startTicks } : {}) }, 5_000);
      }
      const [pid, ...extra] = await scanRuntimeProcesses(userDir);
      for (const other of extra) signalRuntime(other, "SIGKILL");
      return pid ? this.attach(pid) : false;
    })().finally(() => { this.looking = undefined; });
    return this.looking;
  }

  private attach(pid: number, startTicks?: string): boolean {
    if (this.pid) return true;
    this.adopted = { pid, ...(startTicks ? { startTicks } : {}) };
    this.startedAt = Date.now();
    this.bootOffset = fileSize(this.logFile);
    this.follower.start(this.bootOffset);
    this.log(`adopted Node-RED pid ${pid} on port ${this.plan.port}, started by an earlier bridge`);
    if (!startTicks) void writeRecord(this.plan.userDir, pid, this.plan.port).catch(() => { /* the /proc scan finds it again */ });
    this.watchTimer = setInterval(() => void this.checkAdopted(), 1_000);
    // Watching never keeps the bridge alive; the adopted Node-RED does not need it to.
    this.watchTimer.unref();
    return true;
  }

  private async checkAdopted(): Promise<void> {
    const adopted = this.adopted;
    if (!adopted || (await isRuntimeProcess(adopted.pid, this.plan.userDir, adopted.startTicks))) return;
    if (this.adopted !== adopted) return;
    this.died(`was gone (pid ${adopted.pid}, adopted: its exit status is not visible to this bridge)`);
  }

  private unwatch(): void {
    clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /** Polls until the adopted process is gone; false at the deadline. */
  private async gone(proc: { pid: number; startTicks?: string }, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (await isRuntimeProcess(proc.pid, this.plan.userDir, proc.startTicks)) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  }

  private spawn(): void {
    this.startedAt = Date.now();
    this.set("starting");
    let opened: { fd: number; offset: number };
    try {
      opened = openForBoot(this.logFile);
    } catch (err) {
      // The userDir is gone or unwritable: a failed boot like any other (the restart policy gives up on a loop).
      setImmediate(() => { if (!this.pid) this.died(`could not be started: ${(err as Error).message}`); });
      return;
    }
    const { fd, offset } = opened;
    this.bootOffset = offset;
    let child: ChildProcess;
    try {
      // detached: its own process group, so a signal to the bridge's group (a terminal's Ctrl-C, a
      // kill of the bridge's group) does not reach it; the bridge stops it itself when it closes.
      child = spawn(process.execPath, [this.plan.cli, "--userDir", this.plan.userDir, "--port", String(this.plan.port), "--settings", this.plan.settingsFile], {
        cwd: this.plan.userDir, env: this.plan.env, stdio: ["ignore", fd, fd], detached: true,
      });
    } finally {
      fs.closeSync(fd);
    }
    this.child = child;
    this.follower.start(offset);
    const ended = (how: string) => { if (this.child === child) this.died(how); };
    child.once("exit", (code, signal) => ended(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.once("error", (err) => ended(`could not be started: ${err.message}`));
    if (child.pid) void writeRecord(this.plan.userDir, child.pid, this.plan.port).catch((err: unknown) => this.log(`cannot record Node-RED's pid: ${(err as Error).message}`));
  }

  /** The Node-RED this supervisor ran (child or adopted) is gone: restart with backoff, or give up after a boot loop. */
  private died(how: string): void {
    this.child = undefined;
    this.adopted = undefined;
    this.unwatch();
    this.follower.poll();
    void removeRecord(this.plan.userDir).catch(() => { /* a stale record is recognised as stale */ });
    if (!this.wanted) return;
    const quick = Date.now() - this.startedAt < this.policy.quickExitMs;
    // A crash after a good run starts a fresh count: only exits in a row that were all quick are a boot loop.
    this.quickExits = quick ? this.quickExits + 1 : 0;
    if (this.quickExits >= this.policy.maxQuickExits) {
      this.wanted = false;
      // The message, not the stack frames printed after it; what the last boot printed, not an earlier run.
      const lines = linesSince(this.logFile, this.bootOffset);
      const last = lines.filter((l) => !l.startsWith("at ") && /error/i.test(l)).pop() ?? lines.at(-1) ?? "no output";
      this.set("failed", `Node-RED ${how} ${this.quickExits} times within ${this.policy.quickExitMs / 1000} s of starting; giving up: ${last}`);
      return;
    }
    this.set("starting", `Node-RED ${how}; restarting`);
    this.restartTimer = setTimeout(() => {
      if (!this.wanted) return;
      this.spawn();
      this.waitReady().catch(() => { /* the exit handler reports what happened */ });
    }, this.policy.backoffMs * Math.max(1, this.quickExits));
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.wanted) {
        throw new BridgeError("start_failed", this.state === "failed" ? `Node-RED failed to start (boot loop): ${this.reason ?? "no reason given"}` : "stopped while starting");
      }
      if (this.pid && (await this.admin.answers(this.base))) {
        this.set("running");
        return;
      }
      // Until it listens, each probe is a refused connection (cheap): a short interval, because
      // after a host restart the deployment's work waits for this answer.
      await new Promise((r) => setTimeout(r, READY_POLL_MS));
    }
    this.set("failed", `Node-RED did not answer on ${this.base} within ${this.readyTimeoutMs / 1000} s`);
    this.killNow();
    throw new BridgeError("start_timeout", `Node-RED did not answer on ${this.base} within ${this.readyTimeoutMs / 1000} s`);
  }
}
