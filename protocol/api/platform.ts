/** Response bodies of the routes no user calls: health, the bridge's side, QStash jobs. */
import { z } from "zod";
import { timestamp } from "./common.ts";

const check = z.looseObject({ ok: z.boolean(), latencyMs: z.number(), error: z.string().optional() });
/** 200 when every dependency answers, 503 (same body, `degraded`) otherwise. */
export const healthSchema = z.object({
  status: z.enum(["ok", "degraded"]),
  environment: z.string(),
  /** The control plane's release (package.json's version). */
  version: z.string(),
  checks: z.object({ database: check, kv: check, scheduler: check }),
  timestamp,
}).meta({ id: "Health" });

export const livenessSchema = z.object({
  status: z.literal("ok"),
  timestamp,
}).meta({ id: "Liveness" });

export const clusterTokenSchema = z.object({
  token: z.string().meta({ description: "Cluster JWT for GET /api/clusters/{id}/link (10 minutes)" }),
  expiresAt: timestamp,
}).meta({ id: "ClusterToken" });

/** `known`: the command or instance was ours; `stored`: health rows written. */
export const reportAcceptedSchema = z.object({
  accepted: z.literal(true),
  known: z.boolean().optional(),
  stored: z.number().int().optional(),
}).meta({ id: "ReportAccepted" });

export const aiBatchAcceptedSchema = z.object({
  accepted: z.literal(true),
  stored: z.number().int(),
  /** The batch id was seen before: nothing stored twice. */
  duplicate: z.boolean(),
  tokensCounted: z.boolean(),
}).meta({ id: "AiBatchAccepted" });

export const healthSweepSchema = z.object({ clusters: z.number().int(), jitterWindowMs: z.number().int() }).meta({ id: "HealthSweepResult" });

export const complianceExportRunSchema = z.union([
  z.object({ skipped: z.literal("scheduled_exports_disabled"), written: z.array(z.never()) }),
  z.object({
    from: timestamp,
    to: timestamp,
    written: z.array(z.object({ id: z.string(), kind: z.string(), digest: z.string() })),
    /** Reports of this period already stored by an earlier delivery. */
    existing: z.array(z.string()),
  }),
]).meta({ id: "ComplianceExportRun" });

export const retentionPurgeRunSchema = z.object({
  tables: z.array(z.object({
    table: z.string(),
    retentionDays: z.number().int().nullable(),
    cutoff: timestamp.nullable(),
    deleted: z.number().int(),
    more: z.boolean(),
    skipped: z.enum(["no_retention", "checkpoint_key_missing", "audit_chain_broken", "purge_running"]).optional(),
    checkpointId: z.number().int().optional(),
    firstBroken: z.unknown().optional(),
  })),
}).meta({ id: "RetentionPurgeRun" });
