/**
 * The Node-RED Admin API of one instance, shared by every driver (process:
 * 127.0.0.1:<port>; kubernetes: the instance's Service). Authenticated with
 * the static admin token that each driver's settings.js accepts.
 */
import fs from "node:fs/promises";
import type { z } from "zod";
import type { GateMode } from "../../protocol/mqtt.ts";
import type { flowMessagesSchema, messageCountersSchema } from "../../protocol/reports.ts";
import { BridgeError } from "../errors.ts";

export type { GateMode } from "../../protocol/mqtt.ts";

export interface AdminTarget {
  name: string;
  namespace: string;
}

/** Where the bridge reaches an instance's Admin API (a Service name); tests point it at a local server. */
export type AdminUrlResolver = (target: AdminTarget) => string | Promise<string>;

/**
 * `<svc>.<ns>.svc` rather than the full name: the pod's resolv.conf search list
 * completes it with whatever the cluster domain is (not always cluster.local).
 */
export const serviceAdminUrl: AdminUrlResolver = ({ name, namespace }) => `http://${name}.${namespace}.svc:1880`;

/** `missing_node_types`: refused before the deploy (FACTS: Node-RED would accept it and then wait forever). */
export class MissingNodeTypesError extends BridgeError {
  constructor(instance: string, readonly types: string[]) {
    super("missing_node_types", `flows for ${instance} use node types it does not have: ${types.join(", ")}`, { types });
    this.name = "MissingNodeTypesError";
  }
}

/** `flows_conflict`: Node-RED's 409 version_mismatch, the flows changed since the given rev. */
export class FlowsConflictError extends BridgeError {
  constructor(instance: string) {
    super("flows_conflict", `flows of ${instance} changed since the given rev (409 version_mismatch)`);
    this.name = "FlowsConflictError";
  }
}

const nodeRedError = (message: string) => new BridgeError("node_red_error", message);

export interface GateStatus {
  mode: GateMode;
  inFlight: number;
  /** redforge-gate nodes registered in the running flows. */
  gates: number;
  heldHttp: number;
  /** Client connections that carried gated (non-smoke) HTTP work and are still open; absent from node packages before it. */
  openHttp?: number;
  mqtt: "connected" | "disconnected" | "off";
  counters: { entered: number; exited: number; expired: number; heldMqtt: number; heldHttp: number; refusedHttp: number; refusedHeldHttp?: number; released: number };
  /** Absent from node packages before issue 13. */
  cpuSeconds?: number;
  messages?: MessageCounters;
  flows?: FlowMessages[];
}

export interface AdminProbe {
  live: boolean;
  ready: boolean;
  flowsState?: "start" | "stop";
  rssBytes?: number;
  heapUsedBytes?: number;
  /** From the deploy gate's status: the process's CPU seconds and the message counters of its gate and exit nodes. */
  cpuSeconds?: number;
  messages?: MessageCounters;
  flows?: FlowMessages[];
  missingNodeTypes: string[];
  error?: string;
}

type MessageCounters = z.infer<typeof messageCountersSchema>;
type FlowMessages = z.infer<typeof flowMessagesSchema>;

/** What deployment steps ask of a runtime's Admin API (BlueGreenDriver.adminApi): its deploy gate and flows rev. */
export interface RuntimeAdmin {
  /** The gate's status; with `mode`, sets it first. */
  gate(base: string, mode?: GateMode): Promise<GateStatus>;
  flowsRev(base: string): Promise<string | undefined>;
  /** The checkpoint runtime's routes (redforge-checkpoint, /redforge/checkpoints/<action>); see bridge/deploy/workflowHandover.ts. */
  checkpoints?(base: string, action: "handover" | "resume" | "cancel", body: unknown, timeoutMs?: number): Promise<Response>;
}

/** Entries of a flows array that are containers or wiring, not node types a module provides. */
const STRUCTURAL_TYPES = new Set(["tab", "subflow", "group", "junction"]);

/** How long Node-RED may take to install a node package (POST /nodes runs npm install). */
export const DEFAULT_INSTALL_MS = 150_000; // under the control plane's 180 s deadline for prepare (durable/deploymentRun/steps.ts), so prepare still answers

export class AdminApi implements RuntimeAdmin {
  constructor(
    private readonly token: string,
    private readonly timeouts: { deployMs: number; probeMs: number; installMs?: number },
  ) {}

