/**
 * Each alert kind's condition: what is wrong right now, as one observation per
 * subject (an instance, a cluster, a budget threshold). The lifecycle
 * (evaluate.ts) turns observations into pending, firing and resolved alerts;
 * nothing here writes. A kind that remembers something between evaluations
 * (a counter's last value, the audit chain's verified head) returns its new `state`.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { verifyAuditChain } from "../../db/auditVerify.ts";
import type { Env } from "../env.ts";
import { quotaOf } from "../governance/quotas.ts";
import { tokensUsed } from "../governance/tokenUsage.ts";
import { SHARDS, shardName } from "../metrics/record.ts";
import { SERIES } from "../metrics/series.ts";
import type { KvStore } from "../platform/kv.ts";
import type { ClusterWarning } from "../../protocol/reports.ts";
import type { AlertKind, paramShapes } from "./kinds.ts";
import type { z } from "zod";
import { linkStatuses } from "../fleet/linkStatuses.ts";

export interface Observation {
  subject: string;
  subjectName: string | null;
  summary: string;
  details: Record<string, unknown>;
  /** The condition must hold this long before the alert fires (0: at once). */
  forMinutes: number;
}

export interface ConditionContext {
  db: Db;
  env: Env;
  kv: KvStore;
  now: Date;
  auditCheckpointKey: string | undefined;
}

export interface RuleFacts {
  team: string;
  params: Record<string, unknown>;
  state: Record<string, unknown>;
}

export interface ConditionResult {
  observations: Observation[];
  /** The kind's memory for the next evaluation; undefined leaves it as it was. */
  state?: Record<string, unknown>;
}

type Params<K extends AlertKind> = z.output<(typeof paramShapes)[K]>;
type Condition<K extends AlertKind> = (ctx: ConditionContext, rule: RuleFacts & { params: Params<K> }) => Promise<ConditionResult>;

/**
 * Failure reasons that mean Node-RED keeps dying on start: the process
 * driver's give-up after quick exits (bridge/drivers/process/nodeRedProcess.ts)
 * and Kubernetes' back-off reasons (bridge/drivers/kubernetes/status.ts).
 */
const BOOT_LOOP_REASONS = [/times within [\d.]+ s of starting; giving up/, /CrashLoopBackOff/, /boot loop/i];

type InstanceRow = { id: string; name: string; status: string; status_reason: string | null; desired_state: string };

/**
 * A driver restarting a Node-RED that died says so in the reason (the process driver: "Node-RED was killed
 * by SIGKILL; restarting"): the instance is down until it is back, though its status is `starting`.
 */
export const CRASH_RESTART_REASON = /; restarting$/;

async function brokenInstances(db: Db, team: string): Promise<InstanceRow[]> {
  return (await db.execute<InstanceRow>(sql`
    select id, name, status, status_reason, desired_state from instances
    where team = ${team} and deleted_at is null
      and (status = 'failed' or (status = 'stopped' and desired_state = 'running')
        or (status = 'starting' and desired_state = 'running' and status_reason ~ ${CRASH_RESTART_REASON.source}))`)).rows;
}

function downSummary(i: InstanceRow): string {
  if (i.status === "failed") return `instance ${i.name} failed${i.status_reason ? `: ${i.status_reason}` : ""}`;
  if (i.status === "starting") return `instance ${i.name} crashed and is being restarted: ${i.status_reason}`;
  return `instance ${i.name} is stopped but should be running`;
}

const instanceDown: Condition<"instance_down"> = async (ctx, rule) => ({
  observations: (await brokenInstances(ctx.db, rule.team)).map((i) => ({
    subject: i.id, subjectName: i.name, forMinutes: 0,
    summary: downSummary(i),
    details: { instanceId: i.id, status: i.status, desiredState: i.desired_state, reason: i.status_reason },
  })),
});

const crashLoop: Condition<"crash_loop"> = async (ctx, rule) => ({
  observations: (await brokenInstances(ctx.db, rule.team))
    .filter((i) => i.status === "failed" && BOOT_LOOP_REASONS.some((re) => re.test(i.status_reason ?? "")))
    .map((i) => ({
      subject: i.id, subjectName: i.name, forMinutes: 0,
      summary: `instance ${i.name} is in a crash loop: ${i.status_reason}`,
      details: { instanceId: i.id, reason: i.status_reason },
    })),
});

