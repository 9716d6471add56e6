/**
 * Blue-green deployments: the request an operator sends, the phases and
 * statuses a DeploymentRun moves through, and the events its watchers get
 * (/ws/deployments/:id). Shared by the API, the Durable Object and the console.
 */
import { z } from "zod";
import { smokeChecksSchema, smokeResultSchema, type SmokeChecks } from "./commands.ts";
import { stackIdSchema } from "./stacks.ts";

export const PHASES = ["DRAIN", "DEPLOY", "VERIFY", "RESUME", "AUDIT", "CLEANUP", "ROLLING_BACK"] as const;
export type Phase = (typeof PHASES)[number];

export const STATUSES = ["pending", "in_progress", "paused", "completed", "failed", "rolled_back"] as const;
export type DeploymentStatus = (typeof STATUSES)[number];
export const ACTIVE_STATUSES: DeploymentStatus[] = ["pending", "in_progress", "paused"];

export const STRATEGIES = ["blue-green"] as const;

/** The steps of the blue-green strategy (durable/deploymentRun/steps.ts), each one command to the bridge (AUDIT: a record). */
export const DEPLOYMENT_STEPS = ["prepare", "drain", "deploy", "verify", "switch", "analysis", "audit", "cleanup", "rollback"] as const;
export type DeploymentStep = (typeof DEPLOYMENT_STEPS)[number];

/** The steps whose deadline a deployment may set (the drain's is `drainTimeoutSeconds` plus a margin; AUDIT has none). */
export const TIMED_STEPS = ["prepare", "deploy", "verify", "switch", "analysis", "cleanup", "rollback"] as const;
export type TimedStep = (typeof TIMED_STEPS)[number];

const stepSeconds = z.number().int().min(5).max(3600);
/**
 * Step deadlines for a slow cluster: `scale` multiplies every deadline of the step table (and the
 * drain's margin); a step named here gets exactly that many seconds. Unset, the Worker's
 * REDFORGE_DEPLOY_TIMEOUT_SCALE applies, lengthened further when the cluster's bridge acknowledges
 * commands slowly (docs/deployments.md, "Deadlines").
 */
export const deploymentTimeoutsSchema = z.object({
  scale: z.number().min(0.5).max(20).optional(),
  prepare: stepSeconds.optional(),
  deploy: stepSeconds.optional(),
  verify: stepSeconds.optional(),
  switch: stepSeconds.optional(),
  analysis: stepSeconds.optional(),
  cleanup: stepSeconds.optional(),
  rollback: stepSeconds.optional(),
}).strict();
export type DeploymentTimeoutsRequest = z.infer<typeof deploymentTimeoutsSchema>;

/** Which steps new work is held through: see `holdDuring` below and durable/deploymentRun/steps.ts. */
export const HOLD_ORDERS = ["deploy", "switch"] as const;
export type HoldDuring = (typeof HOLD_ORDERS)[number];

/**
 * Why a deployment rolled back or failed, named once (as Argo Rollouts names
 * its condition reasons); the API shows the code beside a human message, and
 * docs/deployments.md says what each means to an operator.
 */
