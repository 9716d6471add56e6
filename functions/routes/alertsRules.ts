import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { alertRules } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { announceAlert, resolveOpenAlertsOf } from "../../core/alerts/evaluate.ts";
import { ALERT_KINDS, SEVERITIES, isAlertKind, paramShapes } from "../../core/alerts/kinds.ts";
import { publishNotifications, queueNotifications } from "../../core/alerts/notify.ts";
import { idParam, name, parseParams, publicUrlOf, team } from "../../core/alerts/shapes.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { alertRuleSchema } from "../../protocol/api/alerts.ts";

type Row = typeof alertRules.$inferSelect;

/** Checked against its kind by parseParams; the document shows each kind's shape. */
const params = z.unknown().meta({
  description: "The kind's thresholds, checked on write; {} takes every default",
  anyOf: ALERT_KINDS.map((kind) => ({ title: kind, ...z.toJSONSchema(paramShapes[kind], { io: "input", unrepresentable: "any" }) })),
});
const clearEvaluations = z.number().int().min(1).max(20);
const createBody = z.strictObject({
  team, name, kind: z.enum(ALERT_KINDS), params: params.optional(),
  severity: z.enum(SEVERITIES).default("warning"), clearEvaluations: clearEvaluations.default(2), enabled: z.boolean().default(true),
});
const patchBody = z.strictObject({
  name: name.optional(), params: params.optional(), severity: z.enum(SEVERITIES).optional(),
  clearEvaluations: clearEvaluations.optional(), enabled: z.boolean().optional(),
}).refine((b) => Object.keys(b).length > 0, "send at least one of name, params, severity, clearEvaluations, enabled");
const listQuery = z.strictObject({ ...pageQuery, team: team.optional(), kind: z.enum(ALERT_KINDS).optional() });

const view = (r: Row) => ({
  id: r.id, team: r.team, name: r.name, kind: r.kind, params: r.params, severity: r.severity as (typeof SEVERITIES)[number],
  clearEvaluations: r.clearEvaluations, enabled: r.enabled, createdAt: r.createdAt, updatedAt: r.updatedAt,
});
const nameTaken = (t: string, n: string) => new ApiError(409, "alert_rule_exists", `team ${t} already has an alert rule named ${n}`);
const settings = (r: Row) => ({ name: r.name, params: r.params, severity: r.severity, clearEvaluations: r.clearEvaluations, enabled: r.enabled });

const doc = describe("Alerts");

/**
 * Per-team alert rules (core/alerts/kinds.ts), thresholds checked on write.
 * The evaluation job (queues/alertsEvaluate.ts) reads them every minute;
 * disabling or deleting a rule resolves its open alerts at once.
 */
