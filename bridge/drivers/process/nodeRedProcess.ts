/**
 * One Node-RED child process and its supervision: start and wait until the
 * Admin API answers, restart after a crash with backoff, and give up (state
 * `failed`, with the last words it printed) after a boot loop of quick exits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { BridgeError } from "../../errors.ts";
import type { InstanceState } from "../driver.ts";
import type { AdminApi } from "../nodeRedAdmin.ts";
import type { Stack } from "./stacks.ts";

const require = createRequire(import.meta.url);
/** node-red's CLI entry, resolved from this project's dependency. */
export const NODE_RED_CLI = path.join(path.dirname(require.resolve("node-red/package.json")), "red.js");

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
  private wanted = false;
  private quickExits = 0;
  private startedAt = 0;
  private restartTimer?: NodeJS.Timeout;
  private lastLines: string[] = [];
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
  ) {}

  get base(): string {
    return `http://${this.plan.host}:${this.plan.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts (if not running) and resolves once the Admin API answers; rejects if it never does. */
  async start(): Promise<void> {
    this.wanted = true;
    this.quickExits = 0;
    if (!this.child) this.spawn();
    await this.waitReady();
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (child) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      await exited;
      clearTimeout(timer);
    }
    this.set("stopped");
  }

  /** Last resort at bridge exit: no Node-RED outlives its bridge. */
  killNow(): void {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    this.child?.kill("SIGKILL");
  }

  private set(state: InstanceState, reason?: string): void {
    if (this.state === state && !reason) return;
    this.state = state;
    this.reason = reason;
    this.onChange(state, reason);
  }

  private spawn(): void {
    this.startedAt = Date.now();
    // A boot loop is reported with what the last boot printed, not an earlier run's lines.
    this.lastLines = [];
    this.set("starting");
    const child = spawn(process.execPath, [this.plan.cli, "--userDir", this.plan.userDir, "--port", String(this.plan.port), "--settings", this.plan.settingsFile], {
      cwd: this.plan.userDir, env: this.plan.env, stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const onData = (buf: Buffer) => {
      for (const line of buf.toString().split("\n")) {
        if (!line.trim()) continue;
        this.lastLines.push(line.trim());
        if (this.lastLines.length > 30) this.lastLines.shift();
        this.log(line);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code, signal) => this.exited(child, code, signal));
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    if (!this.wanted) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const quick = Date.now() - this.startedAt < this.policy.quickExitMs;
    // A crash after a good run starts a fresh count: only exits in a row that were all quick are a boot loop.
    this.quickExits = quick ? this.quickExits + 1 : 0;
    if (this.quickExits >= this.policy.maxQuickExits) {
      this.wanted = false;
      // The message, not the stack frames printed after it.
      const last = this.lastLines.filter((l) => !l.startsWith("at ") && /error/i.test(l)).pop() ?? this.lastLines.at(-1) ?? "no output";
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
      if (this.child && (await this.admin.answers(this.base))) {
        this.set("running");
        return;
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    this.set("failed", `Node-RED did not answer on ${this.base} within ${this.readyTimeoutMs / 1000} s`);
    this.killNow();
    throw new BridgeError("start_timeout", `Node-RED did not answer on ${this.base} within ${this.readyTimeoutMs / 1000} s`);
  }
}
