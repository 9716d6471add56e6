/**
 * The alert lifecycle, once per enabled rule per evaluation:
 *   condition seen        → pending (its `minutes` not up yet) or firing
 *   pending, time up      → firing                         (notified, fleet:alert)
 *   firing / acknowledged, clear for `clearEvaluations` runs in a row → resolved (notified, fleet:alert)
 *   seen again while clearing → clear count back to 0, refireCount + 1 (flap protection)
 *   pending, clear        → dropped (it never fired)
 * One open alert per (rule, subject): the partial unique index uq_alerts_open.
 * A rule's alerts, its state and their audit rows commit in one transaction,
 * under the rule row's lock (a duplicate delivery of the job skips a locked rule).
 */
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { appendAudit, type AuditEntry } from "../../db/auditChain.ts";
import { alertRules, alerts } from "../../db/schema.ts";
import type { Env } from "../env.ts";
import type { FleetAlertEvent } from "../objects.ts";
import { CONDITIONS, type ConditionContext, type ConditionResult, type Observation } from "./conditions.ts";
import { OPEN_STATUSES, isAlertKind, paramShapes } from "./kinds.ts";
import { publishNotifications, queueNotifications, type AlertEvent } from "./notify.ts";

type Rule = typeof alertRules.$inferSelect;
type AlertRow = typeof alerts.$inferSelect;

export interface EvaluationSummary {
  rules: number;
  skipped: number;
  errors: Array<{ ruleId: string; error: string }>;
  fired: number;
  resolved: number;
  open: number;
}

interface Change { event: AlertEvent; alert: AlertRow }

async function observe(ctx: ConditionContext, rule: Rule): Promise<ConditionResult> {
  if (!isAlertKind(rule.kind)) throw new Error(`unknown alert kind ${rule.kind}`);
  const params = paramShapes[rule.kind].parse(rule.params);
  const condition = CONDITIONS[rule.kind] as (c: ConditionContext, r: { team: string; params: unknown; state: Record<string, unknown> }) => Promise<ConditionResult>;
  return condition(ctx, { team: rule.team, params, state: rule.state });
}

const minutesSince = (from: Date, now: Date) => (now.getTime() - from.getTime()) / 60_000;

function auditOf(action: string, a: AlertRow, extra: Record<string, unknown> = {}): AuditEntry {
  return {
    userId: null, action, resourceType: "alert", resourceId: a.id, statusCode: null,
    details: { ruleId: a.ruleId, team: a.team, kind: a.kind, subject: a.subject, status: a.status, summary: a.summary, ...extra },
  };
}

/** Applies one rule's observations to its open alerts; returns what fired and resolved. */
async function applyRule(db: Db, rule: Rule, result: ConditionResult, now: Date): Promise<{ changes: Change[]; notificationIds: string[]; open: number } | null> {
  return db.transaction(async (tx) => {
    const [locked] = await tx.select({ id: alertRules.id }).from(alertRules)
      .where(and(eq(alertRules.id, rule.id), eq(alertRules.enabled, true))).for("update", { skipLocked: true }).limit(1);
    if (!locked) return null;
    const openRows = await tx.select().from(alerts).where(and(eq(alerts.ruleId, rule.id), inArray(alerts.status, [...OPEN_STATUSES])));
    const bySubject = new Map(openRows.map((a) => [a.subject, a]));
    const seen = new Map<string, Observation>(result.observations.map((o) => [o.subject, o]));
    const changes: Change[] = [];
    const audit: AuditEntry[] = [];
    let open = 0;

    for (const o of seen.values()) {
      const known = bySubject.get(o.subject);
      const content = { summary: o.summary.slice(0, 2000), details: o.details, subjectName: o.subjectName, updatedAt: now };
      if (!known) {
        const firing = o.forMinutes === 0;
        const [row] = await tx.insert(alerts).values({
          ruleId: rule.id, team: rule.team, kind: rule.kind, severity: rule.severity, subject: o.subject,
          status: firing ? "firing" : "pending", startedAt: now, firedAt: firing ? now : null, ...content,
          // Milliseconds, as the list cursor carries them (now() has microseconds).
          createdAt: new Date(),
        }).onConflictDoNothing().returning();
        open++;
        if (row && firing) {
          changes.push({ event: "fired", alert: row });
          audit.push(auditOf("ALERT_FIRED", row));
        }
        continue;
      }
      open++;
      const due = known.status === "pending" && minutesSince(known.startedAt, now) >= o.forMinutes;
      const refired = known.clearCount > 0;
      const [row] = await tx.update(alerts).set({
        ...content, clearCount: 0,
        ...(refired ? { refireCount: known.refireCount + 1 } : {}),
        ...(due ? { status: "firing", firedAt: now } : {}),
      }).where(eq(alerts.id, known.id)).returning();
      if (due) {
        changes.push({ event: "fired", alert: row! });
        audit.push(auditOf("ALERT_FIRED", row!));
      }
    }

    for (const known of openRows) {
      if (seen.has(known.subject)) continue;
      if (known.status === "pending") {
        await tx.delete(alerts).where(eq(alerts.id, known.id));
        continue;
      }
      const clearCount = known.clearCount + 1;
      const resolve = clearCount >= rule.clearEvaluations;
      const [row] = await tx.update(alerts).set({
        clearCount, updatedAt: now, ...(resolve ? { status: "resolved", resolvedAt: now } : {}),
      }).where(eq(alerts.id, known.id)).returning();
      if (resolve) {
        changes.push({ event: "resolved", alert: row! });
        audit.push(auditOf("ALERT_RESOLVED", row!, { clearEvaluations: rule.clearEvaluations }));
      } else open++;
    }

    if (result.state !== undefined) await tx.update(alertRules).set({ state: result.state }).where(eq(alertRules.id, rule.id));
    const notificationIds: string[] = [];
    for (const ch of changes) notificationIds.push(...(await queueNotifications(tx, ch.event, ch.alert, rule.name)));
    await appendAudit(tx, audit);
    return { changes, notificationIds, open };
  });
}

