/**
 * The system of record (Neon Postgres). Tables follow the seed's schema
 * (instances, deployments, audit_logs, ai_decision_logs, users, roles) plus the
 * ones the serverless design adds. Migrations are generated from this file by
 * drizzle-kit (`npm run db:generate`) and applied by `npm run db:migrate`.
 */
import { sql } from "drizzle-orm";
import {
  bigint, bigserial, boolean, doublePrecision, index, inet, integer, jsonb, numeric, pgTable, primaryKey, smallint, text,
  timestamp, uniqueIndex, uuid, varchar,
} from "drizzle-orm/pg-core";
import type { CiHookAction } from "../protocol/api/ciHooks.ts";
import type { PipelineStage, PromotionSource, StageRollout } from "../protocol/api/pipelines.ts";
import type { ClusterWarning } from "../protocol/reports.ts";

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
const createdAt = () => ts("created_at").notNull().defaultNow();
const updatedAt = () => ts("updated_at").notNull().defaultNow();

export type Permission = { resource: string; action: string };

export const roles = pgTable("roles", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: varchar("name", { length: 100 }).notNull().unique(),
  permissions: jsonb("permissions").$type<Permission[]>().notNull(),
  builtin: boolean("builtin").notNull().default(false),
  createdAt: createdAt(),
});

export const users = pgTable("users", {
  id: uuid("id").primaryKey().defaultRandom(),
  username: varchar("username", { length: 255 }).notNull().unique(),
  email: varchar("email", { length: 255 }).notNull().unique(),
  passwordHash: varchar("password_hash", { length: 255 }).notNull(),
  role: varchar("role", { length: 100 }).notNull(),
  team: varchar("team", { length: 100 }).notNull().default("default"),
  disabled: boolean("disabled").notNull().default(false),
  // Session tokens issued before this instant are refused (set when the password changes).
  sessionsValidAfter: ts("sessions_valid_after"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  lastLogin: ts("last_login"),
});

export const apiKeys = pgTable("api_keys", {
  id: uuid("id").primaryKey().defaultRandom(),
  userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
  name: varchar("name", { length: 100 }).notNull(),
  // First characters of the key, safe to show so a person can tell keys apart.
  prefix: varchar("prefix", { length: 16 }).notNull(),
  // SHA-256 of the whole key: keys are 256-bit random, so a fast hash is enough.
  keyHash: varchar("key_hash", { length: 64 }).notNull().unique(),
  role: varchar("role", { length: 100 }).notNull(),
  // Narrower than the role when set: the key may do only what these scopes AND its owner's
  // current role both allow (null = everything the role allows).
  scopes: jsonb("scopes").$type<Permission[]>(),
  createdAt: createdAt(),
  expiresAt: ts("expires_at"),
  lastUsedAt: ts("last_used_at"),
  revokedAt: ts("revoked_at"),
}, (t) => [index("idx_api_keys_user").on(t.userId)]);

export const clusters = pgTable("clusters", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: varchar("name", { length: 63 }).notNull(),
  driver: varchar("driver", { length: 20 }).notNull().default("process"),
  labels: jsonb("labels").$type<Record<string, string>>().notNull().default({}),
  // AES-GCM sealed (see core/crypto/secretBox.ts); never returned after creation.
  webhookSecretSealed: text("webhook_secret_sealed").notNull(),
  status: varchar("status", { length: 20 }).notNull().default("registered"),
  lastSeenAt: ts("last_seen_at"),
  // What its bridge last reported wrong with the cluster (protocol/reports.ts `cluster.warnings`, e.g. a
  // broker that drops an offline session's queue); each report replaces the list, an empty one clears it.
  warnings: jsonb("warnings").$type<ClusterWarning[]>().notNull().default([]),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  // A deleted cluster is a tombstone: its destroyed instances, their deployments and AI
  // decisions still reference it, so history keeps the cluster's name (DELETE /api/clusters/:id).
  deletedAt: ts("deleted_at"),
}, (t) => [
  // Names are unique among live clusters; a deleted one frees its name.
  uniqueIndex("uq_clusters_live_name").on(t.name).where(sql`${t.deletedAt} is null`),
]);