export const FAILURE_CODES = [
  /** VERIFY: more smoke checks failed (a verdict, not a timeout) than `failureLimit` allows. */
  "smoke_failed",
  /** prepare: green did not start (crash loop, image pull, not ready in time). */
  "green_failed",
  /**
   * prepare, deploy or switch was not answered before its deadline. (VERIFY and the post-switch analysis
   * retry and then pause instead: a check that cannot complete is inconclusive, not failed; the rollback
   * and cleanup retry.)
   */
  "deadline_exceeded",
  /** DRAIN: the drain itself was not answered before `drainTimeoutMs` plus its margin. */
  "drain_timeout",
  /** POST /abort on a paused deployment. */
  "operator_abort",
  /** POST /rollback. */
  "operator_rollback",
  /** RESUME: green's error rate after the switch was above `maxErrorRate`. */
  "analysis_failed",
  /**
   * A step's command failed on the bridge for another reason (its code is in the message). For VERIFY and the
   * analysis only codes that say green is broken (`not_running`…); `driver_error`, `internal`… are retried.
   */
  "step_failed",
  /** The bridge answered a step with a result that does not parse. */
  "invalid_result",
  /**
   * A rollback that kept failing (it is retried until it succeeds) was given up by a person (POST /abort while it
   * retries): blue may not be serving and held work may not have been replayed; `metrics.messagesLost` counts it.
   */
  "rollback_failed",
  /** prepare: the bridge cannot run the target stack (it refused it, or it is too old to start one); blue was never touched. */
  "stack_unsupported",
  /** The cluster's driver cannot run blue-green deployments; blue was never touched. */
  "not_implemented",
  /** The control plane could not start the deployment's DeploymentRun. */
  "start_failed",
  /**
   * The control plane stopped (a workerd restart, a crash) after recording the deployment and before its DeploymentRun
   * began; settled when the instance's next deployment starts (core/deployments/orphans.ts). Nothing reached the instance.
   */
  "start_interrupted",
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export const deploymentErrorSchema = z.object({ code: z.enum(FAILURE_CODES), message: z.string() });
export type DeploymentError = z.infer<typeof deploymentErrorSchema>;

export const createDeploymentSchema = z.object({
  instanceId: z.uuid(),
  strategy: z.string().default("blue-green"),
  /** The new flows (Node-RED flow JSON array); or `versionId` of a stored version (a redeploy of an older one). */
  flows: z.array(z.record(z.string(), z.unknown())).max(10_000).optional(),
  versionId: z.uuid().optional(),
  /**
   * A runtime upgrade: green runs this stack (a Node-RED version line, "5.0") and the instance's
   * stack becomes it when the deployment completes. Without flows or versionId, green runs the
   * instance's current flows. Absent: green runs the instance's own stack.
   */
  stack: stackIdSchema.optional(),
  verify: smokeChecksSchema.optional(),
  /** How long blue's in-flight messages may take to finish before the stragglers are left to blue (stays warm). */
  drainTimeoutSeconds: z.number().int().min(1).max(600).default(30),
  /** Post-switch analysis: watch green this long; roll back above `maxErrorRate`. */
  analysisSeconds: z.number().int().min(0).max(3600).default(5),
  maxErrorRate: z.number().min(0).max(1).default(0.05),
  /** Blue stays warm this long after the switch; `POST /rollback` works until then. */
  rollbackWindowSeconds: z.number().int().min(0).max(86_400).default(60),
  /**
   * "switch" (default, DESIGN §3): green is deployed and verified while blue serves; blue drains just before RESUME, so work
   * waits only for the switch (DEPLOY → VERIFY → DRAIN → RESUME). "deploy" (opt-in, for flows that must never run two versions
   * at once): blue drains first and new work is held through DEPLOY and VERIFY (DRAIN → DEPLOY → VERIFY → RESUME).
   * See docs/deployments.md.
   */
  holdDuring: z.enum(HOLD_ORDERS).default("switch"),
  timeouts: deploymentTimeoutsSchema.optional(),
  description: z.string().max(500).optional(),
  /** The new flows from a blueprint (GET /api/blueprints; `<pipeline>/<role>` for a pipeline's instance) instead of `flows`. */
  blueprint: z.string().regex(/^[a-z0-9-]+(\/[a-z0-9-]+)?$/, "a blueprint id (GET /api/blueprints), or <pipeline>/<role>").max(128).optional(),
}).strict().refine((v) => [v.flows, v.versionId, v.blueprint].filter((x) => x !== undefined).length <= 1 && (v.flows !== undefined || v.versionId !== undefined || v.blueprint !== undefined || v.stack !== undefined), {
  message: "give exactly one of flows, versionId or blueprint, or none with stack (a runtime upgrade of the current flows)", path: ["flows"],
});
export type CreateDeployment = z.infer<typeof createDeploymentSchema>;

export const listDeploymentsQuery = z.object({
  instanceId: z.uuid().optional(),
  status: z.enum(STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

export const phaseRecordSchema = z.object({
  phase: z.enum(PHASES),
  status: z.enum(["started", "completed", "failed", "paused"]),
  at: z.iso.datetime(),
  detail: z.string().optional(),
});
export type PhaseRecord = z.infer<typeof phaseRecordSchema>;

const tally = z.number().int().nonnegative();
/**
 * How `messagesLost` and `messagesDuplicated` were counted, from the bridge's counters (docs/deployments.md,
 * "What a deployment cost"). Per hand-over of a hold (the switch, a rollback): lost = held − replayed
 * (MQTT) and held − released (HTTP) when positive; duplicated = replayed − held, only where the bridge
 * counted what it held at the hand-over.
 */
export const accountingSchema = z.object({
  /** MQTT work the gates republished to the hold queue, and what the bridge replayed from it. */
  mqttHeld: tally, mqttReplayed: tally, mqttLost: tally, mqttDuplicated: tally,
  /** HTTP requests held (front and gate) and released to a runtime. */
  httpHeld: tally, httpReleased: tally, httpLost: tally,
  /** Answered 503 + Retry-After because the front's hold was full: the client was told, the work was not done. Not in lost. */
  httpRefused: tally,
  /** Still in flight when a runtime was stopped (green at a rollback, blue at cleanup): presumed lost. */
  stoppedInFlight: tally,
  /** In-flight entries green's gate dropped after their TTL since the switch (post-switch analysis): presumed lost. */
  expired: tally,
  /** Held when the deployment ended without a hand-over (a rollback given up): lost. */
  stranded: tally,
  /** false when a count the formula needs was not reported; `unseen` says which, and the totals are lower bounds. */
  exact: z.boolean(),
  unseen: z.array(z.string()),
});
export type Accounting = z.infer<typeof accountingSchema>;

/** Nothing counted yet: exact until a count the formula needs goes unreported. */
export function emptyAccounting(): Accounting {
  return {
    mqttHeld: 0, mqttReplayed: 0, mqttLost: 0, mqttDuplicated: 0, httpHeld: 0, httpReleased: 0, httpLost: 0,
    httpRefused: 0, stoppedInFlight: 0, expired: 0, stranded: 0, exact: true, unseen: [],
  };
}

export const deploymentMetricsSchema = z.object({
  messagesHeld: z.number().int().nonnegative(),
  messagesReplayed: z.number().int().nonnegative(),
  /** mqttLost + httpLost + stoppedInFlight + expired + stranded of `accounting`: measured, not assumed. */
  messagesLost: z.number().int().nonnegative(),
  /** Replayed more than once (accounting.mqttDuplicated); 0 in deployments from before it was counted. */
  messagesDuplicated: z.number().int().nonnegative().default(0),
  accounting: accountingSchema.optional(),
  inFlightAtDrain: z.number().int().nonnegative(),
  stragglers: z.number().int().nonnegative(),
  drainMs: z.number().optional(),
  /** When the front began holding new work (bridge clock), and when work flowed again after the switch. */
  holdingSince: z.iso.datetime().optional(),
  switchedAt: z.iso.datetime().optional(),
  holdMs: z.number().optional(),
  totalMs: z.number().optional(),
  phaseMs: z.partialRecord(z.enum(PHASES), z.number()),
  /** VERIFY's verdict and checks, as the bridge answered them. */
  smoke: smokeResultSchema.optional(),
  /** The post-switch analysis (error rate) as the bridge answered it. */
  analysis: smokeResultSchema.optional(),
});
export type DeploymentMetrics = z.infer<typeof deploymentMetricsSchema>;

/**
 * A deployment that needs a person, or is working around a failure by itself (Argo Rollouts' paused and
 * degraded conditions, in one field): a check or rollback being retried, or a pause waiting for POST
 * /promote or /abort. null while nothing needs saying.
 */
export const attentionSchema = z.object({
  /** retrying: the step is tried again by itself at `nextAttemptAt`; waiting: paused until POST /promote or /abort. */
  state: z.enum(["retrying", "waiting"]),
  step: z.enum(DEPLOYMENT_STEPS),
  /** Attempts made so far, the first included. */
  attempts: z.number().int().nonnegative(),
  /** Attempts after which a check stops retrying and pauses; null: retried until it succeeds or a person acts (a rollback). */
  maxAttempts: z.number().int().positive().nullable(),
  /** Why the last attempt did not settle it (a missed deadline, the bridge's error, the inconclusive checks). */
  lastError: z.string().nullable(),
  nextAttemptAt: z.iso.datetime().nullable(),
  /** When this condition began. */
  since: z.iso.datetime(),
  /** What is happening and what a person can do, in words. */
  message: z.string(),
});
export type Attention = z.infer<typeof attentionSchema>;

/** What GET /api/deployments/:id returns and late subscribers first receive. */
export const deploymentViewSchema = z.object({
  id: z.uuid(),
  instanceId: z.uuid(),
  strategy: z.string(),
  status: z.enum(STATUSES),
  phase: z.enum(PHASES).nullable(),
  progress: z.number().min(0).max(1),
  blue: z.string().optional(),
  green: z.string().optional(),
  switched: z.boolean(),
  history: z.array(phaseRecordSchema),
  metrics: deploymentMetricsSchema,
  /** Why it rolled back or failed: a code from FAILURE_CODES and a message for a person. */
  error: deploymentErrorSchema.nullable(),
  /** A check or rollback being retried, or a pause waiting for a person; null otherwise. */
  attention: attentionSchema.nullable(),
  /**
   * The deadlines this deployment runs with: the scale applied (request, Worker, the cluster's round trip) and each
   * command step's deadline in seconds. null for deployments from before configurable deadlines.
   */
  timeouts: z.object({
    scale: z.number().positive(),
    /** The cluster's smoothed command round trip when the deployment started (ms), if measured. */
    roundTripMs: z.number().nonnegative().nullable(),
    stepSeconds: z.partialRecord(z.enum(DEPLOYMENT_STEPS), z.number().nonnegative()),
  }).nullable(),
  fromVersionId: z.uuid().nullable(),
  toVersionId: z.uuid(),
  /** The stack blue runs and the one green runs (equal unless this is a runtime upgrade); null for deployments from before stacks. */
  fromStack: z.string().nullable(),
  toStack: z.string().nullable(),
  /** The exact Node-RED release green runs, as the bridge reported at prepare (older bridges do not say). */
  toNodeRed: z.string().nullable(),
  createdAt: z.iso.datetime(),
  completedAt: z.iso.datetime().nullable(),
});
export type DeploymentView = z.infer<typeof deploymentViewSchema>;

export const phaseEventSchema = z.object({
  deploymentId: z.uuid(), phase: z.enum(PHASES), status: phaseRecordSchema.shape.status,
  deploymentStatus: z.enum(STATUSES), detail: z.string().optional(), timestamp: z.iso.datetime(),
});
export const progressEventSchema = z.object({
  deploymentId: z.uuid(), messagesHeld: z.number().int().nonnegative(), inFlightCount: z.number().int().nonnegative(),
  progress: z.number().min(0).max(1), timestamp: z.iso.datetime(),
  /** The view's `attention` as of this transition (a retry scheduled, a pause, or null once it cleared). */
  attention: attentionSchema.nullable().optional(),
});
/** Frames on /ws/deployments/:id. */
export const deploymentEventSchema = z.discriminatedUnion("event", [
  z.object({ event: z.literal("deployment:state"), data: deploymentViewSchema }),
  z.object({ event: z.literal("deployment:phase"), data: phaseEventSchema }),
  z.object({ event: z.literal("deployment:progress"), data: progressEventSchema }),
]);
export type DeploymentEvent = z.infer<typeof deploymentEventSchema>;

/** What the API hands a new DeploymentRun (POST /api/deployments, resolved and validated). */
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
  /** Which steps new work is held through (see durable/deploymentRun/steps.ts). */
  holdDuring?: HoldDuring;
  /** Deadlines as resolved at the start (core/deployments/timeouts.ts); absent in deployments from before them: scale 1. */
  timeouts?: { scale: number; roundTripMs: number | null; stepMs: Partial<Record<TimedStep, number>> };
  /** Blue's stack and green's (a runtime upgrade when they differ); absent in deployments from before stacks. */
  fromStack?: string;
  toStack?: string;
  createdBy: string | null;
  createdAt: string;
}
