/**
 * What the Worker may call on each Durable Object: the RPC surface, declared
 * here so that `Env` types its namespaces without importing the classes
 * (which import `Env` back). Each class `implements` its interface, so the
 * compiler keeps the two in step.
 */
import type { Command, CommandType, SmokeChecks } from "../protocol/commands.ts";
import type { DeploymentView } from "../protocol/deployments.ts";

export interface EnqueueOptions {
  /** Hold the command this long before sending (health sweeps spread their load). */
  delayMs?: number;
  timeoutMs?: number;
  /** A caller-chosen id (a deployment step): enqueueing it again returns the command already there. */
  id?: string;
}

export type OutboxStatus = "pending" | "sent" | "received" | "ok" | "error" | "timed_out";

export interface ClusterLinkStatus {
  connected: boolean;
  connectedAt: string | undefined;
  lastHello: unknown;
  openCommands: number;
}

export interface ClusterLinkApi extends Rpc.DurableObjectBranded {
  enqueue(type: CommandType, instanceId: string | undefined, args: Record<string, unknown>, opts?: EnqueueOptions): Promise<Command>;
  complete(commandId: string, ok: boolean, result: unknown): Promise<{ command: Command | null; first: boolean }>;
  result(commandId: string): Promise<{ status: OutboxStatus; result: unknown } | null>;
  status(): Promise<ClusterLinkStatus>;
}

export type HoldDuring = "deploy" | "switch";

export interface DeploymentInit {
  id: string;
  instanceId: string;
  clusterId: string;
  strategy: string;
  flows: unknown[];
  fromVersionId: string | null;
  toVersionId: string;
  verify: SmokeChecks;
  drainTimeoutMs: number;
  analysisMs: number;
  maxErrorRate: number;
  rollbackWindowMs: number;
  /** Which steps new work is held through (see durable/deploymentRun). */
  holdDuring?: HoldDuring;
  createdBy: string | null;
  createdAt: string;
}

export type OperatorAction = "promote" | "abort" | "rollback";
export type OperateAnswer = { ok: true; view: DeploymentView } | { ok: false; status: 404 | 409; code: string; message: string };

export interface DeploymentRunApi extends Rpc.DurableObjectBranded {
  start(init: DeploymentInit): Promise<DeploymentView>;
  state(): Promise<DeploymentView | null>;
  onCommandResult(commandId: string, ok: boolean, result: unknown): Promise<void>;
  operate(what: OperatorAction, userId: string | null): Promise<OperateAnswer>;
}

export interface FleetEvent {
  event: "instance:status";
  data: { instanceId: string; clusterId: string; status: string; desiredState?: string; reason?: string | null; timestamp: string };
}

export interface FleetEventsApi extends Rpc.DurableObjectBranded {
  publish(event: FleetEvent): Promise<number>;
}

export interface KvStoreApi extends Rpc.DurableObjectBranded {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, nx: boolean, ttlSeconds: number): Promise<boolean>;
  incr(key: string, ttlSeconds: number): Promise<number>;
  incrBy(key: string, by: number, ttlSeconds: number): Promise<number>;
  del(key: string): Promise<void>;
}
