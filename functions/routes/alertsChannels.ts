import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { alertChannels } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { seal } from "../../core/crypto/secretBox.ts";
import { idParam, name, team } from "../../core/alerts/shapes.ts";
import { CHANNEL_URL_MESSAGES, channelUrlRefusal } from "../../core/alerts/channelUrl.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { alertChannelSchema, alertChannelWithSecretSchema } from "../../protocol/api/alerts.ts";
import { randomBytes, toBase64 } from "../../protocol/encoding.ts";

type Row = typeof alertChannels.$inferSelect;

const url = z.url().max(2000).refine((u) => {
  try { return /^https?:$/.test(new URL(u).protocol); } catch { return false; }
}, "http or https URLs only");
const createBody = z.strictObject({ team, name, kind: z.enum(["webhook", "slack"]), url, enabled: z.boolean().default(true) });
const listQuery = z.strictObject({ ...pageQuery, team: team.optional() });

/** A Standard Webhooks secret, as the standardwebhooks package reads it. */
const newChannelSecret = () => `whsec_${toBase64(randomBytes(32))}`;

// Never the sealed secret: it is shown once, at creation.
const view = (r: Row) => ({
  id: r.id, team: r.team, name: r.name, kind: r.kind as "webhook" | "slack", url: r.url, enabled: r.enabled, createdAt: r.createdAt, updatedAt: r.updatedAt,
});

const doc = describe("Alerts");

/**
 * Where a team's alerts go (core/alerts/notify.ts). No PATCH: a channel's URL
 * decides who reads alert text, so changing it is delete and create (admins),
 * and a lost secret is replaced the same way.
 */
export const alertChannelRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List notification channels, newest first (never their secrets)", responses: { 200: pageOf(alertChannelSchema) } }), requirePermission("alerts", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(alertChannels).where(and(
      q.team ? eq(alertChannels.team, q.team) : undefined,
      cursor ? or(lt(alertChannels.createdAt, cursor.createdAt), and(eq(alertChannels.createdAt, cursor.createdAt), lt(alertChannels.id, cursor.id))) : undefined,
    )).orderBy(desc(alertChannels.createdAt), desc(alertChannels.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(view), nextCursor });
  })
  .get("/:id", doc({ summary: "A notification channel (never its secret)", responses: { 200: alertChannelSchema }, errors: [404] }), requirePermission("alerts", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(alertChannels).where(eq(alertChannels.id, id)).limit(1);
    if (!row) throw notFound("alert_channel", id);
    return c.json(view(row));
  })
  .post("/", doc({
    summary: "Add a notification channel (a webhook's signing secret is shown only in this answer)",
    description: "`webhook`: a JSON POST signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) under the returned whsec_ secret. `slack`: a Slack incoming-webhook body ({text, blocks}), unsigned.",
    responses: { 201: alertChannelWithSecretSchema }, errors: [409],
  }), requirePermission("alerts", "create"), validate("json", createBody), async (c) => {
    const body = c.req.valid("json");
    const refused = channelUrlRefusal(body.url, c.env);
    if (refused) {
      throw new ApiError(400, "validation_failed", CHANNEL_URL_MESSAGES[refused], [{ path: "url", message: CHANNEL_URL_MESSAGES[refused], code: `channel_url_${refused}` }]);
    }
    const secret = body.kind === "webhook" ? newChannelSecret() : null;
    const secretSealed = secret ? await seal(secret, c.var.services.config.encryptionKey) : null;
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(alertChannels).values({ ...body, secretSealed, createdAt: new Date() }).onConflictDoNothing().returning();
      if (!created) throw new ApiError(409, "alert_channel_exists", `team ${body.team} already has a channel named ${body.name}`);
      record({ action: "ALERT_CHANNEL_CREATED", resourceType: "alert_channel", resourceId: created.id, details: { team: body.team, name: body.name, kind: body.kind, url: body.url } });
      return created;
    });
    return c.json({ ...view(row), secret }, 201);
  })
  .delete("/:id", doc({ summary: "Remove a notification channel (its dead letters stay)", responses: { 204: null }, errors: [404] }), requirePermission("alerts", "delete"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    await transact(c, async (tx, record) => {
      const [gone] = await tx.delete(alertChannels).where(eq(alertChannels.id, id)).returning();
      if (!gone) throw notFound("alert_channel", id);
      record({ action: "ALERT_CHANNEL_DELETED", resourceType: "alert_channel", resourceId: id, details: { team: gone.team, name: gone.name, kind: gone.kind, url: gone.url } });
    });
    return c.body(null, 204);
  });
