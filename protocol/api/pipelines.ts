/**
 * Pipelines (docs/ci.md): ordered stages, each a label selector with rollout
 * defaults; a promotion puts a version on one stage through a rollout, after a
 * second person's approval when the stage asks for one (four-eyes).
 */
import { z } from "zod";
import { flowsShape } from "../shapes.ts";
import { timestamp, uuid } from "./common.ts";
import { failureBudgetSchema, pauseSchema, rolloutCreateSchema, rolloutDeploymentOptionsSchema, waveTargetSchema } from "./rollouts.ts";

export const stageName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "stage names are lowercase letters, digits, - and _ (at most 63)");
export const pipelineName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/, "pipeline names are letters, digits, space . _ - (at most 100)");

/**
 * What a stage's rollouts use unless the promotion says otherwise: the
 * rollout request's own fields (protocol/api/rollouts.ts), checked against it
 * when the pipeline is saved and again when a promotion starts.
 */
export const stageRolloutSchema = z.strictObject({
  waves: z.array(waveTargetSchema).min(1).max(20).optional(),
  parallelism: rolloutCreateSchema.shape.parallelism.unwrap().optional(),
  pause: pauseSchema.optional(),
  failureBudget: failureBudgetSchema.optional(),
  onFailure: z.enum(["leave", "rollback_wave"]).optional(),
  lateJoiners: z.enum(["after_completion", "ignore"]).optional(),
  deployment: rolloutDeploymentOptionsSchema.optional(),
});
export type StageRollout = z.infer<typeof stageRolloutSchema>;

export const pipelineStageSchema = z.strictObject({
  name: stageName,
  /** A label selector (`env=staging,region in (eu,us)`) picking the stage's instances. */
  selector: z.string().min(1).max(1000),
  /** A promotion to this stage waits for a second person with deployments:approve. */
  requiresApproval: z.boolean().default(false),
  rollout: stageRolloutSchema.default({}),
});
export type PipelineStage = z.infer<typeof pipelineStageSchema>;

const stagesSchema = z.array(pipelineStageSchema).min(1).max(20)
  .refine((s) => new Set(s.map((x) => x.name)).size === s.length, "stage names must be unique within a pipeline");

export const createPipelineSchema = z.strictObject({
  name: pipelineName,
  team: z.string().min(1).max(100).optional(),
  stages: stagesSchema,
});
export const updatePipelineSchema = z.strictObject({
  team: z.string().min(1).max(100).nullable().optional(),
  stages: stagesSchema.optional(),
});

/** Exactly one source: a stored version, a flow file, or what another stage runs now. */
export const promoteSchema = z.strictObject({
  versionId: z.uuid().optional(),
  flows: flowsShape.optional(),
  fromStage: stageName.optional(),
  /** Overrides of the stage's rollout defaults for this promotion only. */
  rollout: stageRolloutSchema.optional(),
  description: z.string().max(500).optional(),
}).refine((v) => [v.versionId, v.flows, v.fromStage].filter((x) => x !== undefined).length === 1, {
  message: "give exactly one of versionId, flows or fromStage", path: ["versionId"],
});
export type PromoteRequest = z.infer<typeof promoteSchema>;

export const PROMOTION_STATUSES = ["awaiting_approval", "rejected", "rolling_out", "completed", "failed"] as const;
export type PromotionStatus = (typeof PROMOTION_STATUSES)[number];

/** Where a promotion's version came from. */
export const promotionSourceSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("version"), versionId: uuid }),
  z.object({ kind: z.literal("flows") }),
  z.object({ kind: z.literal("stage"), fromStage: z.string(), promotionId: uuid }),
]);
export type PromotionSource = z.infer<typeof promotionSourceSchema>;

export const promotionSchema = z.object({
  id: uuid,
  pipelineId: uuid,
  stage: z.string(),
  status: z.enum(PROMOTION_STATUSES),
  source: promotionSourceSchema,
  /** The stored version promoted, when the source named one. */
  versionId: uuid.nullable(),
  /** SHA-256 (hex) of the promoted flow file, when the source carried flows. */
  digest: z.string().nullable(),
  rolloutId: uuid.nullable(),
  requestedBy: uuid.nullable(),
  decidedBy: uuid.nullable(),
  decidedAt: timestamp.nullable(),
  reason: z.string().nullable(),
  failure: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "Promotion" });
export type PromotionView = z.infer<typeof promotionSchema>;

export const pipelineSchema = z.object({
  id: uuid,
  name: z.string(),
  team: z.string().nullable(),
  stages: z.array(pipelineStageSchema.extend({
    /** What the stage runs: its last completed promotion (null: nothing promoted yet). */
    current: z.object({ promotionId: uuid, versionId: uuid.nullable(), digest: z.string().nullable(), completedAt: timestamp }).nullable(),
    /** A promotion of this stage that is waiting for approval or rolling out. */
    pending: z.object({ promotionId: uuid, status: z.enum(PROMOTION_STATUSES) }).nullable(),
  })),
  /** The latest promotions, newest first (at most 50). */
  promotions: z.array(promotionSchema),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "Pipeline" });
export type PipelineView = z.infer<typeof pipelineSchema>;

export const pipelineSummarySchema = z.object({
  id: uuid, name: z.string(), team: z.string().nullable(), stages: z.array(z.string()), createdAt: timestamp, updatedAt: timestamp,
}).meta({ id: "PipelineSummary" });

export const rejectSchema = z.strictObject({ reason: z.string().max(500).optional() });
