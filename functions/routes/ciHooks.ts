/**
 * CI webhooks (docs/ci.md). Management (a user with the deployments
 * permissions) creates a hook with one fixed action and gets its secret once;
 * CI then posts a flow file to /api/webhooks/ci/:id, signed with that secret
 * (Standard Webhooks or GitHub's X-Hub-Signature-256). The delivery route is
 * public: mounted before `authenticate`, it trusts nothing until the signature
 * verified, and then acts as the hook's creator.
 */
import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { appendAudit } from "../../db/auditChain.ts";
import { ciHooks, pipelines } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { hookActor, parseDelivery, runHookAction } from "../../core/ciHooks/deliver.ts";
import { DeliveryRefused, verifyCiDelivery, type CiHookRow } from "../../core/ciHooks/verify.ts";
import { seal } from "../../core/crypto/secretBox.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { counted, recordFromRequest } from "../../core/metrics/record.ts";
import { SERIES } from "../../core/metrics/series.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { publicUrlOf } from "../../core/alerts/shapes.ts";
import { assertStagesValid } from "../../core/pipelines/stages.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { ciDeliveryAcceptedSchema, ciDeliverySchema, ciHookSchema, ciHookWithSecretSchema, createCiHookSchema } from "../../protocol/api/ciHooks.ts";
import { randomBytes, toBase64 } from "../../protocol/encoding.ts";
import { permissionsOf } from "../middleware/authenticate.ts";
import { requestOrigin, transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { allows } from "../rbac/permissions.ts";

const idParam = z.object({ id: z.uuid() });
const listQuery = z.strictObject({ ...pageQuery });

/** A Standard Webhooks secret (32 random bytes); GitHub takes the same string as its webhook secret. */
const newHookSecret = () => `whsec_${toBase64(randomBytes(32))}`;

const view = (c: Context<AppEnv>, r: CiHookRow) => ({
  id: r.id, name: r.name, team: r.team, action: r.action, actorId: r.createdBy,
  url: new URL(`/api/webhooks/ci/${r.id}`, publicUrlOf(c.env, c.req.url)).toString(),
  lastDeliveryAt: r.lastDeliveryAt?.toISOString() ?? null, createdAt: r.createdAt.toISOString(),
});

const doc = describe("CI");

async function assertStageExists(c: Context<AppEnv>, pipelineId: string, stage: string): Promise<void> {
  const [p] = await c.var.services.db.select({ name: pipelines.name, stages: pipelines.stages }).from(pipelines).where(eq(pipelines.id, pipelineId)).limit(1);
  if (!p) throw notFound("pipeline", pipelineId);
  if (!p.stages.some((s) => s.name === stage)) throw new ApiError(404, "stage_not_found", `pipeline ${p.name} has no stage ${stage}`);
}

/** A refusal leaves a trace: counted for GET /metrics (as the bridge's are), and audited when it names a real hook. */
async function recordRefusal(c: Context<AppEnv>, err: DeliveryRefused): Promise<void> {
  recordFromRequest(c, [counted(SERIES.webhookVerificationFailures, { reason: `ci_${err.code}` })]);
  if (!err.hook) return;
  const { ipAddress, userAgent } = requestOrigin(c);
  await c.var.services.db.transaction((tx) => appendAudit(tx, [{
    userId: null, ipAddress, userAgent, statusCode: err.status, action: "CI_HOOK_REFUSED", resourceType: "ci_hook", resourceId: err.hook!.id,
    details: { code: err.code, scheme: err.scheme, deliveryId: err.deliveryId },
  }])).catch((e: unknown) => console.error(JSON.stringify({ level: "error", alert: "audit_write_failed", msg: "CI hook refusal not audited", err: String(e) })));
}

export const ciHookDeliveryRoutes = new Hono<AppEnv>()
  .post("/:id", doc({
    summary: "A CI delivery: the hook's action on the posted flow file (signed, public)",
    description: "Signed with the hook's secret, as Standard Webhooks (`webhook-id`, `webhook-timestamp` within 5 minutes, "
      + "`webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`) or as GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` "
      + "with `X-GitHub-Delivery` as the replay key (remembered 24 h). Verified before the body is parsed: forged → 401 `invalid_signature`, "
      + "stale → 401 `stale_timestamp`, a delivery id seen before → 409 `replayed`; nothing starts. The body is `{flows}` or `{versionId}` "
      + "(a GitHub push payload carries no file contents: the CI job posts the flow file). A `rollout` hook answers the rollout's id, "
      + "a `promote` hook the promotion's (and its rollout's once started). A GitHub `ping` event answers 200 `pong`.",
    access: "public",
    body: ciDeliverySchema,
    responses: { 200: ciDeliveryAcceptedSchema, 202: ciDeliveryAcceptedSchema },
    errors: [401, 403, 404, 409, 422],
  }), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    let delivery;
    try {
      delivery = await verifyCiDelivery(c, id);
    } catch (err) {
      if (err instanceof DeliveryRefused) await recordRefusal(c, err);
      throw err;
    }
    if (delivery.scheme === "github" && c.req.header("X-GitHub-Event") === "ping") {
      return c.json({ hookId: id, rolloutId: null, promotionId: null, status: "pong" }, 200);
    }
    const { db } = c.var.services;
    try {
      const payload = parseDelivery(delivery.body);
      const actor = await hookActor(db, delivery.hook, (role) => permissionsOf(db, role), (p) => allows(p, "deployments", "create"), requestOrigin(c));
      const outcome = await runHookAction({ db, env: c.env }, actor, delivery, payload);
      return c.json({ hookId: id, ...outcome }, 202);
    } catch (err) {
      // Refused before anything ran (bad payload, the actor's rights, the rollout's own refusal): the same id may come again.
      if (err instanceof ApiError && err.status < 500) {
        await delivery.release().catch(() => {});
        const { ipAddress, userAgent } = requestOrigin(c);
        await db.transaction((tx) => appendAudit(tx, [{
          userId: delivery.hook.createdBy, ipAddress, userAgent, statusCode: err.status, action: "CI_HOOK_DELIVERY_FAILED", resourceType: "ci_hook", resourceId: id,
          details: { scheme: delivery.scheme, deliveryId: delivery.deliveryId, code: err.code, message: err.message.slice(0, 500) },
        }])).catch(() => {});
      }
      throw err;
    }
  });

