/** Response bodies of /api/policies, /api/quotas, /api/reports, /api/audit and /api/admin. */
import { z } from "zod";
import { timestamp, uuid } from "./common.ts";

export const policySchema = z.object({
  id: uuid,
  name: z.string(),
  kind: z.string().meta({ description: "approved_models | deployment_window | max_replicas" }),
  rule: z.unknown(),
  enabled: z.boolean(),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "Policy" });

/** What POST /api/policies/evaluate answers: allowed, or which policy (or quota) says no and why. */
export const policyDecisionSchema = z.union([
  z.object({ allowed: z.literal(true) }),
  z.object({ allowed: z.literal(false), policy: z.string(), kind: z.string(), reason: z.string() }),
  z.looseObject({
    allowed: z.literal(false),
    code: z.enum(["POLICY_DENIED", "QUOTA_EXCEEDED"]),
    reason: z.string(),
  }).meta({ description: "The deployment gate's refusal, with the facts of its error details." }),
]).meta({ id: "PolicyDecision" });

const limit = z.number().int().nullable().meta({ description: "null: no limit" });
export const quotaLimitsSchema = z.object({
  maxInstances: limit,
  maxCpuMillicores: limit,
  maxMemoryMb: limit,
  maxDeploymentsPerDay: limit,
  maxLlmTokensPerDay: limit,
}).meta({ id: "QuotaLimits" });
export const quotaSchema = quotaLimitsSchema.extend({ team: z.string(), createdAt: timestamp, updatedAt: timestamp }).meta({ id: "Quota" });
export const quotaUsageSchema = z.object({
  team: z.string(),
  limits: quotaLimitsSchema.nullable(),
  usage: z.object({
    instances: z.number().int(),
    cpuMillicores: z.number().int(),
    memoryMb: z.number().int(),
    deploymentsToday: z.number().int(),
    llmTokensToday: z.number().int(),
  }),
}).meta({ id: "QuotaUsage" });

export const reportSchema = z.object({
  id: uuid,
  kind: z.string(),
  framework: z.string().nullable(),
  format: z.string().meta({ description: "json | ndjson | csv" }),
  from: timestamp,
  to: timestamp,
  storageKey: z.string(),
  digest: z.string().meta({ description: "SHA-256 of the stored file, hex" }),
  size: z.number().int(),
  trigger: z.enum(["on_demand", "scheduled"]),
  createdBy: uuid.nullable(),
  createdAt: timestamp,
  downloadUrl: z.string(),
}).meta({ id: "Report" });
export const reportCreatedSchema = reportSchema.extend({ sections: z.array(z.string()) }).meta({ id: "ReportCreated" });

export const auditEntrySchema = z.object({
  id: z.number().int(),
  timestamp,
  userId: z.string().nullable(),
  action: z.string(),
  resourceType: z.string().nullable(),
  resourceId: z.string().nullable(),
  details: z.unknown(),
  ipAddress: z.string().nullable(),
  userAgent: z.string().nullable(),
  statusCode: z.number().int().nullable(),
  prevHash: z.string(),
  hash: z.string(),
}).meta({ id: "AuditEntry" });

const checkpointAnchor = z.object({ id: z.number().int(), upToId: z.number().int(), upToHash: z.string(), createdAt: timestamp });
/** 200 whether or not the chain holds: a broken chain is a finding. */
export const auditVerifySchema = z.union([
  z.object({
    ok: z.literal(true), rows: z.number().int(),
    head: z.object({ id: z.number().int(), hash: z.string() }).nullable(),
    checkpoint: checkpointAnchor.optional(),
  }),
  z.object({
    ok: z.literal(false), rows: z.number().int(),
    firstBroken: z.object({
      id: z.number().int(),
      reason: z.enum(["hash_mismatch", "prev_hash_mismatch", "checkpoint_signature_invalid", "checkpoint_unverifiable"]),
      expected: z.string(),
      actual: z.string(),
    }),
    checkpoint: checkpointAnchor.optional(),
  }),
]).meta({ id: "AuditVerification" });

const resealCounts = { current: z.number().int(), resealed: z.number().int(), failed: z.number().int() };
export const resealResultSchema = z.object({
  keyId: z.string(),
  ...resealCounts,
  columns: z.record(z.string(), z.object({ ...resealCounts, failedIds: z.array(z.string()) })),
}).meta({ id: "ResealResult" });

/** Which keys seal the stored secrets now (GET /api/admin/encryption): an old key may go once no value names it. */
export const encryptionStatusSchema = z.object({
  /** Key id (first 8 hex of the key's SHA-256) of REDFORGE_ENCRYPTION_KEY: every new value is sealed under it. */
  currentKeyId: z.string(),
  /** Key ids of REDFORGE_ENCRYPTION_KEYS_PREVIOUS, in order: still tried when opening. */
  previousKeyIds: z.array(z.string()),
  /** Sealed column → key id ("v1": sealed before key ids existed) → how many values it seals. */
  columns: z.record(z.string(), z.record(z.string(), z.number().int())),
  /** Values not under the current key, over every column: 0 means a re-seal has nothing to do. */
  notCurrent: z.number().int(),
}).meta({ id: "EncryptionStatus" });
