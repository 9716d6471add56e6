/**
 * Rollouts (/api/rollouts): one flow version to every instance a label
 * selector picks, in waves, each instance's change a normal blue-green
 * deployment (docs/rollouts.md). The request, the view GET answers and
 * /ws/rollouts/:id sends, and the events; shared by the API, the RolloutRun
 * Durable Object, pipelines, CI webhooks and the CLI.
 */
import { z } from "zod";
import { createDeploymentSchema, HOLD_ORDERS } from "../deployments.ts";
import { timestamp, uuid } from "./common.ts";

export const ROLLOUT_STATUSES = ["running", "paused", "awaiting_approval", "completed", "failed", "aborted", "rolling_back"] as const;
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number];
/** Still doing something (or waiting for a person): at most these may change. */
export const ACTIVE_ROLLOUT_STATUSES: readonly RolloutStatus[] = ["running", "paused", "awaiting_approval", "rolling_back"];

/** A wave: waiting its turn, deploying, done, stopped by its failure budget, rolled back after that, or cut short by an abort. */
export const WAVE_STATUSES = ["pending", "running", "completed", "failed", "rolling_back", "rolled_back", "aborted"] as const;
export type WaveStatus = (typeof WAVE_STATUSES)[number];

/**
 * One instance in a wave. `completed`: its deployment switched to the new version (it may still be inside its
 * rollback window). `skipped`: never started (the wave stopped first, an abort, or it was gone by its turn).
 */
export const ROLLOUT_INSTANCE_STATUSES = ["pending", "deploying", "completed", "failed", "rolled_back", "skipped"] as const;
export type RolloutInstanceStatus = (typeof ROLLOUT_INSTANCE_STATUSES)[number];

/**
 * Why a rollout (or one of its instances) failed, named once. An instance's `code` is otherwise the deployment's
 * own failure code (protocol/deployments.ts FAILURE_CODES) or the admission refusal's API error code
 * (`POLICY_DENIED`, `QUOTA_EXCEEDED`, `instance_not_running`, `deployment_in_progress`, `instance_not_found`).
 */
export const ROLLOUT_FAILURE_CODES = [
  /** More instances of a wave failed than its failure budget allows. */
  "failure_budget_exceeded",
  /** POST /abort. */
  "operator_abort",
  /** A wave's rollback could not restore every instance (see each instance's reason). */
  "rollback_incomplete",
] as const;
export type RolloutFailureCode = (typeof ROLLOUT_FAILURE_CODES)[number];

/** A cumulative wave target: an instance count, or a share of the selection ("10%", rounded up). */
export const waveTargetSchema = z.union([
  z.number().int().positive().max(1_000_000),
  z.string().regex(/^(100|[1-9][0-9]?)%$/, 'a percentage is "1%" to "100%"'),
]).meta({ description: 'Cumulative: how many instances (or "N%" of the selection, rounded up) have the new version once this wave is done' });
export type WaveTarget = z.infer<typeof waveTargetSchema>;

export const pauseSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("timed"), seconds: z.number().int().min(0).max(86_400) }),
  z.strictObject({ kind: z.literal("approval") }),
]).meta({ description: 'Between waves: wait `seconds`, or until POST /api/rollouts/:id/approve' });
export type RolloutPause = z.infer<typeof pauseSchema>;

export const failureBudgetSchema = z.strictObject({
  /** The wave stops when more than this many of its instances failed. */
  maxFailedInstances: z.number().int().min(0).optional(),
  /** …or when more than this share (of the wave's instances, in percent) failed. */
  maxFailedPercent: z.number().min(0).max(100).optional(),
}).refine((b) => b.maxFailedInstances !== undefined || b.maxFailedPercent !== undefined, "give maxFailedInstances, maxFailedPercent or both")
  .meta({ description: "Per wave; exceeding either limit stops the rollout (failed)" });
export type FailureBudget = z.infer<typeof failureBudgetSchema>;