export const alertRuleRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List alert rules, newest first", responses: { 200: pageOf(alertRuleSchema) } }), requirePermission("alerts", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(alertRules).where(and(
      q.team ? eq(alertRules.team, q.team) : undefined,
      q.kind ? eq(alertRules.kind, q.kind) : undefined,
      cursor ? or(lt(alertRules.createdAt, cursor.createdAt), and(eq(alertRules.createdAt, cursor.createdAt), lt(alertRules.id, cursor.id))) : undefined,
    )).orderBy(desc(alertRules.createdAt), desc(alertRules.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(view), nextCursor });
  })
  .get("/:id", doc({ summary: "An alert rule", responses: { 200: alertRuleSchema }, errors: [404] }), requirePermission("alerts", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(alertRules).where(eq(alertRules.id, id)).limit(1);
    if (!row) throw notFound("alert_rule", id);
    return c.json(view(row));
  })
  .post("/", doc({
    summary: "Create an alert rule; its params are checked against its kind",
    description: "400 `validation_failed` names the field (`params.minutes`, …). Kinds, params and defaults: docs/observability.md, Alerts.",
    responses: { 201: alertRuleSchema }, errors: [409],
  }), requirePermission("alerts", "create"), validate("json", createBody), async (c) => {
    const body = c.req.valid("json");
    const p = parseParams(body.kind, body.params);
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(alertRules).values({
        team: body.team, name: body.name, kind: body.kind, params: p, severity: body.severity,
        clearEvaluations: body.clearEvaluations, enabled: body.enabled, createdBy: c.var.principal?.userId ?? null,
        // Milliseconds, as the list cursor carries them (now() has microseconds).
        createdAt: new Date(),
      }).onConflictDoNothing().returning();
      if (!created) throw nameTaken(body.team, body.name);
      record({ action: "ALERT_RULE_CREATED", resourceType: "alert_rule", resourceId: created.id, details: { team: body.team, kind: body.kind, ...settings(created) } });
      return created;
    });
    return c.json(view(row), 201);
  })
  .patch("/:id", doc({
    summary: "Change an alert rule's name, params, severity, clearEvaluations or enabled flag",
    description: "Disabling a rule resolves its open alerts (notified like any resolution).",
    responses: { 200: alertRuleSchema }, errors: [404, 409],
  }), requirePermission("alerts", "update"), validate("param", idParam), validate("json", patchBody), async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const now = new Date();
    const { row, resolved, notificationIds } = await transact(c, async (tx, record) => {
      const [before] = await tx.select().from(alertRules).where(eq(alertRules.id, id)).for("update").limit(1);
      if (!before) throw notFound("alert_rule", id);
      if (!isAlertKind(before.kind)) throw new ApiError(409, "alert_kind_unknown", `this rule's kind ${before.kind} is no longer supported; delete it`);
      const p = body.params !== undefined ? parseParams(before.kind, body.params) : undefined;
      if (body.name !== undefined && body.name !== before.name) {
        const [taken] = await tx.select({ id: alertRules.id }).from(alertRules).where(and(eq(alertRules.team, before.team), eq(alertRules.name, body.name))).limit(1);
        if (taken) throw nameTaken(before.team, body.name);
      }
      const [updated] = await tx.update(alertRules).set({
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(p !== undefined ? { params: p } : {}),
        ...(body.severity !== undefined ? { severity: body.severity } : {}),
        ...(body.clearEvaluations !== undefined ? { clearEvaluations: body.clearEvaluations } : {}),
        ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
        updatedAt: now,
      }).where(eq(alertRules.id, id)).returning();
      const resolved = body.enabled === false ? await resolveOpenAlertsOf(tx, id, now) : [];
      const notificationIds: string[] = [];
      for (const a of resolved) {
        notificationIds.push(...(await queueNotifications(tx, "resolved", a, updated!.name)));
        record({ action: "ALERT_RESOLVED", resourceType: "alert", resourceId: a.id, details: { ruleId: id, why: "rule disabled" } });
      }
      record({ action: "ALERT_RULE_UPDATED", resourceType: "alert_rule", resourceId: id, details: { team: before.team, kind: before.kind, from: settings(before), to: settings(updated!) } });
      return { row: updated!, resolved, notificationIds };
    });
    await afterResolve(c, resolved, notificationIds);
    return c.json(view(row));
  })
  .delete("/:id", doc({ summary: "Delete an alert rule; its open alerts resolve, its history stays", responses: { 204: null }, errors: [404] }), requirePermission("alerts", "delete"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const { resolved, notificationIds } = await transact(c, async (tx, record) => {
      const [rule] = await tx.select().from(alertRules).where(eq(alertRules.id, id)).for("update").limit(1);
      if (!rule) throw notFound("alert_rule", id);
      const resolved = await resolveOpenAlertsOf(tx, id, new Date());
      const notificationIds: string[] = [];
      for (const a of resolved) {
        notificationIds.push(...(await queueNotifications(tx, "resolved", a, rule.name)));
        record({ action: "ALERT_RESOLVED", resourceType: "alert", resourceId: a.id, details: { ruleId: id, why: "rule deleted" } });
      }
      await tx.delete(alertRules).where(eq(alertRules.id, id));
      record({ action: "ALERT_RULE_DELETED", resourceType: "alert_rule", resourceId: id, details: { team: rule.team, kind: rule.kind, ...settings(rule) } });
      return { resolved, notificationIds };
    });
    await afterResolve(c, resolved, notificationIds);
    return c.body(null, 204);
  });

async function afterResolve(
  c: { env: AppEnv["Bindings"]; req: { url: string }; var: AppEnv["Variables"] },
  resolved: Awaited<ReturnType<typeof resolveOpenAlertsOf>>,
  notificationIds: string[],
): Promise<void> {
  for (const a of resolved) await announceAlert(c.env, a);
  await publishNotifications(c.var.services.db, c.env, publicUrlOf(c.env, c.req.url), notificationIds);
}