export const instances = pgTable("instances", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: varchar("name", { length: 63 }).notNull(),
  clusterId: uuid("cluster_id").notNull().references(() => clusters.id, { onDelete: "restrict" }),
  team: varchar("team", { length: 100 }).notNull().default("default"),
  // What the bridge last reported: pending | starting | running | stopped | failed | unknown | deploying
  status: varchar("status", { length: 50 }).notNull().default("pending"),
  statusReason: text("status_reason"),
  // What an operator asked for: running | stopped | destroyed
  desiredState: varchar("desired_state", { length: 20 }).notNull().default("running"),
  flows: jsonb("flows").$type<unknown[]>().notNull().default([]),
  resources: jsonb("resources").$type<Record<string, string>>().notNull().default({}),
  env: jsonb("env").$type<Record<string, string>>().notNull().default({}),
  endpoints: jsonb("endpoints").$type<Record<string, string>>().notNull().default({}),
  replicas: integer("replicas").notNull().default(1),
  // Kubernetes-style labels (protocol/labels.ts); label selectors pick groups of instances (core/fleet/labelSelector.ts).
  labels: jsonb("labels").$type<Record<string, string>>().notNull().default({}),
  // The Node-RED version line it runs (protocol/stacks.ts). The column's default is for rows
  // from before stacks (created on 4.1.15); the API gives new instances DEFAULT_STACK.
  stack: varchar("stack", { length: 10 }).notNull().default("4.1"),
  // The exact release the bridge resolved the stack to (instance.create, a runtime upgrade's green); null until it says.
  nodeRedVersion: varchar("node_red_version", { length: 40 }),
  // Node-RED credentialSecret for this instance, AES-GCM sealed; sent to the bridge only inside instance.create.
  credentialSecretSealed: text("credential_secret_sealed"),
  // Environment secrets: values AES-GCM sealed as one JSON map, write-only through the API;
  // only their names are readable.
  secretsSealed: text("secrets_sealed"),
  secretNames: jsonb("secret_names").$type<string[]>().notNull().default([]),
  healthEndpoint: varchar("health_endpoint", { length: 500 }),
  containerId: varchar("container_id", { length: 255 }),
  createdBy: uuid("created_by"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  deletedAt: ts("deleted_at"),
}, (t) => [
  // Names are unique among live instances; a destroyed one frees its name.
  uniqueIndex("uq_instances_live_name").on(t.name).where(sql`${t.deletedAt} is null`),
  index("idx_instances_cluster").on(t.clusterId),
  // Quota usage is counted per team.
  index("idx_instances_team").on(t.team),
  index("idx_instances_list").on(t.createdAt, t.id),
  // Selectors compile to jsonb containment and key-existence operators, which a GIN index serves.
  index("idx_instances_labels").using("gin", t.labels),
]);

/** What bridges report per instance on every health sweep (and on their own). */
export const instanceHealth = pgTable("instance_health", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  instanceId: uuid("instance_id").notNull().references(() => instances.id, { onDelete: "cascade" }),
  checkedAt: ts("checked_at").notNull(),
  state: varchar("state", { length: 20 }).notNull(),
  live: boolean("live").notNull(),
  ready: boolean("ready").notNull(),
  rssBytes: bigint("rss_bytes", { mode: "number" }),
  heapUsedBytes: bigint("heap_used_bytes", { mode: "number" }),
  /** The Node-RED process's CPU seconds and its gate's message counters (0014; null from older bridges). */
  cpuSeconds: doublePrecision("cpu_seconds"),
  messagesIn: bigint("messages_in", { mode: "number" }),
  messagesOut: bigint("messages_out", { mode: "number" }),
  messageErrors: bigint("message_errors", { mode: "number" }),
  flowMessages: jsonb("flow_messages").$type<Array<{ flowId: string; in: number; out: number; errors: number }>>(),
  flowsState: varchar("flows_state", { length: 10 }),
  missingNodeTypes: jsonb("missing_node_types").$type<string[]>().notNull().default([]),
  error: text("error"),
}, (t) => [
  index("idx_instance_health_recent").on(t.instanceId, t.checkedAt),
  // The retention purge deletes by age across all instances.
  index("idx_instance_health_checked").on(t.checkedAt),
]);