export const ciHookRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List CI hooks, newest first (never their secrets)", responses: { 200: pageOf(ciHookSchema) } }), requirePermission("deployments", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(ciHooks).where(
      cursor ? or(lt(ciHooks.createdAt, cursor.createdAt), and(eq(ciHooks.createdAt, cursor.createdAt), lt(ciHooks.id, cursor.id))) : undefined,
    ).orderBy(desc(ciHooks.createdAt), desc(ciHooks.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map((r) => view(c, r)), nextCursor });
  })
  .get("/:id", doc({ summary: "A CI hook (never its secret)", responses: { 200: ciHookSchema }, errors: [404] }), requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(ciHooks).where(eq(ciHooks.id, id)).limit(1);
    if (!row) throw notFound("ci_hook", id);
    return c.json(view(c, row));
  })
  .post("/", doc({
    summary: "Create a CI hook with one fixed action; its secret is shown only in this answer",
    description: "The hook acts as its creator: deliveries are audited as them and need their role to allow deployments:create at delivery time. "
      + "`rollout`: a rollout of the delivered flows to `selector` (with `rollout` defaults). `promote`: a promotion to a pipeline stage (its approval rule applies).",
    responses: { 201: ciHookWithSecretSchema }, errors: [404, 409],
  }), requirePermission("deployments", "create"), validate("json", createCiHookSchema), async (c) => {
    const body = c.req.valid("json");
    if (body.action.kind === "rollout") assertStagesValid([{ name: "hook", selector: body.action.selector, requiresApproval: false, rollout: body.action.rollout }]);
    else await assertStageExists(c, body.action.pipelineId, body.action.stage);
    const secret = newHookSecret();
    const secretSealed = await seal(secret, c.var.services.config.encryptionKey);
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(ciHooks).values({ name: body.name, team: body.team ?? null, action: body.action, secretSealed, createdBy: c.var.principal!.userId })
        .onConflictDoNothing().returning();
      if (!created) throw new ApiError(409, "ci_hook_exists", `a CI hook named ${body.name} exists`);
      record({ action: "CI_HOOK_CREATED", resourceType: "ci_hook", resourceId: created.id, details: { name: body.name, team: body.team ?? null, action: body.action } });
      return created;
    });
    return c.json({ ...view(c, row), secret }, 201);
  })
  .post("/:id/rotate", doc({
    summary: "Replace a CI hook's secret (the old one stops at once); the new one is shown only in this answer",
    responses: { 200: ciHookWithSecretSchema }, errors: [404],
  }), requirePermission("deployments", "update"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const secret = newHookSecret();
    const secretSealed = await seal(secret, c.var.services.config.encryptionKey);
    const row = await transact(c, async (tx, record) => {
      const [updated] = await tx.update(ciHooks).set({ secretSealed, updatedAt: new Date() }).where(eq(ciHooks.id, id)).returning();
      if (!updated) throw notFound("ci_hook", id);
      record({ action: "CI_HOOK_SECRET_ROTATED", resourceType: "ci_hook", resourceId: id, details: { name: updated.name } });
      return updated;
    });
    return c.json({ ...view(c, row), secret });
  })
  .delete("/:id", doc({ summary: "Delete a CI hook (its deliveries are refused from then on)", responses: { 204: null }, errors: [404] }),
    requirePermission("deployments", "delete"), validate("param", idParam), async (c) => {
      const { id } = c.req.valid("param");
      await transact(c, async (tx, record) => {
        const [gone] = await tx.delete(ciHooks).where(eq(ciHooks.id, id)).returning();
        if (!gone) throw notFound("ci_hook", id);
        record({ action: "CI_HOOK_DELETED", resourceType: "ci_hook", resourceId: id, details: { name: gone.name, action: gone.action } });
      });
      return c.body(null, 204);
    });
