/**
 * Reports (bridge → control plane), each one signed Standard Webhook to
 * POST /api/webhooks/clusters/:clusterId. Verified before parsing, then
 * validated here; both sides import these schemas.
 */
import { z } from "zod";

export const INSTANCE_STATES = ["starting", "running", "stopped", "failed", "unknown"] as const;

/** Where an instance answers, as the bridge reports it; the console links to these, so only http(s) (never javascript:, data:). */
const endpointUrl = z.url({ protocol: /^https?$/ }).max(2048);
export const endpointsSchema = z.object({ admin: endpointUrl, front: endpointUrl.optional() });

const tally = z.number().int().nonnegative();
/** Messages counted by the RedForge gate (in) and exit nodes (out, errors) since the Node-RED process started. */
export const messageCountersSchema = z.object({ in: tally, out: tally, errors: tally });
/** One flow's counters (flowId: the Node-RED tab id); the gate reports its busiest flows, at most 100. */
export const flowMessagesSchema = messageCountersSchema.extend({ flowId: z.string().max(64) });

/**
 * The optional fields came later (cpuSeconds, messages, flows: issue 13): a bridge from before them
 * still reports, and zod drops fields a control plane does not know, so either side may be older.
 */
export const instanceHealthSchema = z.object({
  instanceId: z.uuid(),
  state: z.enum(INSTANCE_STATES),
  live: z.boolean(),
  ready: z.boolean(),
  rssBytes: z.number().nonnegative().optional(),
  heapUsedBytes: z.number().nonnegative().optional(),
  /** The Node-RED process's CPU time (user + system) since it started; resets when the process restarts. */
  cpuSeconds: z.number().nonnegative().optional(),
  messages: messageCountersSchema.optional(),
  flows: z.array(flowMessagesSchema).max(100).optional(),
  flowsState: z.enum(["start", "stop"]).optional(),
  missingNodeTypes: z.array(z.string()).max(500),
  checkedAt: z.iso.datetime(),
  error: z.string().max(2000).optional(),
});
export type InstanceHealthWire = z.infer<typeof instanceHealthSchema>;

/**
 * What the bridge found wrong with its cluster that an operator must fix outside RedForge (issue 12).
 * `broker_queue_limit`: the MQTT broker drops QoS 1 messages queued for an offline persistent
 * session (bridge/brokerCheck.ts), so held work is not durable across a restart. A new code is a
 * new entry here; a control plane that does not know it refuses the report (400) rather than show
 * something it cannot name.
 */
export const CLUSTER_WARNING_CODES = ["broker_queue_limit"] as const;
export const MAX_CLUSTER_WARNINGS = 10;
export const MAX_WARNING_MESSAGE = 2000;
export const clusterWarningSchema = z.object({
  code: z.enum(CLUSTER_WARNING_CODES),
  message: z.string().min(1).max(MAX_WARNING_MESSAGE),
  detectedAt: z.iso.datetime(),
});
export type ClusterWarning = z.infer<typeof clusterWarningSchema>;

export const reportSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("command.result"),
    commandId: z.string().min(1).max(64),
    status: z.enum(["ok", "error"]),
    result: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.string(), message: z.string().max(4000) }).optional(),
  }),
  z.object({
    type: z.literal("instance.status"),
    instanceId: z.uuid(),
    state: z.enum(INSTANCE_STATES),
    reason: z.string().max(2000).optional(),
    endpoints: endpointsSchema.optional(),
  }),
  z.object({
    type: z.literal("health.report"),
    /** The health.report command this answers, if any (a sweep). */
    commandId: z.string().max(64).optional(),
    instances: z.array(instanceHealthSchema).max(5000),
  }),
  z.object({
    type: z.literal("cluster.warnings"),
    /** Every warning the bridge holds now: it replaces the cluster's list, so an empty one clears them (a fixed broker, after a restart). */
    warnings: z.array(clusterWarningSchema).max(MAX_CLUSTER_WARNINGS),
  }),
]);
export type Report = z.infer<typeof reportSchema>;