export const flowVersions = pgTable("flow_versions", {
  id: uuid("id").primaryKey().defaultRandom(),
  instanceId: uuid("instance_id").notNull().references(() => instances.id, { onDelete: "cascade" }),
  version: integer("version").notNull(),
  flows: jsonb("flows").$type<unknown[]>().notNull(),
  digest: varchar("digest", { length: 64 }).notNull(),
  createdBy: uuid("created_by"),
  createdAt: createdAt(),
}, (t) => [uniqueIndex("uq_flow_versions").on(t.instanceId, t.version)]);

export const deployments = pgTable("deployments", {
  id: uuid("id").primaryKey().defaultRandom(),
  instanceId: uuid("instance_id").notNull().references(() => instances.id),
  strategy: varchar("strategy", { length: 50 }).notNull(),
  status: varchar("status", { length: 50 }).notNull(),
  currentPhase: varchar("current_phase", { length: 50 }),
  fromVersionId: uuid("from_version_id").references(() => flowVersions.id),
  toVersionId: uuid("to_version_id").references(() => flowVersions.id),
  oldFlows: jsonb("old_flows"),
  newFlows: jsonb("new_flows"),
  metrics: jsonb("metrics"),
  /** Why it rolled back or failed, for a person; `error_code` is the named reason (protocol/deployments.ts FAILURE_CODES). */
  error: text("error"),
  errorCode: varchar("error_code", { length: 50 }),
  createdBy: uuid("created_by"),
  createdAt: createdAt(),
  completedAt: ts("completed_at"),
}, (t) => [index("idx_deployments_instance").on(t.instanceId, t.createdAt)]);

export const auditLogs = pgTable("audit_logs", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  timestamp: ts("timestamp").notNull().defaultNow(),
  userId: varchar("user_id", { length: 255 }),
  action: varchar("action", { length: 100 }).notNull(),
  resourceType: varchar("resource_type", { length: 50 }),
  resourceId: varchar("resource_id", { length: 255 }),
  details: jsonb("details"),
  ipAddress: inet("ip_address"),
  userAgent: text("user_agent"),
  statusCode: integer("status_code"),
  // Hash chain: hash = SHA-256(prevHash + canonical row). Written under an
  // advisory lock in one transaction so concurrent writers cannot fork it.
  prevHash: varchar("prev_hash", { length: 64 }).notNull(),
  hash: varchar("hash", { length: 64 }).notNull(),
}, (t) => [
  index("idx_audit_timestamp").on(t.timestamp),
  index("idx_audit_user").on(t.userId),
  index("idx_audit_resource").on(t.resourceType, t.resourceId),
]);

export const aiDecisionLogs = pgTable("ai_decision_logs", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  timestamp: ts("timestamp").notNull().defaultNow(),
  instanceId: uuid("instance_id").notNull().references(() => instances.id),
  flowName: varchar("flow_name", { length: 255 }).notNull(),
  model: varchar("model", { length: 100 }),
  provider: varchar("provider", { length: 100 }),
  prompt: text("prompt"),
  response: text("response"),
  confidence: doublePrecision("confidence"),
  tokensUsed: integer("tokens_used"),
  inputTokens: integer("input_tokens"),
  outputTokens: integer("output_tokens"),
  finishReason: varchar("finish_reason", { length: 50 }),
  latencyMs: integer("latency_ms"),
  timeToFirstTokenMs: integer("time_to_first_token_ms"),
  costUsd: numeric("cost_usd", { precision: 14, scale: 8 }),
  traceId: varchar("trace_id", { length: 64 }),
  metadata: jsonb("metadata"),
  // OpenTelemetry GenAI names: gen_ai.operation.name, gen_ai.response.model, gen_ai.response.id.
  operationName: varchar("operation_name", { length: 50 }),
  responseModel: varchar("response_model", { length: 100 }),
  responseId: varchar("response_id", { length: 255 }),
  spanId: varchar("span_id", { length: 32 }),
  /** The Node-RED flow (tab) id; flow_name is its label. */
  flowId: varchar("flow_id", { length: 100 }),
  receivedAt: ts("received_at").notNull().defaultNow(),
}, (t) => [
  index("idx_ai_logs_timestamp").on(t.timestamp),
  index("idx_ai_logs_instance").on(t.instanceId),
  index("idx_ai_logs_model").on(t.model),
  index("idx_ai_logs_flow").on(t.flowName),
]);

