/** Response bodies of /api/clusters, /api/instances and /api/metrics. */
import { z } from "zod";
import { clusterWarningSchema } from "../reports.ts";
import { supportedStackSchema } from "../stacks.ts";
import { timestamp, uuid } from "./common.ts";

export const clusterSchema = z.object({
  id: uuid,
  name: z.string(),
  driver: z.string().meta({ description: "process | kubernetes" }),
  labels: z.record(z.string(), z.string()),
  status: z.string().meta({ description: "registered | connected | disconnected" }),
  lastSeenAt: timestamp.nullable(),
  warnings: z.array(clusterWarningSchema.meta({ id: "ClusterWarning" })).meta({
    description: "What the cluster's bridge last reported wrong with it and only an operator can fix (e.g. `broker_queue_limit`: its MQTT broker drops work queued for an offline session); empty when the bridge found nothing. Each bridge start reports afresh.",
  }),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "Cluster" });

/** Shown once, at registration and rotation: the bridge signs its webhooks with it. */
export const clusterWithSecretSchema = clusterSchema.extend({ webhookSecret: z.string().meta({ description: "whsec_…; shown only here" }) })
  .meta({ id: "ClusterWithSecret" });
/** A cluster as lists show it: the row plus its ClusterLink's view of the bridge (live; /ws/fleet `cluster:link` moves it). */
export const clusterStateSchema = clusterSchema.extend({
  connected: z.boolean().meta({ description: "A bridge holds the command link now" }),
  bridgeVersion: z.string().nullable().meta({ description: "The version the bridge said in its last hello; null before the first" }),
  connectedAt: timestamp.nullable(),
}).meta({ id: "ClusterState" });
export const clusterDetailSchema = clusterStateSchema.extend({ instanceCount: z.number().int() }).meta({ id: "ClusterDetail" });

export const instanceSummarySchema = z.object({
  id: uuid,
  name: z.string(),
  clusterId: uuid,
  team: z.string(),
  status: z.string().meta({ description: "pending | starting | running | stopped | failed | unknown | deploying" }),
  statusReason: z.string().nullable(),
  desiredState: z.string().meta({ description: "running | stopped | destroyed" }),
  resources: z.record(z.string(), z.string()),
  replicas: z.number().int(),
  endpoints: z.record(z.string(), z.string()),
  stack: z.string().meta({ description: "The Node-RED version line it runs, e.g. 5.0 (docs/stacks.md)" }),
  nodeRedVersion: z.string().nullable().meta({ description: "The exact Node-RED release the bridge started, e.g. 5.0.7; null until the bridge says" }),
  labels: z.record(z.string(), z.string()).meta({ description: "Kubernetes-style labels; selectors pick instances by them (docs/rollouts.md)" }),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "InstanceSummary" });

export const instanceDetailSchema = instanceSummarySchema.extend({
  flows: z.array(z.unknown()),
  env: z.record(z.string(), z.string()),
  /** Secret values are write-only. */
  secretNames: z.array(z.string()),
}).meta({ id: "InstanceDetail" });

export const instanceCreatedSchema = instanceDetailSchema.extend({ commandId: z.string() }).meta({ id: "InstanceCreated" });

export const instanceScaledSchema = z.object({
  id: uuid, status: z.string(), desiredState: z.string(), replicas: z.number().int(), commandId: z.string(),
}).meta({ id: "InstanceScaleAccepted" });

export const healthPointSchema = z.object({
  checkedAt: timestamp,
  state: z.string(),
  live: z.boolean(),
  ready: z.boolean(),
  rssBytes: z.number().nullable(),
  heapUsedBytes: z.number().nullable(),
  flowsState: z.string().nullable(),
  missingNodeTypes: z.array(z.string()),
  error: z.string().nullable(),
}).meta({ id: "HealthPoint" });

export const instanceMetricsSchema = z.object({
  instanceId: uuid,
  status: z.string(),
  desiredState: z.string(),
  latest: healthPointSchema.nullable(),
  /** Oldest first. */
  series: z.array(healthPointSchema),
}).meta({ id: "InstanceMetrics" });

const tally = z.record(z.string(), z.number().int());
export const fleetMetricsSchema = z.object({
  instances: z.object({ total: z.number().int(), byStatus: tally, byDesiredState: tally }),
  clusters: z.object({ total: z.number().int(), byStatus: tally }),
  health: z.object({
    reporting: z.number().int(),
    live: z.number().int(),
    ready: z.number().int(),
    withMissingNodeTypes: z.number().int(),
    rssBytesTotal: z.number(),
    heapUsedBytesTotal: z.number(),
  }),
  timestamp,
}).meta({ id: "FleetMetrics" });

export const supportedStackViewSchema = supportedStackSchema.meta({ id: "Stack" });
export const clusterStacksSchema = z.object({
  clusterId: uuid,
  /** What the bridge's last hello listed; empty when it has not reported stacks (not connected yet, or an older bridge). */
  items: z.array(supportedStackViewSchema),
  reported: z.boolean().meta({ description: "false: the bridge has not said which stacks it runs" }),
  reportedAt: timestamp.nullable(),
  default: z.string().meta({ description: "What a new instance runs when it names no stack" }),
}).meta({ id: "ClusterStacks" });