const instanceNotReady: Condition<"instance_not_ready"> = async (ctx, rule) => {
  // Only the last day of health is looked at: an instance with no report since is the sweep's problem, not readiness.
  const rows = (await ctx.db.execute<{ id: string; name: string; ready: boolean; checked_at: string; error: string | null }>(sql`
    select distinct on (h.instance_id) h.instance_id as id, i.name, h.ready, h.checked_at, h.error
    from instance_health h join instances i on i.id = h.instance_id
    where i.team = ${rule.team} and i.deleted_at is null and i.desired_state = 'running'
      and h.checked_at > ${new Date(ctx.now.getTime() - 86_400_000).toISOString()}
    order by h.instance_id, h.checked_at desc`)).rows;
  return {
    observations: rows.filter((r) => !r.ready).map((r) => ({
      subject: r.id, subjectName: r.name, forMinutes: rule.params.minutes,
      summary: `instance ${r.name} has not been ready for ${rule.params.minutes} min${r.error ? `: ${r.error}` : ""}`,
      details: { instanceId: r.id, lastCheckedAt: new Date(r.checked_at).toISOString(), error: r.error },
    })),
  };
};

const deploymentFailed: Condition<"deployment_failed"> = async (ctx, rule) => {
  const since = new Date(ctx.now.getTime() - rule.params.withinHours * 3_600_000).toISOString();
  const rows = (await ctx.db.execute<{ id: string; instance_id: string; name: string; status: string; error_code: string | null; error: string | null }>(sql`
    select distinct on (d.instance_id) d.id, d.instance_id, i.name, d.status, d.error_code, d.error
    from deployments d join instances i on i.id = d.instance_id
    where i.team = ${rule.team} and i.deleted_at is null and d.completed_at is not null and d.completed_at > ${since}
    order by d.instance_id, d.completed_at desc`)).rows;
  // Subject is the instance: a later deployment that completes resolves it.
  return {
    observations: rows.filter((r) => r.status === "failed" || r.status === "rolled_back").map((r) => ({
      subject: r.instance_id, subjectName: r.name, forMinutes: 0,
      summary: `deployment to ${r.name} ${r.status === "failed" ? "failed" : "rolled back"}${r.error_code ? ` (${r.error_code})` : ""}`,
      details: { instanceId: r.instance_id, deploymentId: r.id, status: r.status, errorCode: r.error_code, error: r.error },
    })),
  };
};

const bridgeDisconnected: Condition<"bridge_disconnected"> = async (ctx, rule) => {
  const rows = (await ctx.db.execute<{ id: string; name: string; status: string }>(sql`
    select distinct c.id, c.name, c.status from clusters c join instances i on i.cluster_id = c.id
    where i.team = ${rule.team} and i.deleted_at is null and c.deleted_at is null`)).rows;
  // Bounded like the scrape (core/metrics/collect.ts): a link that does not answer in time is judged by its row's status.
  const statuses = await linkStatuses(ctx.env, rows, 15_000);
  const links = rows.map((c, i) => ({ c, s: statuses[i] }));
  return {
    observations: links.filter(({ c, s }) => (s ? !s.connected : c.status !== "connected")).map(({ c, s }) => ({
      subject: c.id, subjectName: c.name, forMinutes: rule.params.minutes,
      summary: `cluster ${c.name}'s bridge has been disconnected for ${rule.params.minutes} min`,
      details: { clusterId: c.id, lastHelloAt: s?.lastHello?.at ?? null, openCommands: s?.openCommands ?? null },
    })),
  };
};

/** One alert per cluster while its bridge's latest `cluster.warnings` report is not empty (core/fleet/clusterWarnings.ts); cleared, it resolves. */
const clusterWarning: Condition<"cluster_warning"> = async (ctx, rule) => {
  const rows = (await ctx.db.execute<{ id: string; name: string; warnings: ClusterWarning[] }>(sql`
    select c.id, c.name, c.warnings from clusters c
    where c.deleted_at is null and jsonb_array_length(c.warnings) > 0
      and exists (select 1 from instances i where i.cluster_id = c.id and i.team = ${rule.team} and i.deleted_at is null)`)).rows;
  return {
    observations: rows.map((c) => ({
      subject: c.id, subjectName: c.name, forMinutes: 0,
      summary: `cluster ${c.name}: ${c.warnings.map((w) => w.code).join(", ")} (${c.warnings[0]!.message.slice(0, 200)})`,
      details: { clusterId: c.id, warnings: c.warnings },
    })),
  };
};

/** The counter summed over every MetricsSink shard and reason (core/metrics/collect.ts reads it the same way). */
async function webhookFailuresTotal(env: Env): Promise<number> {
  const shards = await Promise.all(Array.from({ length: SHARDS }, (_, i) => env.METRICS.get(env.METRICS.idFromName(shardName(i))).read()));
  return shards.flat().filter((r) => r.series === SERIES.webhookVerificationFailures.name).reduce((n, r) => n + r.value, 0);
}