/**
 * Dead letters the instances published on MQTT `redforge/dlq/{instance}`, forwarded by the
 * bridge (bridge/deadLetterForwarder.ts). letter_id is the bridge's hash of the message,
 * so a redelivered letter is stored once.
 */
export const deadLetters = pgTable("dead_letters", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  letterId: varchar("letter_id", { length: 64 }).notNull(),
  instanceId: uuid("instance_id").notNull().references(() => instances.id, { onDelete: "cascade" }),
  clusterId: uuid("cluster_id").notNull(),
  flowId: varchar("flow_id", { length: 255 }),
  primitive: varchar("primitive", { length: 100 }),
  nodeRedFlow: varchar("node_red_flow", { length: 100 }),
  errorCode: varchar("error_code", { length: 100 }).notNull(),
  errorMessage: text("error_message").notNull(),
  attempts: integer("attempts"),
  input: jsonb("input"),
  failedAt: ts("failed_at").notNull(),
  receivedAt: ts("received_at").notNull().defaultNow(),
  // An operator's replay (migration 0019): pending until the bridge reports, then succeeded / failed.
  replayState: varchar("replay_state", { length: 20 }).$type<"pending" | "succeeded" | "failed">(),
  replayedBy: uuid("replayed_by"),
  replayedAt: ts("replayed_at"),
  replayCount: integer("replay_count").notNull().default(0),
  /** When the bridge last collected the pending replay; handed out again when it does not report in time. */
  replaySentAt: ts("replay_sent_at"),
  replayResult: jsonb("replay_result").$type<{ ok: boolean; status?: number; code?: string; message?: string; at: string }>(),
}, (t) => [
  uniqueIndex("uq_dead_letters_letter").on(t.letterId),
  index("idx_dead_letters_replay_pending").on(t.clusterId, t.id).where(sql`${t.replayState} = 'pending'`),
  index("idx_dead_letters_failed").on(t.failedAt, t.id),
  index("idx_dead_letters_instance").on(t.instanceId, t.failedAt),
  index("idx_dead_letters_code").on(t.errorCode),
]);

/** USD per million tokens, per provider and request model; admins edit it (/api/ai/prices). */
/**
 * GET /api/metrics/fleet's counters and each live instance's newest health report, kept by
 * triggers (db/migrations/0020_fleet_counts.sql); nothing in the API writes them.
 */
export const instanceHealthLatest = pgTable("instance_health_latest", {
  instanceId: uuid("instance_id").primaryKey().references(() => instances.id, { onDelete: "cascade" }),
  checkedAt: ts("checked_at").notNull(),
  live: boolean("live").notNull(),
  ready: boolean("ready").notNull(),
  rssBytes: bigint("rss_bytes", { mode: "number" }),
  heapUsedBytes: bigint("heap_used_bytes", { mode: "number" }),
  missing: integer("missing").notNull(),
});

/** Append-only deltas (a write never updates a row another writer could hold); the health sweep compacts them. */
export const fleetCounts = pgTable("fleet_counts", {
  dim: varchar("dim", { length: 20 }).notNull(),
  key: varchar("key", { length: 50 }).notNull(),
  n: bigint("n", { mode: "number" }).notNull(),
});

export const modelPrices = pgTable("model_prices", {
  id: uuid("id").primaryKey().defaultRandom(),
  provider: varchar("provider", { length: 100 }).notNull(),
  model: varchar("model", { length: 100 }).notNull(),
  inputUsdPerMtok: numeric("input_usd_per_mtok", { precision: 14, scale: 6 }).notNull(),
  outputUsdPerMtok: numeric("output_usd_per_mtok", { precision: 14, scale: 6 }).notNull(),
  updatedAt: updatedAt(),
}, (t) => [uniqueIndex("uq_model_prices_provider_model").on(t.provider, t.model)]);

