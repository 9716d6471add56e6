/**
 * Alert kinds and the shape of each kind's thresholds (`params`), checked on
 * write (400 `validation_failed` with paths under `params.`). The conditions
 * themselves are in conditions.ts; a new kind is one entry here and one there.
 */
import { z } from "zod";

/** How long a condition must hold before the alert fires (Prometheus's `for:`). */
const minutes = z.number().int().min(1).max(1440);

export const paramShapes = {
  /** An instance failed, or stopped while its desired state is running. */
  instance_down: z.strictObject({}),
  /** The latest health report says not ready, for `minutes`. */
  instance_not_ready: z.strictObject({ minutes: minutes.default(5) }),
  /** Failed with a boot-loop reason: the process driver's quick exits, Kubernetes' CrashLoopBackOff. */
  crash_loop: z.strictObject({}),
  /** The instance's latest finished deployment failed or rolled back, within `withinHours`. */
  deployment_failed: z.strictObject({ withinHours: z.number().int().min(1).max(720).default(24) }),
  /** A cluster running the team's instances has no bridge connected, for `minutes`. */
  bridge_disconnected: z.strictObject({ minutes: minutes.default(2) }),
  /** A cluster running the team's instances has a warning from its bridge (e.g. its broker drops held work: `broker_queue_limit`). */
  cluster_warning: z.strictObject({}),
  /** redforge_webhook_verification_failures_total grew faster than `perSecond` since the last evaluation. */
  webhook_signature_failures: z.strictObject({ perSecond: z.number().positive().max(10_000) }),
  /**
   * The team's LLM usage today against a budget: tokens against its quota's maxLlmTokensPerDay
   * (or `dailyBudget` when given), cost (USD) against `dailyBudget` (required). One alert per threshold.
   */
  ai_budget: z.strictObject({
    metric: z.enum(["tokens", "cost"]),
    dailyBudget: z.number().positive().max(1e12).optional(),
    thresholdsPercent: z.array(z.number().int().min(1).max(1000)).min(1).max(5).default([80, 100])
      .refine((t) => new Set(t).size === t.length, "thresholds must differ"),
  }).refine((p) => p.metric !== "cost" || p.dailyBudget !== undefined, { message: "a cost budget needs dailyBudget (USD per UTC day)", path: ["dailyBudget"] }),
  /** The audit chain's rows appended since the last evaluation do not verify (db/auditVerify.ts). */
  audit_chain: z.strictObject({}),
} as const;

export type AlertKind = keyof typeof paramShapes;
export const ALERT_KINDS = Object.keys(paramShapes) as [AlertKind, ...AlertKind[]];
export const SEVERITIES = ["info", "warning", "critical"] as const;

/** Open statuses: at most one of these per (rule, subject). */
export const OPEN_STATUSES = ["pending", "firing", "acknowledged"] as const;
export const ALERT_STATUSES = [...OPEN_STATUSES, "resolved"] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

export function isAlertKind(kind: string): kind is AlertKind {
  return Object.hasOwn(paramShapes, kind);
}
