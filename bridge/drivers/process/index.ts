/**
 * The `process` driver: each instance is a real Node-RED child process on
 * this host (edge boxes, local development) with its own userDir, port and
 * generated settings.js. Instance files live in <stateDir>/<instanceId>, so a
 * restarted bridge can start an instance it created before.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { randomBytes } from "node:crypto";
import type { Driver, InstanceEndpoints, InstanceHealth, InstanceSpec, StatusListener } from "../driver.ts";
import { AdminApi } from "../nodeRedAdmin.ts";
import { FrontProxy } from "./frontProxy.ts";
import { NODE_RED_CLI, NodeRedProcess, type RestartPolicy } from "./nodeRedProcess.ts";
import { allocatePort, portFree, savedPorts, type PortRange } from "./ports.ts";
import { ENV_ADMIN_TOKEN, ENV_CREDENTIAL_SECRET, renderProcessSettings } from "./settings.ts";

export interface ProcessDriverOptions {
  /** Each instance's userDir is <stateDir>/<instanceId>. */
  stateDir: string;
  /** Node package tarballs (`npm pack` output) loaded into every instance: the RedForge package and any others. */
  nodePackages?: string[];
  host?: string;
  /** Inclusive range for Node-RED and front ports; any free port when absent. */
  portRange?: PortRange;
  /** node-red's red.js; this project's own dependency when absent. */
  nodeRedBin?: string;
  /** The static bearer token the instances' Admin API accepts; random per driver when absent. */
  adminToken?: string;
  restart?: Partial<RestartPolicy>;
  readyTimeoutMs?: number;
  log?: (instanceId: string, line: string) => void;
}

interface SavedInstance {
  spec: InstanceSpec;
  port: number;
  /** The stable front port; kept across restarts of the instance and of the bridge. */
  frontPort: number;
}

const DEFAULT_RESTART: RestartPolicy = { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 500 };
// Node-RED runs with only these from the bridge's environment: the bridge's own secrets stay home.
const PASSED_ENV = ["PATH", "LANG", "TZ", "NODE_EXTRA_CA_CERTS"];

export class ProcessDriver implements Driver {
  readonly kind = "process" as const;
  private readonly processes = new Map<string, NodeRedProcess>();
  private readonly fronts = new Map<string, FrontProxy>();
  private readonly listeners: StatusListener[] = [];
  private readonly admin: AdminApi;
  private readonly adminToken: string;
  /** Ports picked but not yet in an instance.json: two instances created at once never share one. */
  private readonly claimed = new Set<number>();
  /** Port picking runs one create at a time: "is it free?" is asynchronous, so two could both hear yes. */
  private picking: Promise<unknown> = Promise.resolve();
  private readonly host: string;
  private readonly restart: RestartPolicy;
  private readonly onExit = () => { for (const p of this.processes.values()) p.killNow(); };

  constructor(private readonly opts: ProcessDriverOptions) {
    this.host = opts.host ?? "127.0.0.1";
    this.restart = { ...DEFAULT_RESTART, ...opts.restart };
    this.adminToken = opts.adminToken ?? randomBytes(32).toString("base64url");
    this.admin = new AdminApi(this.adminToken, { deployMs: 30_000, probeMs: 3_000 });
    process.on("exit", this.onExit);
  }

  private dir(id: string): string {
    return path.join(this.opts.stateDir, id);
  }

  private log(id: string, line: string): void {
    this.opts.log?.(id, line);
  }

  /** Node-RED and front ports: the saved ones while still free, else new ones no other instance holds. */
  private ports(saved: SavedInstance | undefined): Promise<{ port: number; frontPort: number }> {
    const next = this.picking.then(() => this.pickPorts(saved));
    this.picking = next.catch(() => undefined);
    return next;
  }

  /** One port outside create's picking (a front door that had to move): in the range, held by no saved instance. */
  private async unheldPort(): Promise<number> {
    return allocatePort(this.host, new Set([...this.claimed, ...(await savedPorts(this.opts.stateDir))]), this.opts.portRange);
  }

  private async pickPorts(saved: SavedInstance | undefined): Promise<{ port: number; frontPort: number }> {
    const own = new Set([saved?.port, saved?.frontPort]);
    const reserved = new Set([...this.claimed, ...(await savedPorts(this.opts.stateDir)).filter((p) => !own.has(p))]);
    const pick = async (keep: number | undefined) => {
      const port = keep && !reserved.has(keep) && (await portFree(keep, this.host)) ? keep : await allocatePort(this.host, reserved, this.opts.portRange);
      reserved.add(port);
      this.claimed.add(port);
      return port;
    };
    return { port: await pick(saved?.port), frontPort: await pick(saved?.frontPort) };
  }

  async create(spec: InstanceSpec): Promise<{ endpoints: InstanceEndpoints }> {
    const existing = this.processes.get(spec.id);
    if (existing) {
      // A redelivered create: converge on "running" instead of starting a second copy.
      await existing.start();
      return { endpoints: this.endpoints(spec.id, existing) };
    }
    const dir = this.dir(spec.id);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const saved = await readSaved(dir);
    const { port, frontPort } = await this.ports(saved);
    try {
      await fs.writeFile(path.join(dir, "instance.json"), JSON.stringify({ spec, port, frontPort } satisfies SavedInstance), { mode: 0o600 });
    } finally {
      // From here instance.json holds them for savedPorts(); the claim only covered the gap.
      this.claimed.delete(port);
      this.claimed.delete(frontPort);
    }
    // settings.js is CommonJS: without its own package.json, an enclosing "type": "module"
    // package (this repository, for one) makes Node load it as ESM and Node-RED boot-loops.
    const pkg = path.join(dir, "package.json");
    if (!(await exists(pkg))) await fs.writeFile(pkg, JSON.stringify({ name: `redforge-instance-${spec.name}`, private: true }));
    await fs.writeFile(path.join(dir, "settings.js"), renderProcessSettings({ host: this.host, port }));
    const flowFile = path.join(dir, "flows.json");
    if (!(await exists(flowFile))) await fs.writeFile(flowFile, JSON.stringify(spec.flows));
    const proc = await this.supervise(spec, port, frontPort);
    await proc.start();
    // POST /nodes installs into the userDir, so later starts load the packages from disk.
    for (const tarball of this.opts.nodePackages ?? []) await this.admin.uploadNodePackage(proc.base, tarball);
    return { endpoints: this.endpoints(spec.id, proc) };
  }

