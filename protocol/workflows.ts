/**
 * Checkpointed workflows (docs/agents.md "Checkpoint and replay"), shared by
 * the node package's records, the bridge that forwards them, and the control
 * plane that stores them and answers operators' replay/cancel requests.
 */
import { z } from "zod";

export const CHECKPOINT_PHASES = ["started", "completed", "finished", "failed", "cancelled", "handed_over"] as const;
export type CheckpointPhase = (typeof CHECKPOINT_PHASES)[number];
export const WORKFLOW_STATES = ["running", "completed", "failed", "cancelled"] as const;
export type WorkflowState = (typeof WORKFLOW_STATES)[number];
export const WORKFLOW_ACTIONS = ["replay", "cancel"] as const;

/** MQTT topic an instance's redforge-checkpoint nodes publish to (QoS 1); the bridge subscribes the filter. */
export const CHECKPOINT_TOPIC_FILTER = "redforge/checkpoints/+";
export const checkpointTopic = (instanceId: string) => `redforge/checkpoints/${instanceId}`;
export function instanceOfCheckpointTopic(topic: string): string | undefined {
  const m = /^redforge\/checkpoints\/([^/]+)$/.exec(topic);
  return m?.[1];
}

/** The control plane's signed endpoint for checkpoint records and directives (bridge side). */
export const checkpointWebhookPath = (clusterId: string) => `/api/webhooks/clusters/${encodeURIComponent(clusterId)}/checkpoints`;

/** What a phase means for the whole run. */
export function stateOfPhase(phase: CheckpointPhase): WorkflowState {
  if (phase === "finished") return "completed";
  if (phase === "failed") return "failed";
  if (phase === "cancelled") return "cancelled";
  return "running";
}

const name = z.string().min(1).max(255);
const errorShape = z.object({ code: z.string().max(100), message: z.string().max(2000) });

/** One record as lib/checkpointRuntime.js writes it. */
export const checkpointRecordSchema = z.object({
  checkpointId: z.uuid(),
  instanceId: z.uuid(),
  runtimeId: z.string().max(80).nullable().optional(),
  workflowId: name,
  kind: name,
  step: name,
  phase: z.enum(CHECKPOINT_PHASES),
  state: z.unknown(),
  inputHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  completed: z.array(name).max(10_000).default([]),
  at: z.iso.datetime({ offset: true }),
  error: errorShape.optional(),
  resume: z.enum(["after", "before"]).optional(),
  resumedFrom: z.string().max(40).optional(),
});
export type CheckpointRecord = z.infer<typeof checkpointRecordSchema>;

/** What the bridge did with a directive it was given. */
export const directiveResultSchema = z.object({
  id: z.uuid(),
  action: z.enum(WORKFLOW_ACTIONS),
  outcome: z.enum(["applied", "failed"]),
  error: errorShape.optional(),
});
export type DirectiveResult = z.infer<typeof directiveResultSchema>;

/** The bridge's POST: records (may be none: then it only asks for directives) and the outcome of earlier directives. */
export const checkpointBatchSchema = z.object({
  records: z.array(checkpointRecordSchema).max(100).default([]),
  results: z.array(directiveResultSchema).max(100).default([]),
});
export type CheckpointBatch = z.infer<typeof checkpointBatchSchema>;

/** An operator's request the bridge applies on the instance's serving runtime. `record`: where a replay starts. */
export const directiveSchema = z.object({
  id: z.uuid(),
  instanceId: z.uuid(),
  workflowId: name,
  action: z.enum(WORKFLOW_ACTIONS),
  record: z.looseObject({ workflowId: name, kind: name, step: name, phase: z.string(), state: z.unknown(), completed: z.array(name) }).optional(),
});
export type Directive = z.infer<typeof directiveSchema>;

export const checkpointBatchAnswerSchema = z.object({
  accepted: z.literal(true),
  stored: z.number().int().nonnegative(),
  directives: z.array(directiveSchema),
});
