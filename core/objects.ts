/**
 * What the Worker may call on each Durable Object: the RPC surface, declared
 * here so that `Env` types its namespaces without importing the classes
 * (which import `Env` back). Each class `implements` its interface, so the
 * compiler keeps the two in step.
 */
import type { BridgeFrame, CommandType } from "../protocol/commands.ts";
import type { DeploymentInit, DeploymentView, HoldDuring } from "../protocol/deployments.ts";
import type { ClusterWarning } from "../protocol/reports.ts";
import type { Rollout } from "../protocol/api/rollouts.ts";
import type { RolloutAction, RolloutAnswer, RolloutInit } from "./rollouts/types.ts";

export type { DeploymentInit, HoldDuring };

/**
 * Who a command's answer belongs to, recorded with the command in the outbox
 * (never sent to the bridge): the answer goes there, and the owner, not the
 * outbox, decides what a missed deadline means. A command without an owner is
 * a fleet command: its answer (or silence) settles its instance's status.
 */
export type ReplyTo = { kind: "deployment"; id: string };

export interface EnqueueOptions {
  /** Hold the command this long before sending (health sweeps spread their load). */
  delayMs?: number;
  timeoutMs?: number;
  /** A caller-chosen id (a deployment step): enqueueing it again returns the command already there. */
  id?: string;
  /** The answer's owner; an owned command must bring its own deadline (`timeoutMs`). */
  replyTo?: ReplyTo;
}

/** A command as the outbox holds it, without its arguments (which only the bridge reads). */
export interface OutboxEntry {
  id: string;
  type: CommandType;
  instanceId?: string;
  issuedAt: string;
  replyTo: ReplyTo | null;
}

export type OutboxStatus = "pending" | "sent" | "received" | "ok" | "error" | "timed_out";

export interface ClusterLinkStatus {
  connected: boolean;
  connectedAt: string | undefined;
  /** The bridge's last hello frame and when it came. */
  lastHello: (Extract<BridgeFrame, { kind: "hello" }> & { at: string }) | null;
  openCommands: number;
  /** Smoothed time from sending a command to the bridge's receipt (ms); null before the first. A loaded bridge answers late. */
  roundTripMs?: number | null;
}

export interface ClusterLinkApi extends Rpc.DurableObjectBranded {
  enqueue(type: CommandType, instanceId: string | undefined, args: Record<string, unknown>, opts?: EnqueueOptions): Promise<OutboxEntry>;
  /** Records an answer; `first` is false for a duplicate. The entry names the answer's owner. */
  complete(commandId: string, ok: boolean, result: unknown): Promise<{ command: OutboxEntry | null; first: boolean }>;
  /** A recorded answer, as the JSON text the bridge sent: the reader parses it with the command's schema. */
  result(commandId: string): Promise<{ status: OutboxStatus; resultJson: string | null } | null>;
  status(): Promise<ClusterLinkStatus>;
  /** Only the bridge's last hello (status()'s `lastHello`), without counting the outbox: what a creation's stack check reads. */
  hello(): Promise<ClusterLinkStatus["lastHello"]>;
}

/** One command of a KV batch (core/platform/kv.ts `KvStore.batch`). */
export type KvOp =
  | { op: "get"; key: string }
  | { op: "take"; key: string; perSecond: number; burst: number };

export type OperatorAction = "promote" | "abort" | "rollback";
export type OperateAnswer = { ok: true; view: DeploymentView } | { ok: false; status: 404 | 409; code: string; message: string };

export interface DeploymentRunApi extends Rpc.DurableObjectBranded {
  start(init: DeploymentInit): Promise<DeploymentView>;
  state(): Promise<DeploymentView | null>;
  onCommandResult(commandId: string, ok: boolean, result: unknown): Promise<void>;
  operate(what: OperatorAction, userId: string | null): Promise<OperateAnswer>;
}

/** One object per rollout (durable/rolloutRun): its plan, waves and per-instance state; the alarm drives it. */
export interface RolloutRunApi extends Rpc.DurableObjectBranded {
  /** Starts the rollout (idempotent: a second call returns the state). */
  start(init: RolloutInit): Promise<Rollout>;
  state(): Promise<Rollout | null>;
  /** pause / resume / approve / abort; refusals come back as values (RPC does not carry error classes). */
  operate(what: RolloutAction, userId: string | null): Promise<RolloutAnswer>;
}

export type FleetEvent = FleetInstanceEvent | FleetAlertEvent | FleetClusterEvent | FleetClusterWarningsEvent;

export interface FleetInstanceEvent {
  event: "instance:status";
  data: { instanceId: string; clusterId: string; status: string; desiredState?: string; reason?: string | null; timestamp: string };
}

/** An alert fired, was acknowledged or resolved (core/alerts/evaluate.ts). */
export interface FleetAlertEvent {
  event: "fleet:alert";
  data: {
    alertId: string; ruleId: string | null; team: string; kind: string; severity: string; subject: string;
    subjectName: string | null; status: string; summary: string; timestamp: string;
  };
}

/**
 * A cluster's bridge connected (its hello: which version, which driver) or its
 * last link closed (durable/clusterLink.ts), so a console shows connection
 * state without polling.
 */
export interface FleetClusterEvent {
  event: "cluster:link";
  data: {
    clusterId: string; state: "connected" | "disconnected";
    bridgeVersion: string | null; driver: string | null; timestamp: string;
  };
}

/** A bridge reported its cluster's warnings (core/fleet/clusterWarnings.ts): the whole list, empty when cleared. */
export interface FleetClusterWarningsEvent {
  event: "cluster:warnings";
  data: { clusterId: string; warnings: ClusterWarning[]; timestamp: string };
}

export interface FleetEventsApi extends Rpc.DurableObjectBranded {
  publish(event: FleetEvent): Promise<number>;
}

/** One of an owner's overflow watcher objects (durable/watcherShards.ts); upgrades reach it through `fetch`. */
export interface WatcherShardApi extends Rpc.DurableObjectBranded {
  publish(text: string, grant: string | null): Promise<number>;
}

export interface KvStoreApi extends Rpc.DurableObjectBranded {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, nx: boolean, ttlSeconds: number): Promise<boolean>;
  incr(key: string, ttlSeconds: number): Promise<number>;
  incrBy(key: string, by: number, ttlSeconds: number): Promise<number>;
  del(key: string): Promise<void>;
  /** Token bucket: 0 when a token was taken, else milliseconds until the next one (core/platform/kv.ts). */
  take(key: string, perSecond: number, burst: number): Promise<number>;
  /** Several get/take commands in one call, in order, none other between them (KvStore.batch). */
  batch(ops: readonly KvOp[]): Promise<(string | number | null)[]>;
}

/** One addition to a counter in the MetricsSink (core/metrics/record.ts builds them). */
export interface CounterAdd {
  series: string;
  labels: Record<string, string>;
  value: number;
}

export interface SinkRow {
  series: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricsSinkApi extends Rpc.DurableObjectBranded {
  add(adds: CounterAdd[]): Promise<void>;
  read(): Promise<SinkRow[]>;
}
