import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { alertNotifications, alerts } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { announceAlert } from "../../core/alerts/evaluate.ts";
import { ALERT_KINDS, ALERT_STATUSES } from "../../core/alerts/kinds.ts";
import { idParam, team } from "../../core/alerts/shapes.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { alertNotificationSchema, alertSchema } from "../../protocol/api/alerts.ts";

type Row = typeof alerts.$inferSelect;

const listQuery = z.strictObject({
  ...pageQuery, status: z.enum(ALERT_STATUSES).optional(), team: team.optional(), kind: z.enum(ALERT_KINDS).optional(), ruleId: z.uuid().optional(),
});
const notificationsQuery = z.strictObject({
  ...pageQuery, status: z.enum(["queued", "delivered", "dead"]).optional(), team: team.optional(), alertId: z.uuid().optional(), channelId: z.uuid().optional(),
});

const view = (r: Row) => ({ ...r, status: r.status as (typeof ALERT_STATUSES)[number] });
const notificationView = (r: typeof alertNotifications.$inferSelect) => ({
  ...r, event: r.event as "fired" | "resolved", status: r.status as "queued" | "delivered" | "dead",
});

const doc = describe("Alerts");

/** Alert history and acknowledgement; rules and channels are alertsRules.ts and alertsChannels.ts. */
export const alertRoutes = new Hono<AppEnv>()
  .get("/", doc({
    summary: "Alert history, newest first (filters: status, team, kind, ruleId)",
    responses: { 200: pageOf(alertSchema) },
  }), requirePermission("alerts", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(alerts).where(and(
      q.status ? eq(alerts.status, q.status) : undefined,
      q.team ? eq(alerts.team, q.team) : undefined,
      q.kind ? eq(alerts.kind, q.kind) : undefined,
      q.ruleId ? eq(alerts.ruleId, q.ruleId) : undefined,
      cursor ? or(lt(alerts.createdAt, cursor.createdAt), and(eq(alerts.createdAt, cursor.createdAt), lt(alerts.id, cursor.id))) : undefined,
    )).orderBy(desc(alerts.createdAt), desc(alerts.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(view), nextCursor });
  })
  .get("/notifications", doc({
    summary: "Notification deliveries, newest first; status=dead lists the dead letters",
    responses: { 200: pageOf(alertNotificationSchema) },
  }), requirePermission("alerts", "read"), validate("query", notificationsQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const n = alertNotifications;
    const rows = await c.var.services.db.select().from(n).where(and(
      q.status ? eq(n.status, q.status) : undefined,
      q.team ? eq(n.team, q.team) : undefined,
      q.alertId ? eq(n.alertId, q.alertId) : undefined,
      q.channelId ? eq(n.channelId, q.channelId) : undefined,
      cursor ? or(lt(n.createdAt, cursor.createdAt), and(eq(n.createdAt, cursor.createdAt), lt(n.id, cursor.id))) : undefined,
    )).orderBy(desc(n.createdAt), desc(n.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(notificationView), nextCursor });
  })
  .get("/:id", doc({ summary: "An alert", responses: { 200: alertSchema }, errors: [404] }), requirePermission("alerts", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(alerts).where(eq(alerts.id, id)).limit(1);
    if (!row) throw notFound("alert", id);
    return c.json(view(row));
  })
  .post("/:id/ack", doc({
    summary: "Acknowledge a firing alert (someone is on it); it still resolves when its condition clears",
    description: "Acknowledging an acknowledged alert answers it unchanged; a pending or resolved one is 409 `alert_not_firing`.",
    responses: { 200: alertSchema }, errors: [404, 409],
  }), requirePermission("alerts", "update"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const { row, changed } = await transact(c, async (tx, record) => {
      const [before] = await tx.select().from(alerts).where(eq(alerts.id, id)).for("update").limit(1);
      if (!before) throw notFound("alert", id);
      if (before.status === "acknowledged") return { row: before, changed: false };
      if (before.status !== "firing") throw new ApiError(409, "alert_not_firing", `alert ${id} is ${before.status}; only a firing alert can be acknowledged`, { status: before.status });
      const now = new Date();
      const [updated] = await tx.update(alerts).set({ status: "acknowledged", acknowledgedAt: now, acknowledgedBy: c.var.principal?.userId ?? null, updatedAt: now })
        .where(eq(alerts.id, id)).returning();
      record({ action: "ALERT_ACKNOWLEDGED", resourceType: "alert", resourceId: id, details: { ruleId: before.ruleId, team: before.team, kind: before.kind, subject: before.subject } });
      return { row: updated!, changed: true };
    });
    if (changed) await announceAlert(c.env, row);
    return c.json(view(row));
  });