/** Tells /ws/fleet watchers; best effort like every fleet event (the database is the record). */
export async function announceAlert(env: Env, a: AlertRow): Promise<void> {
  const event: FleetAlertEvent = {
    event: "fleet:alert",
    data: {
      alertId: a.id, ruleId: a.ruleId, team: a.team, kind: a.kind, severity: a.severity, subject: a.subject,
      subjectName: a.subjectName, status: a.status, summary: a.summary, timestamp: new Date().toISOString(),
    },
  };
  try {
    await env.FLEET_EVENTS.get(env.FLEET_EVENTS.idFromName("fleet")).publish(event);
  } catch (err) {
    console.warn(JSON.stringify({ msg: "fleet:alert not published", alertId: a.id, err: String(err) }));
  }
}

/** Every enabled rule, one after another (a fleet has tens of rules, and each holds its own lock briefly). */
export async function evaluateAlerts(ctx: ConditionContext, publicUrl: string): Promise<EvaluationSummary> {
  const rules = await ctx.db.select().from(alertRules).where(eq(alertRules.enabled, true)).orderBy(alertRules.createdAt);
  const summary: EvaluationSummary = { rules: rules.length, skipped: 0, errors: [], fired: 0, resolved: 0, open: 0 };
  for (const rule of rules) {
    let applied: Awaited<ReturnType<typeof applyRule>>;
    try {
      // A condition that cannot be read changes nothing: its open alerts neither resolve nor clear.
      applied = await applyRule(ctx.db, rule, await observe(ctx, rule), ctx.now);
    } catch (err) {
      summary.errors.push({ ruleId: rule.id, error: String(err).slice(0, 300) });
      console.error(JSON.stringify({ level: "error", msg: "alert rule not evaluated", ruleId: rule.id, kind: rule.kind, err: String(err) }));
      continue;
    }
    if (!applied) {
      summary.skipped++;
      continue;
    }
    summary.open += applied.open;
    for (const ch of applied.changes) {
      if (ch.event === "fired") summary.fired++;
      else summary.resolved++;
      await announceAlert(ctx.env, ch.alert);
    }
    await publishNotifications(ctx.db, ctx.env, publicUrl, applied.notificationIds);
  }
  return summary;
}

/** Open alerts of a rule that is deleted or disabled end here: resolved, audited by the caller's transaction. */
export async function resolveOpenAlertsOf(tx: Parameters<Parameters<Db["transaction"]>[0]>[0], ruleId: string, now: Date): Promise<AlertRow[]> {
  const resolved = await tx.update(alerts).set({ status: "resolved", resolvedAt: now, updatedAt: now })
    .where(and(eq(alerts.ruleId, ruleId), inArray(alerts.status, ["firing", "acknowledged"]))).returning();
  await tx.delete(alerts).where(and(eq(alerts.ruleId, ruleId), eq(alerts.status, "pending")));
  return resolved;
}