  private endpoints(id: string, proc: NodeRedProcess): InstanceEndpoints {
    const front = this.fronts.get(id);
    return { admin: proc.base, ...(front ? { front: front.url } : {}) };
  }

  private async supervise(spec: InstanceSpec, port: number, frontPort: number): Promise<NodeRedProcess> {
    const env: Record<string, string> = {};
    for (const k of PASSED_ENV) if (process.env[k]) env[k] = process.env[k]!;
    Object.assign(env, spec.env, {
      HOME: this.dir(spec.id), NODE_ENV: "production",
      [ENV_ADMIN_TOKEN]: this.adminToken, [ENV_CREDENTIAL_SECRET]: spec.credentialSecret,
    });
    const proc = new NodeRedProcess(
      { instanceId: spec.id, cli: this.opts.nodeRedBin ?? NODE_RED_CLI, userDir: this.dir(spec.id), settingsFile: path.join(this.dir(spec.id), "settings.js"), host: this.host, port, env },
      this.admin, this.restart,
      (state, reason) => { for (const l of this.listeners) l(spec.id, state, reason); },
      (line) => this.log(spec.id, line),
      this.opts.readyTimeoutMs ?? 60_000,
    );
    this.processes.set(spec.id, proc);
    const front = new FrontProxy(this.host);
    // The saved front port, unless something took it meanwhile (then the front URL changes, and says so).
    await front.listen(frontPort).catch(async () => {
      const moved = await front.listen(await this.unheldPort());
      this.log(spec.id, `front port ${frontPort} is taken; front door moved to ${moved}`);
      await fs.writeFile(path.join(this.dir(spec.id), "instance.json"), JSON.stringify({ spec, port, frontPort: moved } satisfies SavedInstance), { mode: 0o600 });
    });
    front.setTarget(proc.base);
    this.fronts.set(spec.id, front);
    return proc;
  }

  /** The running supervisor, or one rebuilt from what an earlier bridge saved on disk. */
  private async find(id: string): Promise<NodeRedProcess> {
    const known = this.processes.get(id);
    if (known) return known;
    const saved = await readSaved(this.dir(id));
    if (!saved) throw Object.assign(new Error(`instance ${id} is not known to this bridge`), { code: "unknown_instance" });
    return this.supervise(saved.spec, saved.port, saved.frontPort ?? (await this.unheldPort()));
  }

  async start(id: string): Promise<void> {
    await (await this.find(id)).start();
  }

  async stop(id: string): Promise<void> {
    const proc = this.processes.get(id);
    if (proc) await proc.stop();
  }

  async destroy(id: string, opts: { deleteData?: boolean } = {}): Promise<void> {
    await this.stop(id);
    this.processes.delete(id);
    await this.fronts.get(id)?.close();
    this.fronts.delete(id);
    if (opts.deleteData) await fs.rm(this.dir(id), { recursive: true, force: true });
  }

  async scale(id: string, replicas: number): Promise<void> {
    if (replicas === 0) return this.stop(id);
    if (replicas === 1) return this.start(id);
    throw Object.assign(new Error(`the process driver runs one replica per instance; asked for ${replicas}`), { code: "unsupported_replicas" });
  }

  async deployFlows(id: string, flows: unknown[], opts: { rev?: string; type?: "full" | "nodes" | "flows" } = {}): Promise<{ rev: string }> {
    const proc = await this.find(id);
    if (proc.state !== "running") throw Object.assign(new Error(`instance ${id} is ${proc.state}, not running`), { code: "not_running" });
    return this.admin.deployFlows(proc.base, id, flows, opts);
  }

  async health(id: string): Promise<InstanceHealth> {
    const proc = this.processes.get(id);
    const checkedAt = new Date().toISOString();
    if (!proc) return { instanceId: id, state: "unknown", live: false, ready: false, missingNodeTypes: [], checkedAt, error: "not running under this bridge" };
    if (proc.state !== "running") {
      return { instanceId: id, state: proc.state, live: false, ready: false, missingNodeTypes: [], checkedAt, ...(proc.reason ? { error: proc.reason } : {}) };
    }
    const probe = await this.admin.probe(proc.base);
    return { instanceId: id, state: probe.live ? "running" : "unknown", ...probe, checkedAt };
  }

  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => p.stop(5_000)));
    await Promise.all([...this.fronts.values()].map((f) => f.close()));
    this.processes.clear();
    this.fronts.clear();
    process.off("exit", this.onExit);
  }
}

async function readSaved(dir: string): Promise<SavedInstance | undefined> {
  return fs.readFile(path.join(dir, "instance.json"), "utf8").then((t) => JSON.parse(t) as SavedInstance, () => undefined);
}

const exists = (p: string) => fs.access(p).then(() => true, () => false);
