/**
 * The `process` driver: each instance is a real Node-RED child process on
 * this host (edge boxes, local development) with its own userDir, port and
 * generated settings.js. Instance files live in <stateDir>/<instanceId>, so a
 * restarted bridge can start an instance it created before.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { BridgeError } from "../../errors.ts";
import { DataPlaneClient } from "../../dataplane/client.ts";
import type { HttpRoute, MqttRoute } from "../../routing/fronts.ts";
import type { BlueGreenDriver, ContextStoreTarget, Driver, InstanceEndpoints, InstanceHealth, InstanceSpec, StatusListener } from "../driver.ts";
import { AdminApi } from "../nodeRedAdmin.ts";
import { installNodePackage } from "../nodePackageInstall.ts";
import { LEGACY_STACK, type SupportedStack } from "../../../protocol/stacks.ts";
import { persistentAdminToken } from "./adminToken.ts";
import { slotRuns } from "./runtimeRecord.ts";
import { NodeRedProcess, type RestartPolicy } from "./nodeRedProcess.ts";
import { PortAllocator, type PortRange } from "./ports.ts";
import { ENV_ADMIN_TOKEN, ENV_CREDENTIAL_SECRET, renderProcessSettings } from "./settings.ts";
import { ENV_CONTEXT_TOKEN, ENV_CONTEXT_URL } from "../settingsCommon.ts";
import { installedStacks, reportedStacks, resolveStack, type Stack } from "./stacks.ts";
import { parseRuntime, readSaved, runtimeIdOf, stackOfSlot, writeSaved, type SavedInstance, type Slot } from "./state.ts";
import { errorMessage } from "../../log.ts";

export { runtimeIdOf } from "./state.ts";

export interface ProcessDriverOptions {
  /** Each instance's userDir is <stateDir>/<instanceId>. */
  stateDir: string;
  /** Node package tarballs (`npm pack` output) loaded into every instance: the RedForge package and any others. */
  nodePackages?: string[];
  host?: string;
  /** Inclusive range for Node-RED and front ports; any free port when absent. */
  portRange?: PortRange;
  /**
   * One red.js for every stack (a test hook, and how bridges ran before stacks);
   * each stack's own red.js when absent (see stacks.ts).
   */
  nodeRedBin?: string;
  /** The Node-RED stacks this driver may start; the ones installed beside the bridge when absent. */
  stacks?: Stack[];
  /**
   * The static bearer token the instances' Admin API accepts; when absent, the
   * one kept in <stateDir>/admin-token (made once), so Node-REDs that outlive a
   * bridge still accept the next one.
   */
  adminToken?: string;
  restart?: Partial<RestartPolicy>;
  readyTimeoutMs?: number;
  log?: (instanceId: string, line: string) => void;
  /** The cluster's MQTT bus: instances' gates and the MQTT front door use it; MQTT routing is off without it. */
  mqttUrl?: string;
  /** fsync each held MQTT message the data plane spools (survives a power cut; one disk flush per message). */
  spoolFsync?: boolean;
  /** How long the data plane keeps a hold once this bridge is gone (dataplane/lease.ts; default 1 s). */
  holdLeaseMs?: number;
  /** Upstash-REST Redis for the `shared` context store both colours use (docs/agents.md); off when absent. */
  contextStore?: ContextStoreTarget;
}

const DEFAULT_RESTART: RestartPolicy = { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 500 };
// Node-RED runs with only these from the bridge's environment: the bridge's own secrets stay home.
const PASSED_ENV = ["PATH", "LANG", "TZ", "NODE_EXTRA_CA_CERTS"];
/** Node's on-disk compile cache for every Node-RED this driver starts (<stateDir>/.compile-cache; no instance.json, so never an instance). */
export const COMPILE_CACHE_DIR = ".compile-cache";

/**
 * NODE_COMPILE_CACHE for the Node-REDs (they run on process.execPath, this Node): Node ≥ 22.1 keeps
 * the V8 code of every module it compiled there and reuses it at the next start, so a restart does
 * not compile Node-RED again (bench/nodered-start, docs/bridge.md "Start-up time"). Older Nodes do
 * not know the variable: nothing is set for them.
 */