export const quotas = pgTable("quotas", {
  id: uuid("id").primaryKey().defaultRandom(),
  team: varchar("team", { length: 100 }).notNull().unique(),
  maxInstances: integer("max_instances"),
  maxCpuMillicores: integer("max_cpu_millicores"),
  maxMemoryMb: integer("max_memory_mb"),
  maxDeploymentsPerDay: integer("max_deployments_per_day"),
  maxLlmTokensPerDay: integer("max_llm_tokens_per_day"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const policies = pgTable("policies", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: varchar("name", { length: 100 }).notNull().unique(),
  kind: varchar("kind", { length: 50 }).notNull(),
  rule: jsonb("rule").notNull(),
  enabled: boolean("enabled").notNull().default(true),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

export const workflowCheckpoints = pgTable("workflow_checkpoints", {
  id: uuid("id").primaryKey().defaultRandom(),
  instanceId: uuid("instance_id").notNull().references(() => instances.id, { onDelete: "cascade" }),
  deploymentId: uuid("deployment_id").references(() => deployments.id),
  workflowId: varchar("workflow_id", { length: 255 }).notNull(),
  step: varchar("step", { length: 255 }).notNull(),
  state: jsonb("state").notNull(),
  createdAt: createdAt(),
  // 0016: the record as redforge-checkpoint wrote it (docs/agents.md "Checkpoint and replay").
  checkpointId: uuid("checkpoint_id"),
  kind: varchar("kind", { length: 255 }),
  /** started | completed | finished | failed | cancelled | handed_over */
  phase: varchar("phase", { length: 20 }),
  inputHash: varchar("input_hash", { length: 64 }),
  completed: jsonb("completed").$type<string[]>(),
  runtimeId: varchar("runtime_id", { length: 80 }),
  error: jsonb("error").$type<{ code: string; message: string }>(),
  recordedAt: ts("recorded_at"),
}, (t) => [index("idx_checkpoints_workflow").on(t.instanceId, t.workflowId), uniqueIndex("uq_checkpoints_checkpoint_id").on(t.checkpointId)]);

/** One row per workflow run (instance + workflow id): its state from its latest checkpoint, and an operator's pending replay/cancel. */
export const workflows = pgTable("workflows", {
  id: uuid("id").primaryKey().defaultRandom(),
  instanceId: uuid("instance_id").notNull().references(() => instances.id, { onDelete: "cascade" }),
  workflowId: varchar("workflow_id", { length: 255 }).notNull(),
  kind: varchar("kind", { length: 255 }).notNull(),
  /** running | completed | failed | cancelled */
  state: varchar("state", { length: 20 }).notNull(),
  lastStep: varchar("last_step", { length: 255 }).notNull(),
  lastPhase: varchar("last_phase", { length: 20 }).notNull(),
  completed: jsonb("completed").$type<string[]>().notNull().default(sql`'[]'::jsonb`),
  error: jsonb("error").$type<{ code: string; message: string }>(),
  runtimeId: varchar("runtime_id", { length: 80 }),
  /** replay | cancel, until the bridge reports it applied */
  pendingAction: varchar("pending_action", { length: 20 }),
  pendingFromStep: varchar("pending_from_step", { length: 255 }),
  actionRequestedBy: uuid("action_requested_by"),
  actionRequestedAt: ts("action_requested_at"),
  actionSentAt: ts("action_sent_at"),
  lastAction: jsonb("last_action").$type<{ action: string; outcome: string; at: string; error?: { code: string; message: string } }>(),
  startedAt: ts("started_at").notNull(),
  updatedAt: ts("updated_at").notNull(),
  createdAt: createdAt(),
}, (t) => [
  uniqueIndex("uq_workflows_instance_workflow").on(t.instanceId, t.workflowId),
  index("idx_workflows_list").on(t.updatedAt, t.id),
  index("idx_workflows_pending").on(t.pendingAction).where(sql`${t.pendingAction} is not null`),
]);

export const complianceExports = pgTable("compliance_exports", {
  id: uuid("id").primaryKey().defaultRandom(),
  kind: varchar("kind", { length: 50 }).notNull(),
  rangeStart: ts("range_start").notNull(),
  rangeEnd: ts("range_end").notNull(),
  storageKey: text("storage_key").notNull(),
  digest: varchar("digest", { length: 64 }).notNull(),
  /** hipaa | soc2 | gdpr, or null for the plain report. */
  framework: varchar("framework", { length: 20 }),
  /** json | ndjson | csv */
  format: varchar("format", { length: 10 }).notNull().default("json"),
  sizeBytes: bigint("size_bytes", { mode: "number" }).notNull().default(0),
  /** on_demand (POST /api/reports) or scheduled (the QStash job). */
  trigger: varchar("trigger", { length: 20 }).notNull().default("on_demand"),
  createdBy: uuid("created_by"),
  createdAt: createdAt(),
}, (t) => [index("idx_compliance_exports_list").on(t.createdAt, t.id)]);

/** Control-plane settings edited through /api/config: one jsonb document per key (reports, retention). */
export const settings = pgTable("settings", {
  key: varchar("key", { length: 100 }).primaryKey(),
  value: jsonb("value").notNull(),
  updatedBy: uuid("updated_by"),
  updatedAt: updatedAt(),
});

/**
 * What a retention purge removed from the head of the audit chain: the last
 * purged row's id and hash, signed (HMAC-SHA256, REDFORGE_AUDIT_CHECKPOINT_KEY),
 * so verification starts here instead of at genesis.
 */
export const auditCheckpoints = pgTable("audit_checkpoints", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  upToId: bigint("up_to_id", { mode: "number" }).notNull(),
  upToHash: varchar("up_to_hash", { length: 64 }).notNull(),
  /** Rows removed by this purge (the chain before it was removed by earlier ones). */
  rowCount: bigint("row_count", { mode: "number" }).notNull(),
  fromId: bigint("from_id", { mode: "number" }).notNull(),
  rangeStart: ts("range_start").notNull(),
  rangeEnd: ts("range_end").notNull(),
  /** Which key signed it: first 8 hex of SHA-256 of the key. */
  keyId: varchar("key_id", { length: 16 }).notNull(),
  signature: varchar("signature", { length: 64 }).notNull(),
  createdAt: createdAt(),
}, (t) => [uniqueIndex("uq_audit_checkpoints_up_to").on(t.upToId)]);

/**
 * Alert rules evaluated by the control plane (POST /api/jobs/alerts-evaluate,
 * core/alerts/): one team's condition of one kind with its thresholds
 * (`params`, checked against the kind on write). `state` is the evaluator's own
 * memory between runs (a counter's last value, the audit chain's verified head).
 */
export const alertRules = pgTable("alert_rules", {
  id: uuid("id").primaryKey().defaultRandom(),
  team: varchar("team", { length: 100 }).notNull(),
  name: varchar("name", { length: 100 }).notNull(),
  kind: varchar("kind", { length: 50 }).notNull(),
  params: jsonb("params").$type<Record<string, unknown>>().notNull().default({}),
  severity: varchar("severity", { length: 20 }).notNull().default("warning"),
  /** Consecutive clear evaluations before an open alert resolves (flap protection). */
  clearEvaluations: integer("clear_evaluations").notNull().default(2),
  enabled: boolean("enabled").notNull().default(true),
  state: jsonb("state").$type<Record<string, unknown>>().notNull().default({}),
  createdBy: uuid("created_by"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  uniqueIndex("uq_alert_rules_team_name").on(t.team, t.name),
  index("idx_alert_rules_list").on(t.createdAt, t.id),
]);

/**
 * One alert per (rule, subject) while open: pending (condition seen, its
 * `minutes` not yet up) → firing → acknowledged → resolved. Rows stay as history.
 */
export const alerts = pgTable("alerts", {
  id: uuid("id").primaryKey().defaultRandom(),
  ruleId: uuid("rule_id").references(() => alertRules.id, { onDelete: "set null" }),
  team: varchar("team", { length: 100 }).notNull(),
  kind: varchar("kind", { length: 50 }).notNull(),
  severity: varchar("severity", { length: 20 }).notNull(),
  /** What the alert is about: an instance or cluster id, a deployment's instance, `audit-chain`, `tokens@80`… */
  subject: varchar("subject", { length: 255 }).notNull(),
  subjectName: varchar("subject_name", { length: 255 }),
  status: varchar("status", { length: 20 }).notNull(),
  summary: text("summary").notNull(),
  details: jsonb("details").$type<Record<string, unknown>>().notNull().default({}),
  /** Clear evaluations in a row; resets when the condition returns. */
  clearCount: integer("clear_count").notNull().default(0),
  /** Times the condition came back while the alert was clearing (a flapping subject). */
  refireCount: integer("refire_count").notNull().default(0),
  /** When the condition was first seen. */
  startedAt: ts("started_at").notNull(),
  firedAt: ts("fired_at"),
  acknowledgedAt: ts("acknowledged_at"),
  acknowledgedBy: uuid("acknowledged_by"),
  resolvedAt: ts("resolved_at"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  // Deduplication: at most one open alert per rule and subject.
  uniqueIndex("uq_alerts_open").on(t.ruleId, t.subject).where(sql`${t.status} <> 'resolved'`),
  index("idx_alerts_list").on(t.createdAt, t.id),
  index("idx_alerts_team_status").on(t.team, t.status),
]);

/** Where a team's alerts are sent: a signed webhook or a Slack incoming webhook. */
export const alertChannels = pgTable("alert_channels", {
  id: uuid("id").primaryKey().defaultRandom(),
  team: varchar("team", { length: 100 }).notNull(),
  name: varchar("name", { length: 100 }).notNull(),
  kind: varchar("kind", { length: 20 }).notNull(),
  url: text("url").notNull(),
  // AES-GCM sealed whsec_ secret (core/crypto/secretBox.ts); shown once at creation. Null for Slack.
  secretSealed: text("secret_sealed"),
  enabled: boolean("enabled").notNull().default(true),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  uniqueIndex("uq_alert_channels_team_name").on(t.team, t.name),
  index("idx_alert_channels_list").on(t.createdAt, t.id),
]);

/**
 * One notification of one alert event to one channel, delivered through QStash.
 * queued → delivered, or dead (the last retry failed): the dead-letter record.
 */
export const alertNotifications = pgTable("alert_notifications", {
  id: uuid("id").primaryKey().defaultRandom(),
  alertId: uuid("alert_id").notNull().references(() => alerts.id, { onDelete: "cascade" }),
  channelId: uuid("channel_id").references(() => alertChannels.id, { onDelete: "set null" }),
  team: varchar("team", { length: 100 }).notNull(),
  event: varchar("event", { length: 20 }).notNull(),
  status: varchar("status", { length: 20 }).notNull().default("queued"),
  attempts: integer("attempts").notNull().default(0),
  lastError: text("last_error"),
  payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
  deliveredAt: ts("delivered_at"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  index("idx_alert_notifications_list").on(t.createdAt, t.id),
  index("idx_alert_notifications_alert").on(t.alertId),
]);

/**
 * Rollouts (docs/rollouts.md): a projection of each RolloutRun Durable Object,
 * written on every wave and status change, so GET /api/rollouts lists them
 * without waking every object. The object's storage is the truth (plan,
 * per-instance state); this row carries what a list shows.
 */
export const rollouts = pgTable("rollouts", {
  id: uuid("id").primaryKey(),
  status: varchar("status", { length: 30 }).notNull(),
  selector: text("selector").notNull(),
  description: text("description"),
  flowsDigest: varchar("flows_digest", { length: 64 }).notNull(),
  versionId: uuid("version_id"),
  // The request's plan after defaults (waves, parallelism, pause, budget, onFailure, lateJoiners).
  plan: jsonb("plan").$type<Record<string, unknown>>().notNull(),
  currentWave: integer("current_wave"),
  waveCount: integer("wave_count").notNull(),
  summary: jsonb("summary").$type<{ total: number; completed: number; failed: number; pending: number }>().notNull(),
  failure: jsonb("failure").$type<{ code: string; message: string }>(),
  createdBy: uuid("created_by"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
  completedAt: ts("completed_at"),
}, (t) => [
  index("idx_rollouts_list").on(t.createdAt, t.id),
  index("idx_rollouts_status").on(t.status),
]);

/**
 * Pipelines (issue 15, docs/ci.md): ordered stages, each a label selector with
 * rollout defaults; promotions put a version on a stage through a rollout.
 */
export const pipelines = pgTable("pipelines", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: varchar("name", { length: 100 }).notNull(),
  team: varchar("team", { length: 100 }),
  stages: jsonb("stages").$type<PipelineStage[]>().notNull(),
  createdBy: uuid("created_by").references(() => users.id, { onDelete: "set null" }),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  uniqueIndex("uq_pipelines_name").on(t.name),
  index("idx_pipelines_list").on(t.createdAt, t.id),
]);

/** One promotion of a version to one stage: awaiting_approval → rolling_out → completed | failed, or rejected. */
export const pipelinePromotions = pgTable("pipeline_promotions", {
  id: uuid("id").primaryKey().defaultRandom(),
  pipelineId: uuid("pipeline_id").notNull().references(() => pipelines.id, { onDelete: "cascade" }),
  stage: varchar("stage", { length: 100 }).notNull(),
  status: varchar("status", { length: 30 }).notNull(),
  source: jsonb("source").$type<PromotionSource>().notNull(),
  // The flow file to roll out (kept until approval; a later stage promotes from it).
  flows: jsonb("flows").$type<unknown[]>(),
  versionId: uuid("version_id"),
  digest: varchar("digest", { length: 64 }),
  // The rollout request's defaults for this promotion (the stage's, with the promotion's overrides).
  rollout: jsonb("rollout").$type<StageRollout>().notNull(),
  rolloutId: uuid("rollout_id"),
  requestedBy: uuid("requested_by").references(() => users.id, { onDelete: "set null" }),
  decidedBy: uuid("decided_by").references(() => users.id, { onDelete: "set null" }),
  decidedAt: ts("decided_at"),
  reason: text("reason"),
  failure: jsonb("failure").$type<{ code: string; message: string }>(),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  index("idx_pipeline_promotions_pipeline").on(t.pipelineId, t.createdAt),
  index("idx_pipeline_promotions_rollout").on(t.rolloutId),
]);

/** CI webhooks: a sealed secret and one fixed action, run as the hook's creator. */
export const ciHooks = pgTable("ci_hooks", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: varchar("name", { length: 100 }).notNull(),
  team: varchar("team", { length: 100 }),
  action: jsonb("action").$type<CiHookAction>().notNull(),
  // AES-GCM sealed whsec_ secret (core/crypto/secretBox.ts); shown once at creation or rotation.
  secretSealed: text("secret_sealed").notNull(),
  createdBy: uuid("created_by").notNull().references(() => users.id, { onDelete: "cascade" }),
  lastDeliveryAt: ts("last_delivery_at"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
}, (t) => [
  uniqueIndex("uq_ci_hooks_name").on(t.name),
  index("idx_ci_hooks_list").on(t.createdAt, t.id),
]);

/**
 * Voting and refinement sessions across agent instances (docs/agents.md "Coordination"), built from the AI decision
 * records a coordinator reports (metadata.coordination): one row per session, its answers appended as they arrive.
 */
export const coordinationSessions = pgTable("coordination_sessions", {
  /** The coordinator's session id. */
  id: uuid("id").primaryKey(),
  /** The coordinator's instance. */
  instanceId: uuid("instance_id").notNull().references(() => instances.id, { onDelete: "cascade" }),
  /** voting | refinement */
  pattern: varchar("pattern", { length: 20 }).notNull(),
  /** majority | best_score | judge | refinement */
  rule: varchar("rule", { length: 20 }),
  /** collecting (live) | decided | no_quorum | failed | approved | converged | max_rounds */
  status: varchar("status", { length: 20 }).notNull(),
  question: text("question"),
  answer: text("answer"),
  settings: jsonb("settings").$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  answers: jsonb("answers").$type<Record<string, unknown>[]>().notNull().default(sql`'[]'::jsonb`),
  outcome: jsonb("outcome").$type<Record<string, unknown>>(),
  startedAt: ts("started_at").notNull(),
  updatedAt: ts("updated_at").notNull().defaultNow(),
  decidedAt: ts("decided_at"),
}, (t) => [index("idx_coordination_started").on(t.startedAt, t.id), index("idx_coordination_instance").on(t.instanceId, t.startedAt)]);