  private async request(url: string, init: RequestInit & { timeoutMs: number }): Promise<Response> {
    const { timeoutMs, ...rest } = init;
    try {
      return await fetch(url, {
        ...rest,
        headers: { Authorization: `Bearer ${this.token}`, "Node-RED-API-Version": "v2", ...rest.headers },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      // fetch says only "The operation was aborted due to timeout": a failed step must say which call.
      if ((err as Error).name !== "TimeoutError") throw err;
      throw new Error(`${rest.method ?? "GET"} ${url} did not answer within ${timeoutMs} ms`, { cause: err });
    }
  }

  async nodeSets(base: string): Promise<Array<{ id?: string; module?: string; types?: string[] }>> {
    // GET /nodes answers HTML unless asked for JSON.
    // Read right after an install, while Node-RED loads the new module: a step's bound, not a probe's
    // (with the 3 s probe bound a green's prepare failed under load in the clean-clone CI).
    const res = await this.request(`${base}/nodes`, { method: "GET", timeoutMs: this.timeouts.deployMs, headers: { Accept: "application/json" } });
    if (!res.ok) throw nodeRedError(`GET /nodes: ${res.status}`);
    return (await res.json()) as Array<{ id?: string; module?: string; types?: string[] }>;
  }

  checkpoints(base: string, action: "handover" | "resume" | "cancel", body: unknown, timeoutMs = 30_000): Promise<Response> {
    return this.request(`${base}/redforge/checkpoints/${action}`, { method: "POST", timeoutMs, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  /** True once the Admin API answers with the token accepted. */
  async answers(base: string): Promise<boolean> {
    try {
      const res = await this.request(`${base}/settings`, { method: "GET", timeoutMs: this.timeouts.probeMs });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  /** Installs a node package from a tarball without a restart (POST /nodes, multipart field `tarball`). */
  async uploadNodePackage(base: string, tarball: string): Promise<void> {
    const form = new FormData();
    form.append("tarball", new Blob([await fs.readFile(tarball)], { type: "application/gzip" }), tarball.split("/").pop() ?? "package.tgz");
    // Node-RED answers after its own `npm install` of the tarball: tens of seconds on a loaded machine
    // (a clean-clone CI saw a 30 s bound fail a green's prepare), so it gets its own, longer bound.
    const res = await this.request(`${base}/nodes`, { method: "POST", timeoutMs: this.timeouts.installMs ?? DEFAULT_INSTALL_MS, body: form });
    // 400 module_already_loaded: a restarted instance keeps what it installed before.
    if (!res.ok && !(res.status === 400 && (await res.clone().text()).includes("already"))) {
      throw nodeRedError(`install node package: ${res.status} ${(await res.text()).slice(0, 300)}`);
    }
  }

  async deployFlows(base: string, instance: string, flows: unknown[], opts: { rev?: string; type?: "full" | "nodes" | "flows" } = {}): Promise<{ rev: string }> {
    // FACTS: an unknown type deploys "fine" and then every flow waits for it forever.
    const missing = missingTypes(flows as Array<{ type?: unknown }>, await this.nodeSets(base));
    if (missing.length) throw new MissingNodeTypesError(instance, missing);
    const res = await this.request(`${base}/flows`, {
      method: "POST",
      timeoutMs: this.timeouts.deployMs,
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": opts.type ?? "full" },
      // Without rev Node-RED overwrites whatever is deployed; with it, a concurrent change answers 409.
      body: JSON.stringify(opts.rev ? { rev: opts.rev, flows } : { flows }),
    });
    if (res.status === 409) throw new FlowsConflictError(instance);
    if (!res.ok) throw nodeRedError(`deploy flows to ${instance}: ${res.status} ${(await res.text()).slice(0, 300)}`);
    const body = (await res.json()) as { rev?: unknown };
    if (typeof body.rev !== "string") throw nodeRedError(`deploy flows to ${instance}: reply has no rev`);
    return { rev: body.rev };
  }

  /** The deploy gate's state (served by the RedForge node package at /redforge/gate). */
  async gate(base: string, mode?: GateMode): Promise<GateStatus> {
    const res = await this.request(`${base}/redforge/gate`, mode
      ? { method: "POST", timeoutMs: this.timeouts.probeMs, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ mode }) }
      : { method: "GET", timeoutMs: this.timeouts.probeMs });
    if (res.status === 404) throw new BridgeError("no_gate", `${base} has no deploy gate (is the RedForge node package loaded?)`);
    if (!res.ok) throw nodeRedError(`${mode ? "POST" : "GET"} /redforge/gate: ${res.status} ${(await res.text()).slice(0, 200)}`);
    return (await res.json()) as GateStatus;
  }

  /** The deployed flows' revision. */
  async flowsRev(base: string): Promise<string | undefined> {
    const res = await this.request(`${base}/flows`, { method: "GET", timeoutMs: this.timeouts.probeMs });
    if (!res.ok) throw nodeRedError(`GET /flows: ${res.status}`);
    return ((await res.json()) as { rev?: string }).rev;
  }

  /** Never throws: an unreachable instance is a health result, not an error. */
  async probe(base: string): Promise<AdminProbe> {
    const get = async (path: string, accept = "application/json") => {
      const res = await this.request(`${base}${path}`, { method: "GET", timeoutMs: this.timeouts.probeMs, headers: { Accept: accept } });
      if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
      return res;
    };
    const [state, healthz, diagnostics, flows, nodes, gate] = await Promise.allSettled([
      get("/flows/state").then((r) => r.json() as Promise<{ state?: string }>),
      get("/healthz", "*/*"),
      get("/diagnostics").then((r) => r.json() as Promise<{ nodejs?: { memoryUsage?: { rss?: number; heapUsed?: number } } }>),
      get("/flows").then((r) => r.json() as Promise<{ flows?: Array<{ type?: unknown }> }>),
      // GET /nodes answers HTML unless asked for JSON.
      get("/nodes").then((r) => r.json() as Promise<Array<{ types?: string[] }>>),
      // No gate route (a package without the gate, or before it) only means no CPU and message figures.
      get("/redforge/gate").then((r) => r.json() as Promise<Partial<GateStatus>>),
    ]);

    const probe: AdminProbe = { live: state.status === "fulfilled", ready: healthz.status === "fulfilled", missingNodeTypes: [] };
    if (state.status === "fulfilled" && (state.value.state === "start" || state.value.state === "stop")) probe.flowsState = state.value.state;
    if (diagnostics.status === "fulfilled") {
      const mem = diagnostics.value.nodejs?.memoryUsage;
      if (typeof mem?.rss === "number") probe.rssBytes = mem.rss;
      if (typeof mem?.heapUsed === "number") probe.heapUsedBytes = mem.heapUsed;
    }
    if (gate.status === "fulfilled") Object.assign(probe, gateFigures(gate.value));
    if (flows.status === "fulfilled" && nodes.status === "fulfilled") {
      probe.missingNodeTypes = missingTypes(flows.value.flows ?? [], nodes.value);
    }
    if (state.status === "rejected") probe.error = `admin API: ${reasonOf(state.reason)}`;
    // The route comes with the RedForge node package; a 404 means the package is missing, which
    // an operator must see, while the instance itself is still live and reported as such.
    else if (healthz.status === "rejected" && /: 404$/.test(reasonOf(healthz.reason))) probe.error = "no /healthz route";
    return probe;
  }
}

const tally = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const countersOf = (v: unknown): MessageCounters | undefined => {
  const c = v as Partial<MessageCounters> | null | undefined;
  return c && tally(c.in) && tally(c.out) && tally(c.errors) ? { in: c.in, out: c.out, errors: c.errors } : undefined;
};

/** The gate status's CPU and message figures, kept only when well-formed (the wire schema would refuse the whole report). */
export function gateFigures(g: Partial<GateStatus>): Pick<AdminProbe, "cpuSeconds" | "messages" | "flows"> {
  const out: Pick<AdminProbe, "cpuSeconds" | "messages" | "flows"> = {};
  if (typeof g.cpuSeconds === "number" && Number.isFinite(g.cpuSeconds) && g.cpuSeconds >= 0) out.cpuSeconds = g.cpuSeconds;
  const total = countersOf(g.messages);
  if (total) out.messages = total;
  if (Array.isArray(g.flows)) {
    out.flows = g.flows.flatMap((f) => {
      const c = countersOf(f);
      return c && typeof f.flowId === "string" && f.flowId.length <= 64 ? [{ flowId: f.flowId, ...c }] : [];
    }).slice(0, 100);
  }
  return out;
}

/**
 * Node-RED accepts a deploy that uses an unknown type and then silently waits
 * for it while /flows/state says "start", so the types are compared here.
 */
export function missingTypes(flows: Array<{ type?: unknown }>, nodeSets: Array<{ types?: string[] }>): string[] {
  const known = new Set(nodeSets.flatMap((s) => s.types ?? []));
  const used = new Set<string>();
  for (const n of flows) {
    if (typeof n.type !== "string" || STRUCTURAL_TYPES.has(n.type) || n.type.startsWith("subflow:")) continue;
    used.add(n.type);
  }
  return [...used].filter((t) => !known.has(t)).sort();
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? (err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err.message) : String(err);
}