const webhookSignatureFailures: Condition<"webhook_signature_failures"> = async (ctx, rule) => {
  const total = await webhookFailuresTotal(ctx.env);
  const last = rule.state as { total?: number; at?: string };
  const state = { total, at: ctx.now.toISOString() };
  // The first evaluation only sets the baseline: a rate needs two points.
  if (typeof last.total !== "number" || !last.at) return { observations: [], state };
  const seconds = Math.max(1, (ctx.now.getTime() - Date.parse(last.at)) / 1000);
  // A counter that went down was reset (a sink lost): count from zero.
  const rate = (total >= last.total ? total - last.total : total) / seconds;
  const observations = rate > rule.params.perSecond ? [{
    subject: "webhooks", subjectName: "cluster webhooks", forMinutes: 0,
    summary: `webhook signature failures at ${rate.toFixed(3)}/s (threshold ${rule.params.perSecond}/s)`,
    details: { ratePerSecond: rate, perSecond: rule.params.perSecond, failuresTotal: total },
  }] : [];
  return { observations, state };
};

async function costToday(db: Db, team: string, now: Date): Promise<number> {
  const dayStart = `${now.toISOString().slice(0, 10)}T00:00:00.000Z`;
  const [row] = (await db.execute<{ cost: string | null }>(sql`
    select coalesce(sum(a.cost_usd), 0) as cost from ai_decision_logs a join instances i on i.id = a.instance_id
    where i.team = ${team} and a.timestamp >= ${dayStart}`)).rows;
  return Number(row?.cost ?? 0);
}

const aiBudget: Condition<"ai_budget"> = async (ctx, rule) => {
  const { metric, thresholdsPercent } = rule.params;
  let budget = rule.params.dailyBudget ?? null;
  if (metric === "tokens" && budget === null) budget = (await quotaOf(ctx.db, rule.team))?.maxLlmTokensPerDay ?? null;
  // No budget (no quota, or a quota without a token limit): nothing to compare against.
  if (!budget) return { observations: [] };
  const used = metric === "tokens" ? await tokensUsed(ctx.kv, rule.team, ctx.now) : await costToday(ctx.db, rule.team, ctx.now);
  const percent = (used / budget) * 100;
  const unit = metric === "tokens" ? "tokens" : "USD";
  return {
    observations: thresholdsPercent.filter((t) => percent >= t).map((t) => ({
      subject: `${metric}@${t}`, subjectName: `${metric} ${t}%`, forMinutes: 0,
      summary: `team ${rule.team} used ${percent.toFixed(1)} % of its daily ${metric} budget (${used} of ${budget} ${unit}; threshold ${t} %)`,
      details: { metric, used, budget, percent, thresholdPercent: t },
    })),
  };
};

/** Rows verified per evaluation at most: the rest waits for the next run, so one run stays cheap. */
const AUDIT_ROWS_PER_EVALUATION = 5_000;

const auditChain: Condition<"audit_chain"> = async (ctx, rule) => {
  const state = rule.state as { verifiedId?: number; broken?: { id: number; reason: string } };
  // Once broken, re-check from the broken row (a restore may have repaired it); otherwise go on from the verified head.
  const fromId = state.broken ? state.broken.id : state.verifiedId !== undefined ? state.verifiedId + 1 : undefined;
  // The first run starts where verification does (a checkpoint, or genesis), bounded the same way.
  const start = fromId ?? Number((await ctx.db.execute<{ min: string | null }>(sql`select min(id) as min from audit_logs`)).rows[0]?.min ?? 1);
  const result = await verifyAuditChain(ctx.db, {
    ...(fromId !== undefined ? { fromId } : {}),
    toId: start + AUDIT_ROWS_PER_EVALUATION - 1,
    checkpointKey: ctx.auditCheckpointKey,
    batch: 1000,
  });
  if (result.ok) {
    const verifiedId = result.head?.id ?? state.verifiedId;
    return { observations: [], state: verifiedId !== undefined ? { verifiedId } : {} };
  }
  const broken = { id: result.firstBroken.id, reason: result.firstBroken.reason };
  return {
    observations: [{
      subject: "audit-chain", subjectName: "audit chain", forMinutes: 0,
      summary: `audit chain verification failed at row ${broken.id}: ${broken.reason}`,
      details: { firstBroken: result.firstBroken },
    }],
    state: { ...(state.verifiedId !== undefined ? { verifiedId: state.verifiedId } : {}), broken },
  };
};

export const CONDITIONS: { [K in AlertKind]: Condition<K> } = {
  instance_down: instanceDown,
  instance_not_ready: instanceNotReady,
  crash_loop: crashLoop,
  deployment_failed: deploymentFailed,
  bridge_disconnected: bridgeDisconnected,
  cluster_warning: clusterWarning,
  webhook_signature_failures: webhookSignatureFailures,
  ai_budget: aiBudget,
  audit_chain: auditChain,
};