export function compileCacheEnv(stateDir: string, nodeVersion: string = process.versions.node): Record<string, string> {
  const [major = 0, minor = 0] = nodeVersion.replace(/^v/, "").split(".").map((n) => Number.parseInt(n, 10) || 0);
  return major > 22 || (major === 22 && minor >= 1) ? { NODE_COMPILE_CACHE: path.join(stateDir, COMPILE_CACHE_DIR) } : {};
}

export class ProcessDriver implements Driver, BlueGreenDriver {
  readonly kind = "process" as const;
  /** By runtime id (see runtimeIdOf). */
  private readonly processes = new Map<string, NodeRedProcess>();
  /** Each instance's HTTP front (its stable URL) and, with a bus, its MQTT front. */
  private readonly fronts: DataPlaneClient;
  /** Serving slot per instance id. */
  private readonly serving = new Map<string, Slot>();
  private readonly listeners: StatusListener[] = [];
  private readonly admin: AdminApi;
  private readonly adminToken: string;
  /** Every port (create, green, a moved front) comes from here, one pick at a time. */
  private readonly ports: PortAllocator;
  private readonly host: string;
  private readonly restart: RestartPolicy;
  private readonly stackList: Stack[];
  private readonly onExit = () => { for (const p of this.processes.values()) p.killNow(); };
  /** find() in flight per instance: two commands after a restart rebuild (and adopt) an instance once. */
  private readonly finding = new Map<string, Promise<NodeRedProcess>>();
  /** instance.json writes per instance, one after another (each is a read-modify-write). */
  private readonly saving = new Map<string, Promise<unknown>>();
  /** Background retries of instances whose resume failed (retryResume). */
  private readonly resumeRetries = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly opts: ProcessDriverOptions) {
    this.host = opts.host ?? "127.0.0.1";
    this.restart = { ...DEFAULT_RESTART, ...opts.restart };
    this.stackList = opts.stacks ?? installedStacks();
    this.adminToken = opts.adminToken ?? persistentAdminToken(opts.stateDir);
    this.admin = new AdminApi(this.adminToken, { deployMs: 30_000, probeMs: 3_000 });
    // The fronts run in the state dir's data plane process, so a bridge crash or restart does not interrupt traffic.
    this.fronts = new DataPlaneClient({ stateDir: opts.stateDir, host: this.host, log: (id, line) => this.log(id, line), ...(opts.mqttUrl ? { mqttUrl: opts.mqttUrl } : {}), ...(opts.spoolFsync ? { spoolFsync: true } : {}), ...(opts.holdLeaseMs !== undefined ? { holdLeaseMs: opts.holdLeaseMs } : {}) });
    this.ports = new PortAllocator({ host: this.host, stateDir: opts.stateDir, ...(opts.portRange ? { range: opts.portRange } : {}) });
    process.on("exit", this.onExit);
  }

  private dir(id: string): string {
    return path.join(this.opts.stateDir, id);
  }

  /** A runtime's userDir: slot a is the instance dir (as before blue-green existed), slot b inside it. */
  private slotDir(instanceId: string, slot: Slot): string {
    return slot === "a" ? this.dir(instanceId) : path.join(this.dir(instanceId), "slot-b");
  }

  private servingRuntime(instanceId: string): string {
    return runtimeIdOf(instanceId, this.serving.get(instanceId) ?? "a");
  }

  private log(id: string, line: string): void {
    this.opts.log?.(id, line);
  }

  /** The saved instance, or not_found: the one answer for an instance this bridge never had. */
  private async savedOf(id: string): Promise<SavedInstance> {
    const saved = await readSaved(this.dir(id));
    if (!saved) throw new BridgeError("not_found", `instance ${id} is not known to this bridge`);
    return saved;
  }

  async create(spec: InstanceSpec): Promise<{ endpoints: InstanceEndpoints; stack: SupportedStack }> {
    const existing = this.processes.get(this.servingRuntime(spec.id));
    if (existing) {
      // A redelivered create: converge on "running" instead of starting a second copy.
      await this.save(spec.id, { desired: "running" });
      await existing.start();
      return { endpoints: this.endpoints(spec.id, existing), stack: stackInfo(existing.stack) };
    }
    // An unsupported stack stops here, before anything is written.
    const stack = resolveStack(this.stackList, spec.stack ?? LEGACY_STACK);
    const dir = this.dir(spec.id);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    // A damaged instance.json stops here (state_corrupt), before anything is overwritten.
    const saved = await readSaved(dir);
    const [port, frontPort] = (await this.ports.claim([saved?.port, saved?.frontPort])) as [number, number];
    try {
      await writeSaved(dir, { spec: { ...spec, stack: stack.id }, port, frontPort, slotStacks: { a: stack.id }, desired: "running" });
    } finally {
      // From here instance.json holds them for savedPorts(); the claim only covered the gap.
      this.ports.release([port, frontPort]);
    }
    // settings.js is CommonJS: without its own package.json, an enclosing "type": "module"
    // package (this repository, for one) makes Node load it as ESM and Node-RED boot-loops.
    const pkg = path.join(dir, "package.json");
    if (!(await exists(pkg))) await fs.writeFile(pkg, JSON.stringify({ name: `redforge-instance-${spec.name}`, private: true }));
    await fs.writeFile(path.join(dir, "settings.js"), renderProcessSettings({ host: this.host, port }));
    const flowFile = path.join(dir, "flows.json");
    if (!(await exists(flowFile))) await fs.writeFile(flowFile, JSON.stringify(spec.flows));
    // instance.json was just rewritten without a serving slot: a (re)created instance serves from slot a.
    this.serving.set(spec.id, "a");
    const proc = await this.supervise(spec, port, frontPort, stack);
    await proc.start();
    // POST /nodes installs into the userDir, so later starts load the packages from disk.
    await this.installPackages(spec.id, proc);
    return { endpoints: this.endpoints(spec.id, proc), stack: stackInfo(stack) };
  }

  /** What the bridge's hello reports. */
  supportedStacks(): SupportedStack[] {
    return reportedStacks(this.stackList);
  }

  private endpoints(id: string, proc: NodeRedProcess): InstanceEndpoints {
    const front = this.fronts.http(id);
    return { admin: proc.base, ...(front ? { front: front.url } : {}) };
  }

  /** One runtime's supervisor; status changes are reported only while it serves (green's are the deployment's business). */
  private runtime(spec: InstanceSpec, slot: Slot, port: number, stack: Stack): NodeRedProcess {
    const runtimeId = runtimeIdOf(spec.id, slot);
    const userDir = this.slotDir(spec.id, slot);
    const env: Record<string, string> = {};
    for (const k of PASSED_ENV) if (process.env[k]) env[k] = process.env[k]!;
    Object.assign(env, compileCacheEnv(this.opts.stateDir), spec.env, {
      HOME: userDir, NODE_ENV: "production",
      [ENV_ADMIN_TOKEN]: this.adminToken, [ENV_CREDENTIAL_SECRET]: spec.credentialSecret,
      REDFORGE_INSTANCE_ID: spec.id, REDFORGE_RUNTIME_ID: runtimeId, REDFORGE_STACK: stack.id, REDFORGE_NODE_RED_VERSION: stack.version,
      ...(this.opts.mqttUrl ? { REDFORGE_MQTT_URL: this.opts.mqttUrl } : {}),
      ...(this.opts.contextStore ? { [ENV_CONTEXT_URL]: this.opts.contextStore.url, [ENV_CONTEXT_TOKEN]: this.opts.contextStore.token } : {}),
    });
    const proc = new NodeRedProcess(
      { instanceId: runtimeId, cli: this.opts.nodeRedBin ?? stack.cli, userDir, settingsFile: path.join(userDir, "settings.js"), host: this.host, port, env },
      this.admin, this.restart,
      (state, reason) => {
        if (this.servingRuntime(spec.id) !== runtimeId) return this.log(spec.id, `runtime ${runtimeId}: ${state}${reason ? ` (${reason})` : ""}`);
        for (const l of this.listeners) l(spec.id, state, reason);
      },
      (line) => this.log(spec.id, slot === "a" ? line : `[slot b] ${line}`),
      this.opts.readyTimeoutMs ?? 60_000,
      stack,
    );
    this.processes.set(runtimeId, proc);
    return proc;
  }

  private async supervise(spec: InstanceSpec, port: number, frontPort: number, stack: Stack): Promise<NodeRedProcess> {
    const proc = this.runtime(spec, this.serving.get(spec.id) ?? "a", port, stack);
    await this.startFronts(spec, port, frontPort, proc);
    return proc;
  }

  /** The instance's HTTP front on its saved port (and MQTT front with a bus), pointed at `proc`. */
  private async startFronts(spec: InstanceSpec, port: number, frontPort: number, proc: NodeRedProcess): Promise<void> {
    await this.fronts.ensureMqtt(spec.id, () => proc.plan.instanceId);
    // The saved front port, unless something took it meanwhile: then the front URL changes, and instance.json says so.
    const claimed: number[] = [];
    try {
      const { moved } = await this.fronts.ensureHttp(spec.id, frontPort, proc.base, async () => {
        claimed.push(...(await this.ports.claim([undefined])));
        return claimed[0]!;
      });
      if (moved !== undefined) {
        const saved = await readSaved(this.dir(spec.id));
        await writeSaved(this.dir(spec.id), { ...(saved ?? { spec, port }), frontPort: moved });
      }
    } finally {
      this.ports.release(claimed);
    }
  }

  /**
   * The serving runtime's supervisor, or one rebuilt from what an earlier
   * bridge saved on disk, adopting the Node-REDs of the instance that still
   * run (see adoptSlots).
   */
  private find(id: string): Promise<NodeRedProcess> {
    const known = this.processes.get(this.servingRuntime(id));
    if (known) return Promise.resolve(known);
    let finding = this.finding.get(id);
    if (!finding) {
      finding = this.rebuild(id).finally(() => this.finding.delete(id));
      this.finding.set(id, finding);
    }
    return finding;
  }

  private async rebuild(id: string): Promise<NodeRedProcess> {
    const saved = await this.savedOf(id);
    this.serving.set(id, saved.serving ?? "a");
    const slot = saved.serving ?? "a";
    const port = slot === "b" ? saved.portB! : saved.port;
    try {
      const proc = await this.supervise(saved.spec, port, saved.frontPort, resolveStack(this.stackList, stackOfSlot(saved, slot)));
      await this.adoptSlots(id, saved);
      return proc;
    } catch (err) {
      this.forgetHalfBuilt(id);
      throw err;
    }
  }

  /**
   * A rebuild that failed (its fronts could not be set up: the data plane died under the call)
   * leaves nothing registered, so the next command or resume attempt rebuilds from disk. A
   * supervisor left behind was never started, and every later step of the instance's deployment
   * talked to its port, where nothing listened ("fetch failed", issue 12 (g), session 7).
   * Node-REDs adopted meanwhile keep running (released, not stopped): the next rebuild adopts them.
   */
  private forgetHalfBuilt(id: string): void {
    for (const slot of ["a", "b"] as const) {
      const runtimeId = runtimeIdOf(id, slot);
      this.processes.get(runtimeId)?.release();
      this.processes.delete(runtimeId);
    }
    this.serving.delete(id);
  }

  /**
   * After a bridge restart: supervises each slot's Node-RED that still runs
   * (started by an earlier bridge) instead of starting a second one on its
   * port. Both slots: mid-deployment, green runs too and the next step needs
   * it (runtimeBase). A non-serving slot is kept only when it runs, as before
   * a restart (runtimeBase answers for running runtimes).
   */
  private async adoptSlots(id: string, saved: SavedInstance): Promise<void> {
    const servingSlot = saved.serving ?? "a";
    await Promise.all((["a", "b"] as const).map(async (slot) => {
      const port = slot === "a" ? saved.port : saved.portB;
      const runtimeId = runtimeIdOf(id, slot);
      if (port === undefined || this.processes.get(runtimeId)?.pid) return;
      let proc = this.processes.get(runtimeId);
      if (!proc) {
        // A green on a stack this bridge no longer has is left alone here; the next prepare replaces it.
        const stack = (() => { try { return resolveStack(this.stackList, stackOfSlot(saved, slot)); } catch { return undefined; } })();
        if (!stack) return;
        proc = this.runtime(saved.spec, slot, port, stack);
      }
      const adopted = await proc.adopt();
      if (!adopted && slot !== servingSlot && this.processes.get(runtimeId) === proc) this.processes.delete(runtimeId);
    }));
  }

  /**
   * Bridge start: every saved instance converges on its desired state. A
   * Node-RED that still runs (the bridge alone was killed) is adopted, green
   * too; an instance that should run and does not (its Node-REDs died with
   * the bridge: a container or host restart) is started again; one that
   * should be stopped is stopped. The fronts come up with what runs (find);
   * a stopped instance (a destroyed one whose data was kept, too) gets none
   * until a command asks for it. Never throws: what failed is in the report
   * (and the instance's status).
   */
  async resume(): Promise<ResumeReport> {
    const entries = await fs.readdir(this.opts.stateDir, { withFileTypes: true }).catch(() => []);
    const report: ResumeReport = { adopted: [], started: [], stopped: [], failed: [] };
    await inBatches(entries.filter((e) => e.isDirectory()).map((e) => e.name), 4, (id) => this.resumeOne(id, report));
    for (const { instanceId } of report.failed) this.retryResume(instanceId, 1);
    return report;
  }

  /**
   * An instance whose resume failed is tried again in the background (1 s, 2 s, 4 s … 30 s apart)
   * until it resumes or the driver closes: an instance that should run must not stay down until a
   * person or a command happens to touch it.
   */
  private retryResume(id: string, attempt: number): void {
    if (this.closed || this.resumeRetries.has(id)) return;
    const timer = setTimeout(() => {
      void (async () => {
        const report: ResumeReport = { adopted: [], started: [], stopped: [], failed: [] };
        await this.resumeOne(id, report);
        this.resumeRetries.delete(id);
        if (report.failed.length) return this.retryResume(id, attempt + 1);
        this.log(id, `resumed on retry ${attempt}: ${report.adopted.length} runtime(s) adopted, ${report.started.length} started again`);
      })();
    }, Math.min(30_000, 1_000 * 2 ** (attempt - 1)));
    timer.unref();
    this.resumeRetries.set(id, timer);
  }

  /** resume() for one instance directory: what it did goes into `report`; never throws. */
  private async resumeOne(id: string, report: ResumeReport): Promise<void> {
    try {
      const saved = await readSaved(this.dir(id));
      if (!saved) return;
      const runs = (await Promise.all((["a", "b"] as const).map((slot) => slotRuns(this.slotDir(id, slot))))).some(Boolean);
      if (saved.desired === "stopped") {
        if (runs && (await this.stopLeftovers(id, saved))) report.stopped.push(id);
        return;
      }
      // From before desired states: what runs is adopted, what does not is left as it was.
      if (saved.desired === undefined && !runs) return;
      const proc = await this.find(id);
      for (const slot of ["a", "b"] as const) if (this.processes.get(runtimeIdOf(id, slot))?.state === "running") report.adopted.push(runtimeIdOf(id, slot));
      // Both runtimes of a deployment at once, not one after the other: after a host restart held work
      // waits for the deployment to switch, which needs both (bench/zero-loss row (g): the serial
      // starts were ~2 s of its switch window).
      const serving = saved.desired === "running" && proc.state !== "running"
        ? proc.start().then(() => { report.started.push(proc.plan.instanceId); })
        : Promise.resolve();
      const idle = saved.desired === "running" && saved.idleRuns
        ? this.startIdle(id, saved).then((runtimeId) => { if (runtimeId) report.started.push(runtimeId); }, (err: unknown) => {
          report.failed.push({ instanceId: id, error: `the deployment's other runtime: ${errorMessage(err)}` });
        })
        : Promise.resolve();
      const [servingDone] = await Promise.allSettled([serving, idle]);
      if (servingDone.status === "rejected") throw servingDone.reason;
    } catch (err) {
      report.failed.push({ instanceId: id, error: errorMessage(err) });
      this.log(id, `not resumed after the bridge restart: ${errorMessage(err)}`);
    }
  }

  /**
   * A deployment's other runtime (green, or blue kept warm after the switch)
   * that died with the bridge: started again from its userDir, where its flows
   * and node packages are, so the deployment's next step finds it instead of
   * rolling back a healthy green. Its runtime id when it was started.
   */
  private async startIdle(id: string, saved: SavedInstance): Promise<string | undefined> {
    const slot: Slot = (saved.serving ?? "a") === "a" ? "b" : "a";
    const port = slot === "a" ? saved.port : saved.portB;
    const runtimeId = runtimeIdOf(id, slot);
    if (port === undefined || this.processes.get(runtimeId)?.state === "running") return undefined;
    const proc = this.processes.get(runtimeId) ?? this.runtime(saved.spec, slot, port, resolveStack(this.stackList, stackOfSlot(saved, slot)));
    try {
      await proc.start();
    } catch (err) {
      this.processes.delete(runtimeId);
      throw err;
    }
    return runtimeId;
  }

  /**
   * An instance saved as stopped whose Node-RED runs anyway (the bridge was
   * killed between saving "stopped" and stopping it): finishes what was asked,
   * without fronts. True when something was stopped.
   */
  private async stopLeftovers(id: string, saved: SavedInstance): Promise<boolean> {
    await this.adoptSlots(id, saved);
    let stopped = false;
    for (const slot of ["a", "b"] as const) {
      const runtimeId = runtimeIdOf(id, slot);
      const proc = this.processes.get(runtimeId);
      if (proc?.pid) {
        await proc.stop();
        stopped = true;
      }
      this.processes.delete(runtimeId);
    }
    return stopped;
  }

  async start(id: string): Promise<void> {
    // Saved first: a bridge restarted from here on starts it again (resume).
    await this.save(id, { desired: "running" });
    await (await this.find(id)).start();
  }

  async stop(id: string): Promise<void> {
    // Saved first: a bridge killed while stopping it comes back with it stopped, as asked.
    if (!(await readSaved(this.dir(id)))) return;
    await this.save(id, { desired: "stopped" });
    // find(): after a bridge restart, the Node-RED an earlier bridge started is adopted, then stopped.
    await (await this.find(id)).stop();
  }

  async destroy(id: string, opts: { deleteData?: boolean } = {}): Promise<void> {
    const saved = await readSaved(this.dir(id)).catch(() => undefined);
    if (saved) {
      // Kept data must not come back to life at the next bridge start; and Node-REDs an earlier bridge started are stopped too.
      if (!opts.deleteData) await this.save(id, { desired: "stopped" });
      await this.adoptSlots(id, saved);
    }
    for (const slot of ["a", "b"] as const) {
      const runtimeId = runtimeIdOf(id, slot);
      await this.processes.get(runtimeId)?.stop();
      this.processes.delete(runtimeId);
    }
    await this.fronts.drop(id);
    this.serving.delete(id);
    // Retried: a stopped Node-RED's last writes (its runtime record, a journal) can land while the tree is removed
    // (ENOTEMPTY seen in a clean-clone CI run); fs.rm retries ENOTEMPTY/EBUSY itself with these options.
    if (opts.deleteData) await fs.rm(this.dir(id), { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }

  async scale(id: string, replicas: number): Promise<void> {
    if (replicas === 0) return this.stop(id);
    if (replicas === 1) return this.start(id);
    throw new BridgeError("unsupported", `the process driver runs one replica per instance; asked for ${replicas}`);
  }

  async deployFlows(id: string, flows: unknown[], opts: { rev?: string; type?: "full" | "nodes" | "flows" } = {}): Promise<{ rev: string }> {
    const proc = await this.find(id);
    if (proc.state !== "running") throw new BridgeError("not_running", `instance ${id} is ${proc.state}, not running`);
    return this.admin.deployFlows(proc.base, id, flows, opts);
  }

  async health(id: string): Promise<InstanceHealth> {
    const proc = this.processes.get(this.servingRuntime(id));
    const checkedAt = new Date().toISOString();
    if (!proc) return { instanceId: id, state: "unknown", live: false, ready: false, missingNodeTypes: [], checkedAt, error: "not running under this bridge" };
    if (proc.state !== "running") {
      return { instanceId: id, state: proc.state, live: false, ready: false, missingNodeTypes: [], checkedAt, ...(proc.reason ? { error: proc.reason } : {}) };
    }
    const probe = await this.admin.probe(proc.base);
    return { instanceId: id, state: probe.live ? "running" : "unknown", ...probe, checkedAt };
  }

  // ---- blue-green (BlueGreenDriver) ----

  get adminApi(): AdminApi {
    return this.admin;
  }

  get mqttUrl(): string | undefined {
    return this.opts.mqttUrl;
  }

  /** From memory, or from instance.json after a bridge restart; starts and listens on nothing. */
  async servingOf(instanceId: string): Promise<{ runtimeId: string; base: string }> {
    const known = this.serving.has(instanceId) ? this.processes.get(this.servingRuntime(instanceId)) : undefined;
    if (known) return { runtimeId: known.plan.instanceId, base: known.base };
    const saved = await this.savedOf(instanceId);
    const slot = saved.serving ?? "a";
    return { runtimeId: runtimeIdOf(instanceId, slot), base: `http://${this.host}:${slot === "b" ? saved.portB : saved.port}` };
  }

  /** The serving runtime's supervisor and the fronts, rebuilt in this bridge process if it does not have them yet. */
  async ensureFronts(instanceId: string): Promise<void> {
    await this.find(instanceId);
  }

  /**
   * Starts the idle slot as green: a clone of blue's settings, environment,
   * credential secret and node packages, with no flows yet (they come with
   * the deployment), on its own port. Blue keeps serving meanwhile. Green
   * runs `opts.stack` when given (a runtime upgrade), else blue's stack.
   */
  async startGreen(instanceId: string, opts: { stack?: string } = {}): Promise<{ runtimeId: string; base: string; stack: SupportedStack }> {
    await this.find(instanceId);
    const saved = await this.savedOf(instanceId);
    const blueSlot = this.serving.get(instanceId) ?? "a";
    const slot: Slot = blueSlot === "a" ? "b" : "a";
    const runtimeId = runtimeIdOf(instanceId, slot);
    // Refused before anything starts: blue is untouched.
    const stack = resolveStack(this.stackList, opts.stack ?? stackOfSlot(saved, blueSlot));
    const running = this.processes.get(runtimeId);
    // A redelivered prepare finds its green; one left on another stack is not it.
    if (running?.state === "running" && running.stack.id === stack.id) {
      // Again (installing a loaded package is a no-op): a bridge killed mid-prepare may have started green without them.
      await this.installPackages(instanceId, running);
      return { runtimeId, base: running.base, stack: stackInfo(running.stack) };
    }
    if (running) await this.stopRuntime(runtimeId);
    // Through the allocator like create's ports, claimed until instance.json records it.
    const [port] = (await this.ports.claim([slot === "a" ? saved.port : saved.portB])) as [number];
    try {
      await this.save(instanceId, { ...(slot === "a" ? { port } : { portB: port }), slotStacks: { ...saved.slotStacks, [slot]: stack.id }, idleRuns: true });
    } finally {
      this.ports.release([port]);
    }
    const dir = this.slotDir(instanceId, slot);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(dir, "package.json"), JSON.stringify({ name: `redforge-instance-${saved.spec.name}-${slot}`, private: true }));
    await fs.writeFile(path.join(dir, "settings.js"), renderProcessSettings({ host: this.host, port }));
    await fs.writeFile(path.join(dir, "flows.json"), "[]");
    const proc = this.runtime(saved.spec, slot, port, stack);
    try {
      await proc.start();
    } catch (err) {
      // The same codes as the kubernetes driver's green.
      if (err instanceof BridgeError && err.code === "start_timeout") throw new BridgeError("green_timeout", `green for ${instanceId}: ${err.message}`);
      throw new BridgeError("green_failed", `green for ${instanceId} failed to start: ${err instanceof Error ? err.message : String(err)}`);
    }
    // An idle slot's userDir may hold an older package from an earlier deployment: green restarts into the new one.
    await this.installPackages(instanceId, proc);
    return { runtimeId, base: proc.base, stack: stackInfo(stack) };
  }

  /**
   * Loads every node package into `proc`, a runtime that serves nothing yet (a new
   * instance, a green): one whose userDir held an older version is restarted into
   * the new one (Node-RED answers pending_version), so a bumped package reaches an
   * existing instance at its next blue-green deployment.
   */
  private async installPackages(instanceId: string, proc: NodeRedProcess): Promise<void> {
    for (const tarball of this.opts.nodePackages ?? []) {
      const how = await installNodePackage(this.admin, () => proc.base, tarball, async () => {
        await proc.stop();
        await proc.start();
      });
      if (how === "upgraded") this.log(instanceId, `runtime ${proc.plan.instanceId}: restarted to load ${path.basename(tarball)} (an older version was loaded)`);
    }
  }

  async runtimeBase(runtimeId: string): Promise<string | undefined> {
    return (await this.known(runtimeId))?.base;
  }

  /** A runtime's supervisor; after a bridge restart, rebuilt (and adopted) on first use. */
  private async known(runtimeId: string): Promise<NodeRedProcess | undefined> {
    const { instanceId } = parseRuntime(runtimeId);
    if (!this.serving.has(instanceId)) {
      const saved = await readSaved(this.dir(instanceId)).catch(() => undefined);
      // A stopped (or destroyed, data kept) instance is not brought back, fronts and all, by a late step.
      if (saved && saved.desired !== "stopped") await this.find(instanceId).catch(() => undefined);
    }
    return this.processes.get(runtimeId);
  }

  async deployFlowsTo(runtimeId: string, flows: unknown[], opts: { rev?: string; type?: "full" | "nodes" | "flows" } = {}): Promise<{ rev: string }> {
    const proc = await this.known(runtimeId);
    if (!proc || proc.state !== "running") throw new BridgeError("not_running", `runtime ${runtimeId} is not running`);
    return this.admin.deployFlows(proc.base, runtimeId, flows, opts);
  }

  front(instanceId: string): HttpRoute | undefined {
    return this.fronts.http(instanceId);
  }

  mqttFront(instanceId: string): MqttRoute | undefined {
    return this.fronts.mqtt(instanceId);
  }

  /** Makes `runtimeId` the serving runtime: the HTTP front's target, status reports, and what survives a bridge restart. */
  async setServing(runtimeId: string): Promise<void> {
    const { instanceId, slot } = parseRuntime(runtimeId);
    const proc = this.processes.get(runtimeId);
    if (!proc) throw new BridgeError("not_running", `runtime ${runtimeId} is not running`);
    this.serving.set(instanceId, slot);
    await this.fronts.http(instanceId)?.setTarget(proc.base);
    await this.save(instanceId, { serving: slot });
  }

  /** Stops a runtime that no longer serves (blue after its rollback window, green after a rollback). */
  async stopRuntime(runtimeId: string): Promise<void> {
    const { instanceId } = parseRuntime(runtimeId);
    if (this.servingRuntime(instanceId) === runtimeId) throw new BridgeError("still_serving", `runtime ${runtimeId} still serves ${instanceId}`);
    // known(): after a bridge restart, a runtime an earlier bridge started is adopted first, so it is stopped too.
    await (await this.known(runtimeId))?.stop();
    this.processes.delete(runtimeId);
    // Saved after it stopped: a bridge killed before this still finds it running (and adopts or restarts it).
    if (await readSaved(this.dir(instanceId)).catch(() => undefined)) await this.save(instanceId, { idleRuns: false });
  }

  /** Read-modify-write of instance.json; writes are whole-file (a crash leaves the old or the new one). */
  private save(instanceId: string, patch: Partial<SavedInstance>): Promise<void> {
    const run = (this.saving.get(instanceId) ?? Promise.resolve()).then(async () => {
      const saved = await this.savedOf(instanceId);
      await writeSaved(this.dir(instanceId), { ...saved, ...patch });
    });
    this.saving.set(instanceId, run.catch(() => undefined));
    return run;
  }

  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  async close(opts: { leaveRunning?: boolean } = {}): Promise<void> {
    this.closed = true;
    for (const timer of this.resumeRetries.values()) clearTimeout(timer);
    this.resumeRetries.clear();
    // A restart or upgrade leaves Node-RED serving for the next bridge, which adopts it; a shutdown for good stops it.
    if (opts.leaveRunning) for (const p of this.processes.values()) p.release();
    else await Promise.all([...this.processes.values()].map((p) => p.stop(5_000)));
    // A bridge restart (SIGTERM) leaves the data plane serving; a shutdown for good stops it.
    await (opts.leaveRunning ? this.fronts.detach() : this.fronts.close());
    this.processes.clear();
    process.off("exit", this.onExit);
  }
}

/** What resume() did at bridge start. */
export interface ResumeReport {
  /** Runtime ids whose Node-RED was still running and is supervised by this bridge now. */
  adopted: string[];
  /** Runtime ids started again: instances that should run, and a deployment's other runtime. */
  started: string[];
  /** Instances that were running but should be stopped. */
  stopped: string[];
  failed: Array<{ instanceId: string; error: string }>;
}

/** Runs `work` over `items`, `size` at a time: Node-RED boots are CPU-heavy. */
async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

const stackInfo = (stack: Stack): SupportedStack => ({ id: stack.id, nodeRed: stack.version });
const exists = (p: string) => fs.access(p).then(() => true, () => false);
