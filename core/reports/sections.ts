/**
 * The building blocks of compliance reports: each section is one query over
 * a half-open time range [from, to). Report shapes (reports/shapes.ts) pick
 * and name them per kind and framework.
 */
import { and, asc, count, eq, gte, inArray, lt, max, min, or, sql, sum, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { latestCheckpoint } from "../../db/auditCheckpoints.ts";
import { verifyAuditChain } from "../../db/auditVerify.ts";
import { aiDecisionLogs, auditLogs, instanceHealth, users } from "../../db/schema.ts";
import { exportRecord } from "../audit/exportFile.ts";
import { READ_ACTIONS } from "../audit/sensitiveReads.ts";
import { ApiError } from "../errors.ts";
import { RETENTION_TABLES, type RetentionConfig } from "../governance/settings.ts";

export interface SectionContext {
  db: Db;
  from: Date;
  to: Date;
  /** Prompt and response text only for callers who may read it (ai_prompts:read) and for scheduled exports. */
  includePrompts: boolean;
  retention: RetentionConfig;
  checkpointKey?: string;
  now: Date;
}

/** A report is built in memory and stored whole: past this, ask for a shorter range. */
export const MAX_SECTION_ROWS = 50_000;

export const INCIDENT_ACTIONS = ["AUTH_FAILED", "UNAUTHORIZED_ACCESS", "LOGIN_THROTTLED", "QUOTA_EXCEEDED", "POLICY_DENIED"];
const INCIDENT_ERROR_CODES = ["QUOTA_EXCEEDED", "POLICY_DENIED"];
/** Who took data out of the system (the export and report trail itself). */
const DATA_ACCESS_ACTIONS = ["AUDIT_EXPORTED", "REPORT_CREATED", "REPORT_DOWNLOADED"];
const ERASURE_ACTIONS = ["USER_DELETED", "INSTANCE_DESTROY_REQUESTED", "RETENTION_PURGED"];
const ACCESS_CHANGE_ACTIONS = ["USER_CREATED", "USER_DELETED", "USER_DISABLED", "USER_ENABLED", "ROLE_ASSIGNED", "ROLE_CREATED", "ROLE_UPDATED", "ROLE_DELETED", "API_KEY_CREATED", "API_KEY_REVOKED", "PASSWORD_CHANGED"];

function capped<T>(rows: T[], section: string): T[] {
  if (rows.length > MAX_SECTION_ROWS) {
    throw new ApiError(422, "report_too_large", `section ${section} has more than ${MAX_SECTION_ROWS} rows in this range; request a shorter range`, { section, maxRows: MAX_SECTION_ROWS });
  }
  return rows;
}

const inRange = (ctx: SectionContext, column: typeof auditLogs.timestamp | typeof aiDecisionLogs.timestamp) =>
  and(gte(column, ctx.from), lt(column, ctx.to));

async function auditRows(ctx: SectionContext, section: string, where?: SQL) {
  const rows = await ctx.db.select().from(auditLogs).where(and(inRange(ctx, auditLogs.timestamp), where))
    .orderBy(asc(auditLogs.id)).limit(MAX_SECTION_ROWS + 1);
  return capped(rows, section).map(exportRecord);
}

/** Every audit row in the range with prev_hash/hash, as in GET /api/audit/export. */
export const auditTrail = (ctx: SectionContext) => auditRows(ctx, "auditTrail");

/** Whether the rows in the range still verify, and the chain's head, for an auditor to compare later. */
export async function auditIntegrity(ctx: SectionContext) {
  const [span] = await ctx.db.select({ first: min(auditLogs.id), last: max(auditLogs.id) }).from(auditLogs).where(inRange(ctx, auditLogs.timestamp));
  const check = span?.first != null && span.last != null
    ? await verifyAuditChain(ctx.db, { fromId: span.first, toId: span.last, checkpointKey: ctx.checkpointKey })
    : null;
  const checkpoint = await latestCheckpoint(ctx.db);
  return [{
    first_id: span?.first ?? null, last_id: span?.last ?? null, rows: check?.rows ?? 0, verified: check?.ok ?? true,
    head_hash: check?.ok ? check.head?.hash ?? null : null,
    first_broken: check && !check.ok ? check.firstBroken : null,
    latest_checkpoint: checkpoint ? { id: checkpoint.id, up_to_id: checkpoint.upToId, up_to_hash: checkpoint.upToHash, created_at: checkpoint.createdAt.toISOString() } : null,
  }];
}

/** Failed sign-ins, denied calls, throttling, quota and policy refusals. */
export const securityIncidents = (ctx: SectionContext) => auditRows(ctx, "securityIncidents", or(
  inArray(auditLogs.action, INCIDENT_ACTIONS),
  sql`${auditLogs.details}->>'errorCode' in (${sql.join(INCIDENT_ERROR_CODES.map((c) => sql`${c}`), sql`, `)})`,
));

/** Changes made through the API (creates, updates, deletes, deployments) that succeeded. */
export const changeManagement = (ctx: SectionContext) => auditRows(ctx, "changeManagement", and(
  sql`${auditLogs.action} ~ '(_CREATED|_UPDATED|_DELETED|_REQUESTED|_ROTATED|_REGISTERED|_SET|_REMOVED|_PROMOTED|_ASSIGNED|_RESEALED)$'`,
  sql`coalesce(${auditLogs.statusCode}, 200) < 400`,
));

/** Who touched AI decision records, who read sensitive data (core/audit/sensitiveReads.ts) and who took data out (exports, reports). */
export const sensitiveAccess = (ctx: SectionContext) => auditRows(ctx, "sensitiveAccess", or(
  inArray(auditLogs.resourceType, ["ai_decisions", "ai_prompts", "ai", "reports", "report", "audit"]),
  inArray(auditLogs.action, [...DATA_ACCESS_ACTIONS, ...READ_ACTIONS]),
));

export const dataExports = (ctx: SectionContext) => auditRows(ctx, "dataExports", inArray(auditLogs.action, DATA_ACCESS_ACTIONS));
export const erasures = (ctx: SectionContext) => auditRows(ctx, "erasures", inArray(auditLogs.action, ERASURE_ACTIONS));
export const accessChanges = (ctx: SectionContext) => auditRows(ctx, "accessChanges", inArray(auditLogs.action, ACCESS_CHANGE_ACTIONS));

/** Per caller: what they did in the range, how often, and how often they were refused. */
export async function accessByUser(ctx: SectionContext) {
  const rows = await ctx.db.select({
    userId: auditLogs.userId, action: auditLogs.action, n: count(),
    denied: sql<number>`count(*) filter (where ${auditLogs.statusCode} >= 400)::int`,
    first: min(auditLogs.timestamp), last: max(auditLogs.timestamp),
  }).from(auditLogs).where(inRange(ctx, auditLogs.timestamp))
    .groupBy(auditLogs.userId, auditLogs.action).orderBy(asc(auditLogs.userId), asc(auditLogs.action)).limit(MAX_SECTION_ROWS + 1);
  const ids = [...new Set(rows.map((r) => r.userId).filter((id): id is string => !!id && /^[0-9a-f-]{36}$/.test(id)))];
  const names = ids.length ? await ctx.db.select({ id: users.id, username: users.username }).from(users).where(inArray(users.id, ids)) : [];
  const nameOf = new Map(names.map((u) => [u.id, u.username]));
  return capped(rows, "accessByUser").map((r) => ({
    user_id: r.userId, username: r.userId ? nameOf.get(r.userId) ?? null : null, action: r.action, count: r.n, denied: r.denied,
    first_at: r.first?.toISOString() ?? null, last_at: r.last?.toISOString() ?? null,
  }));
}

/** Everyone who can sign in today and with which role: the access review's population. */
export async function userAccounts(ctx: SectionContext) {
  const rows = await ctx.db.select({
    id: users.id, username: users.username, role: users.role, team: users.team, disabled: users.disabled,
    createdAt: users.createdAt, lastLogin: users.lastLogin,
  }).from(users).orderBy(asc(users.username)).limit(MAX_SECTION_ROWS + 1);
  return capped(rows, "userAccounts").map((u) => ({
    user_id: u.id, username: u.username, role: u.role, team: u.team, disabled: u.disabled,
    created_at: u.createdAt.toISOString(), last_login: u.lastLogin?.toISOString() ?? null,
  }));
}

/** The seed's "AI decision report": every decision in the range. */
export async function aiDecisions(ctx: SectionContext) {
  const rows = await ctx.db.select().from(aiDecisionLogs).where(inRange(ctx, aiDecisionLogs.timestamp))
    .orderBy(asc(aiDecisionLogs.id)).limit(MAX_SECTION_ROWS + 1);
  return capped(rows, "aiDecisions").map((r) => ({
    id: r.id, timestamp: r.timestamp.toISOString(), instance_id: r.instanceId, flow_name: r.flowName, model: r.model,
    provider: r.provider, prompt: ctx.includePrompts ? r.prompt : null, response: ctx.includePrompts ? r.response : null,
    redacted: !ctx.includePrompts, input_tokens: r.inputTokens, output_tokens: r.outputTokens, tokens_used: r.tokensUsed,
    finish_reason: r.finishReason, latency_ms: r.latencyMs, cost_usd: r.costUsd, trace_id: r.traceId,
  }));
}

/** Processing activities: which instance and flow sent what to which model, how often, at what cost. */
export async function aiProcessing(ctx: SectionContext) {
  const rows = await ctx.db.select({
    instanceId: aiDecisionLogs.instanceId, flowName: aiDecisionLogs.flowName, provider: aiDecisionLogs.provider, model: aiDecisionLogs.model,
    calls: count(), inputTokens: sum(aiDecisionLogs.inputTokens), outputTokens: sum(aiDecisionLogs.outputTokens), costUsd: sum(aiDecisionLogs.costUsd),
    withPrompt: sql<number>`count(${aiDecisionLogs.prompt})::int`,
    first: min(aiDecisionLogs.timestamp), last: max(aiDecisionLogs.timestamp),
  }).from(aiDecisionLogs).where(inRange(ctx, aiDecisionLogs.timestamp))
    .groupBy(aiDecisionLogs.instanceId, aiDecisionLogs.flowName, aiDecisionLogs.provider, aiDecisionLogs.model)
    .orderBy(asc(aiDecisionLogs.instanceId), asc(aiDecisionLogs.flowName), asc(aiDecisionLogs.model)).limit(MAX_SECTION_ROWS + 1);
  return capped(rows, "aiProcessing").map((r) => ({
    instance_id: r.instanceId, flow_name: r.flowName, provider: r.provider, model: r.model, calls: r.calls,
    input_tokens: Number(r.inputTokens ?? 0), output_tokens: Number(r.outputTokens ?? 0), cost_usd: r.costUsd ?? "0",
    calls_with_prompt_text: r.withPrompt, first_at: r.first?.toISOString() ?? null, last_at: r.last?.toISOString() ?? null,
  }));
}

const AGE_COLUMN = {
  audit_logs: { table: auditLogs, at: auditLogs.timestamp },
  ai_decision_logs: { table: aiDecisionLogs, at: aiDecisionLogs.timestamp },
  instance_health: { table: instanceHealth, at: instanceHealth.checkedAt },
} as const;

/** Per table: the configured retention and whether anything older than it is still stored. */
export async function retentionStatus(ctx: SectionContext) {
  const out = [];
  for (const table of RETENTION_TABLES) {
    const { table: t, at } = AGE_COLUMN[table];
    const days = ctx.retention[table];
    const cutoff = days === null ? null : new Date(ctx.now.getTime() - days * 86_400_000);
    const [row] = await ctx.db.select({
      rows: count(), oldest: min(at),
      past: cutoff ? sql<number>`count(*) filter (where ${at} < ${cutoff.toISOString()})::int` : sql<number>`0`,
    }).from(t);
    out.push({
      table, retention_days: days, cutoff: cutoff?.toISOString() ?? null, rows: row?.rows ?? 0,
      oldest: row?.oldest?.toISOString() ?? null, rows_past_retention: Number(row?.past ?? 0),
      compliant: days === null || Number(row?.past ?? 0) === 0,
    });
  }
  return out;
}

/** The purges that ran in the range (each one's audit row names its counts and checkpoint). */
export const purges = (ctx: SectionContext) => auditRows(ctx, "purges", eq(auditLogs.action, "RETENTION_PURGED"));