const d = createDeploymentSchema.shape;
/** POST /api/deployments's per-deployment options, the same schemas, applied to every instance's deployment. */
export const rolloutDeploymentOptionsSchema = z.strictObject({
  strategy: d.strategy,
  verify: d.verify,
  drainTimeoutSeconds: d.drainTimeoutSeconds,
  analysisSeconds: d.analysisSeconds,
  maxErrorRate: d.maxErrorRate,
  rollbackWindowSeconds: d.rollbackWindowSeconds,
  holdDuring: z.enum(HOLD_ORDERS).default("switch"),
  timeouts: d.timeouts,
});
export type RolloutDeploymentOptions = z.infer<typeof rolloutDeploymentOptionsSchema>;

export const DEFAULT_WAVES: WaveTarget[] = [1, "10%", "50%", "100%"];

export const rolloutCreateSchema = z.strictObject({
  /** A label selector (`env=staging,region in (eu,us)`); it must pick at least one live instance when the rollout starts (409 `empty_selection`). */
  selector: z.string().min(1).max(1024),
  /** The new flows (Node-RED flow JSON, as POST /api/deployments takes them); or `versionId`. */
  flows: d.flows,
  /** A stored flow version (GET /api/deployments/versions): its flows go to every selected instance. */
  versionId: z.uuid().optional(),
  /** Cumulative targets, each at least the one before once resolved; the last must cover the whole selection ("100%", or a count ≥ its size: 422 `waves_incomplete`). */
  waves: z.array(waveTargetSchema).min(1).max(20).default(() => [...DEFAULT_WAVES]),
  /** Deployments at once inside a wave. */
  parallelism: z.number().int().min(1).max(100).default(5),
  pause: pauseSchema.default({ kind: "timed", seconds: 0 }),
  failureBudget: failureBudgetSchema.default({ maxFailedInstances: 0 }),
  /** When a wave exceeds its budget: roll back its instances that switched (default), or leave them on the new version. */
  onFailure: z.enum(["leave", "rollback_wave"]).default("rollback_wave"),
  /** Instances that match the selector once the rollout has started: deploy them after its last wave, or not. */
  lateJoiners: z.enum(["after_completion", "ignore"]).default("after_completion"),
  deployment: rolloutDeploymentOptionsSchema.default(rolloutDeploymentOptionsSchema.parse({})),
  description: z.string().max(500).optional(),
}).refine((v) => (v.flows === undefined) !== (v.versionId === undefined), { message: "give exactly one of flows or versionId", path: ["flows"] })
  .meta({ id: "RolloutCreate" });
/** The request after defaults: what startRollout and the RolloutRun work with. */
export type RolloutCreate = z.infer<typeof rolloutCreateSchema>;
/** The request as a client writes it (defaults optional). */
export type RolloutCreateInput = z.input<typeof rolloutCreateSchema>;
/** The names the contract uses: `RolloutCreate` (request) and `Rollout` (response), each a schema and its type. */
export const RolloutCreate = rolloutCreateSchema;

export const rolloutInstanceSchema = z.object({
  instanceId: uuid,
  /** Its deployment once one started (GET /api/deployments/:id for its phases and message counts). */
  deploymentId: uuid.nullable(),
  status: z.enum(ROLLOUT_INSTANCE_STATUSES),
  /** Why it failed, was rolled back or skipped, in words. */
  reason: z.string().optional(),
  /** The deployment's failure code or the admission refusal's error code. */
  code: z.string().optional(),
  /** The deployment that restored the previous version when its rollback window had closed (rollback_wave). */
  rollbackDeploymentId: uuid.optional(),
}).meta({ id: "RolloutInstance" });
export type RolloutInstance = z.infer<typeof rolloutInstanceSchema>;

export const rolloutWaveSchema = z.object({
  index: z.number().int().nonnegative(),
  /** Cumulative instance count this wave brings the rollout to (the request's target resolved over the selection). */
  target: z.number().int().nonnegative(),
  status: z.enum(WAVE_STATUSES),
  /** The late joiners' wave, after the planned ones (lateJoiners "after_completion"). */
  lateJoiners: z.boolean().optional(),
  startedAt: timestamp.nullable(),
  completedAt: timestamp.nullable(),
  instances: z.array(rolloutInstanceSchema),
}).meta({ id: "RolloutWave" });
export type RolloutWave = z.infer<typeof rolloutWaveSchema>;

