/**
 * One interface for every way a bridge can run Node-RED: `process` (child
 * processes on this host: edge boxes, local development) and `kubernetes`
 * (StatefulSet + Service per instance). The bridge's command executor only
 * ever talks to this interface.
 *
 * Nothing here names a driver's classes: traffic fronts are the routing
 * interfaces of bridge/routing/fronts.ts, errors are BridgeError (errors.ts).
 */
import type { SupportedStack } from "../../protocol/stacks.ts";
import type { HttpRoute, MqttRoute } from "../routing/fronts.ts";
import type { RuntimeAdmin } from "./nodeRedAdmin.ts";

export interface InstanceResources {
  /** Kubernetes quantity, e.g. "500m" or "2". */
  cpu?: string;
  /** Kubernetes quantity, e.g. "512Mi". */
  memory?: string;
}

/** Everything a driver needs to bring up one Node-RED instance. */
export interface InstanceSpec {
  id: string;
  /** DNS-1123 label; used for process dirs and Kubernetes object names. */
  name: string;
  flows: unknown[];
  resources: InstanceResources;
  env: Record<string, string>;
  /** Node-RED credentialSecret: encrypts flow credentials at rest. */
  credentialSecret: string;
  /** The Node-RED version line to run ("5.0"); LEGACY_STACK when absent. */
  stack?: string;
}

export type InstanceState = "starting" | "running" | "stopped" | "failed" | "unknown";

export interface InstanceEndpoints {
  /** Node-RED editor / Admin API base URL. */
  admin: string;
  /** Stable front URL for the instance's traffic (moves blue → green in deployments). */
  front?: string;
}

export interface InstanceHealth {
  instanceId: string;
  state: InstanceState;
  /** Admin API answered. */
  live: boolean;
  /** The instance's /healthz route (served by the RedForge node package) answered. */
  ready: boolean;
  rssBytes?: number;
  heapUsedBytes?: number;
  /** CPU seconds of the Node-RED process and the gate's message counters (from GET /redforge/gate). */
  cpuSeconds?: number;
  messages?: { in: number; out: number; errors: number };
  flows?: Array<{ flowId: string; in: number; out: number; errors: number }>;
  /** Node-RED runtime flows state from /flows/state or /diagnostics. */
  flowsState?: "start" | "stop";
  /** Node types the deployed flows use that this instance does not have. */
  missingNodeTypes: string[];
  checkedAt: string;
  error?: string;
}

/** Drivers report state changes they notice themselves (a crash, a boot loop). */
/** Where instances keep their `shared` context (Upstash REST: POST [command, ...args] with a bearer token). */
export interface ContextStoreTarget {
  url: string;
  token: string;
}

export type StatusListener = (instanceId: string, state: InstanceState, reason?: string) => void;

export interface Driver {
  readonly kind: "process" | "kubernetes";
  /** `stack`: what the spec's stack resolved to; a stack the driver cannot run is BridgeError `unsupported`. */
  create(spec: InstanceSpec): Promise<{ endpoints: InstanceEndpoints; stack?: SupportedStack }>;
  start(instanceId: string): Promise<void>;
  stop(instanceId: string): Promise<void>;
  /** Removes the runtime; data (userDir / PVC) is kept unless `deleteData`. */
  destroy(instanceId: string, opts?: { deleteData?: boolean }): Promise<void>;
  scale(instanceId: string, replicas: number): Promise<void>;
  /** Pushes flows through the Admin API (Node-RED-API-Version: v2); `rev` guards against a concurrent change. */
  deployFlows(instanceId: string, flows: unknown[], opts?: { rev?: string; type?: "full" | "nodes" | "flows" }): Promise<{ rev: string }>;
  health(instanceId: string): Promise<InstanceHealth>;
  onStatus(listener: StatusListener): void;
  /**
   * Stops everything this driver started (the bridge is shutting down for good:
   * tests, `npm start`'s Ctrl-C). With `leaveRunning` (the CLI's SIGTERM: a
   * bridge restart or upgrade), what carries instances' traffic keeps running
   * for the next bridge to attach to: the process driver's data plane (fronts,
   * held work) and its Node-RED processes.
   */
  close(opts?: { leaveRunning?: boolean }): Promise<void>;
  /** The stacks this driver can start, for the bridge's hello; a driver without it does not say (the control plane then refuses none). */
  supportedStacks?(): SupportedStack[];
}

/** What a blue-green deployment needs from a driver beyond the basics (process and kubernetes drivers). */
export interface BlueGreenDriver {
  /** A runtime's deploy gate and flows rev, through the Node-RED Admin API. */
  readonly adminApi: RuntimeAdmin;
  /** The cluster's MQTT bus, when the driver routes MQTT work. */
  readonly mqttUrl?: string;
  /** The runtime that serves the instance now (blue). Reads only: starts, creates and connects nothing. */
  servingOf(instanceId: string): Promise<{ runtimeId: string; base: string }>;
  /**
   * Makes sure the instance's fronts (HTTP, MQTT) run and this bridge process
   * knows them, pointed at the serving runtime: the process driver's run in
   * its data plane (which keeps them across bridge restarts), the kubernetes
   * driver's MQTT fronts in the bridge. After a bridge restart the driver knows
   * them only once asked, so every deployment step calls this before it
   * touches routing. Idempotent; a front that already runs keeps its state.
   */
  ensureFronts(instanceId: string): Promise<void>;
  /**
   * Starts green next to blue: same settings, env, credentials and node packages; no flows yet.
   * On `opts.stack` when given (a runtime upgrade), else on blue's stack.
   */
  startGreen(instanceId: string, opts?: { stack?: string }): Promise<{ runtimeId: string; base: string; stack?: SupportedStack }>;
  /** Admin API base of one runtime (blue or green), undefined when it is not on this bridge. */
  runtimeBase(runtimeId: string): Promise<string | undefined>;
  deployFlowsTo(runtimeId: string, flows: unknown[], opts?: { rev?: string; type?: "full" | "nodes" | "flows" }): Promise<{ rev: string }>;
  /** The instance's HTTP front (process driver); undefined where the platform routes HTTP (a Kubernetes Service). */
  front(instanceId: string): HttpRoute | undefined;
  /** The instance's MQTT front; undefined without a bus or before ensureFronts. */
  mqttFront(instanceId: string): MqttRoute | undefined;
  /** Moves the instance's routing to `runtimeId`; resolves once new traffic goes there. */
  setServing(runtimeId: string): Promise<void>;
  stopRuntime(runtimeId: string): Promise<void>;
}

export function isBlueGreen(driver: Driver): driver is Driver & BlueGreenDriver {
  return typeof (driver as Partial<BlueGreenDriver>).startGreen === "function";
}