export const rolloutSummarySchema = z.object({
  total: z.number().int().nonnegative(),
  completed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  /** Not yet settled: pending or deploying. */
  pending: z.number().int().nonnegative(),
}).meta({ id: "RolloutSummary" });

/** What GET /api/rollouts/:id answers, POST /api/rollouts and the actions answer, and /ws/rollouts/:id sends first. */
export const rolloutSchema = z.object({
  id: uuid,
  status: z.enum(ROLLOUT_STATUSES),
  selector: z.string(),
  createdBy: uuid.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
  completedAt: timestamp.nullable(),
  description: z.string().nullable(),
  /** SHA-256 (hex) of the flows being rolled out, and the stored version they came from when the request named one. */
  flowsDigest: z.string(),
  versionId: uuid.nullable(),
  /** The request's plan, after defaults. */
  plan: z.object({
    waves: z.array(waveTargetSchema),
    parallelism: z.number().int(),
    pause: pauseSchema,
    failureBudget: z.object({ maxFailedInstances: z.number().int().optional(), maxFailedPercent: z.number().optional() }),
    onFailure: z.enum(["leave", "rollback_wave"]),
    lateJoiners: z.enum(["after_completion", "ignore"]),
  }),
  /** The wave being worked on (or last worked on); null before the first starts. */
  currentWave: z.number().int().nonnegative().nullable(),
  /** While a timed pause runs between waves: when the next wave starts. */
  nextWaveAt: timestamp.nullable(),
  waves: z.array(rolloutWaveSchema),
  summary: rolloutSummarySchema,
  failure: z.object({ code: z.string(), message: z.string() }).nullable(),
  /**
   * Instances that match the selector but were not in the selection taken at start (docs/rollouts.md, "Late
   * joiners"): the policy, when the selector was evaluated again after the last planned wave (null: not yet, or
   * "ignore"; an instance that matches only after it is not followed), how many got a late wave, and how many of
   * those were skipped (not running yet: `instance_not_running`; another rollout has it: `rollout_conflict`).
   */
  lateJoiners: z.object({
    policy: z.enum(["after_completion", "ignore"]),
    checkedAt: timestamp.nullable(),
    added: z.number().int().nonnegative(),
    skipped: z.number().int().nonnegative(),
  }).optional(),
}).meta({ id: "Rollout" });
export type Rollout = z.infer<typeof rolloutSchema>;
export const Rollout = rolloutSchema;

/** A row of GET /api/rollouts (the Postgres projection; GET /:id for waves and instances). */
export const rolloutListItemSchema = rolloutSchema.pick({
  id: true, status: true, selector: true, createdBy: true, createdAt: true, updatedAt: true, completedAt: true,
  description: true, flowsDigest: true, versionId: true, currentWave: true, summary: true, failure: true,
}).extend({ waveCount: z.number().int().nonnegative() }).meta({ id: "RolloutListItem" });
export type RolloutListItem = z.infer<typeof rolloutListItemSchema>;

export const listRolloutsQuery = z.strictObject({
  status: z.enum(ROLLOUT_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

/** Frames on /ws/rollouts/:id: the whole view first and on every wave change, then per-instance changes. */
export const rolloutEventSchema = z.discriminatedUnion("event", [
  z.object({ event: z.literal("rollout:state"), data: rolloutSchema }),
  z.object({
    event: z.literal("rollout:wave"),
    data: z.object({ rolloutId: uuid, index: z.number().int(), status: z.enum(WAVE_STATUSES), rolloutStatus: z.enum(ROLLOUT_STATUSES), timestamp }),
  }),
  z.object({
    event: z.literal("rollout:instance"),
    data: rolloutInstanceSchema.extend({ rolloutId: uuid, wave: z.number().int(), timestamp }),
  }),
]);
export type RolloutEvent = z.infer<typeof rolloutEventSchema>;
