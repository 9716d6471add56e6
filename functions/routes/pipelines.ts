import { and, desc, eq, inArray, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { pipelinePromotions, pipelines } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { approvePromotion, rejectPromotion, requestPromotion } from "../../core/pipelines/promotions.ts";
import type { RolloutActor } from "../../core/pipelines/rollouts.ts";
import { assertStagesValid } from "../../core/pipelines/stages.ts";
import { pipelineView, promotionView, refreshPromotions } from "../../core/pipelines/state.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { requestOrigin, transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import {
  createPipelineSchema, pipelineSchema, pipelineSummarySchema, promoteSchema, promotionSchema, rejectSchema, stageName, updatePipelineSchema,
} from "../../protocol/api/pipelines.ts";

type Row = typeof pipelines.$inferSelect;

const idParam = z.object({ id: z.uuid() });
const stageParam = z.object({ id: z.uuid(), stage: stageName });
const listQuery = z.strictObject({ ...pageQuery });

const summary = (r: Row) => ({ id: r.id, name: r.name, team: r.team, stages: r.stages.map((s) => s.name), createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString() });

/** The caller as the one who requests, approves or starts (audit rows' who/where). */
export function actorOf(c: Context<AppEnv>): RolloutActor {
  const principal = c.var.principal!;
  const { ipAddress, userAgent } = requestOrigin(c);
  return { userId: principal.userId, principal, ipAddress, userAgent };
}

/** Core wrote the change and its audit row together: no generic row after it. */
function audited<T>(c: Context<AppEnv>, value: T): T {
  c.set("audited", true);
  return value;
}

async function load(c: Context<AppEnv>, id: string): Promise<Row> {
  const [row] = await c.var.services.db.select().from(pipelines).where(eq(pipelines.id, id)).limit(1);
  if (!row) throw notFound("pipeline", id);
  return row;
}

const doc = describe("Pipelines");

/**
 * Pipelines (docs/ci.md): stages in order, each a selector with rollout
 * defaults; promotions roll a version onto a stage. Managing pipelines and
 * promoting take the deployments permissions; approving takes
 * deployments:approve, which operators do not have (admins and custom roles).
 */
export const pipelineRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List pipelines, newest first", responses: { 200: pageOf(pipelineSummarySchema) } }), requirePermission("deployments", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(pipelines).where(
      cursor ? or(lt(pipelines.createdAt, cursor.createdAt), and(eq(pipelines.createdAt, cursor.createdAt), lt(pipelines.id, cursor.id))) : undefined,
    ).orderBy(desc(pipelines.createdAt), desc(pipelines.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(summary), nextCursor });
  })
  .post("/", doc({
    summary: "Create a pipeline: ordered stages, each a label selector with rollout defaults",
    description: "A bad selector is 400 `invalid_selector`; rollout defaults are checked as POST /api/rollouts checks them.",
    responses: { 201: pipelineSchema }, errors: [409],
  }), requirePermission("deployments", "create"), validate("json", createPipelineSchema), async (c) => {
    const body = c.req.valid("json");
    assertStagesValid(body.stages);
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(pipelines).values({ name: body.name, team: body.team ?? null, stages: body.stages, createdBy: c.var.principal!.userId }).onConflictDoNothing().returning();
      if (!created) throw new ApiError(409, "pipeline_exists", `a pipeline named ${body.name} exists`);
      record({ action: "PIPELINE_CREATED", resourceType: "pipeline", resourceId: created.id, details: { name: body.name, team: body.team ?? null, stages: body.stages } });
      return created;
    });
    return c.json(await pipelineView(c.var.services.db, row), 201);
  })
  .get("/:id", doc({
    summary: "A pipeline: each stage's current version (its last completed promotion), open promotions, and the promotion history",
    responses: { 200: pipelineSchema }, errors: [404],
  }), requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
    return c.json(await pipelineView(c.var.services.db, await load(c, c.req.valid("param").id)));
  })
  .patch("/:id", doc({ summary: "Change a pipeline's team or stages (stages are replaced as a whole)", responses: { 200: pipelineSchema }, errors: [404] }),
    requirePermission("deployments", "update"), validate("param", idParam), validate("json", updatePipelineSchema), async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json");
      if (body.stages) assertStagesValid(body.stages);
      const row = await transact(c, async (tx, record) => {
        const [updated] = await tx.update(pipelines).set({
          ...(body.team !== undefined ? { team: body.team } : {}), ...(body.stages ? { stages: body.stages } : {}), updatedAt: new Date(),
        }).where(eq(pipelines.id, id)).returning();
        if (!updated) throw notFound("pipeline", id);
        record({ action: "PIPELINE_UPDATED", resourceType: "pipeline", resourceId: id, details: body });
        return updated;
      });
      return c.json(await pipelineView(c.var.services.db, row));
    })
  .delete("/:id", doc({
    summary: "Delete a pipeline and its promotion history (rollouts it started stay)",
    description: "409 `pipeline_in_use` while a promotion awaits approval or rolls out.",
    responses: { 204: null }, errors: [404, 409],
  }), requirePermission("deployments", "delete"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const { db } = c.var.services;
    await refreshPromotions(db, await db.select().from(pipelinePromotions).where(and(eq(pipelinePromotions.pipelineId, id), eq(pipelinePromotions.status, "rolling_out"))));
    await transact(c, async (tx, record) => {
      const [open] = await tx.select({ id: pipelinePromotions.id }).from(pipelinePromotions)
        .where(and(eq(pipelinePromotions.pipelineId, id), inArray(pipelinePromotions.status, ["awaiting_approval", "rolling_out"]))).limit(1);
      if (open) throw new ApiError(409, "pipeline_in_use", `promotion ${open.id} is still open; reject it or let it finish first`, { promotionId: open.id });
      const [gone] = await tx.delete(pipelines).where(eq(pipelines.id, id)).returning();
      if (!gone) throw notFound("pipeline", id);
      record({ action: "PIPELINE_DELETED", resourceType: "pipeline", resourceId: id, details: { name: gone.name, stages: gone.stages.map((s) => s.name) } });
    });
    return c.body(null, 204);
  })
  .post("/:id/stages/:stage/promote", doc({
    summary: "Promote a version to a stage: a stored version, a flow file, or what another stage runs",
    description: "Starts a rollout on the stage's selector with its defaults (and `rollout` overrides), or, when the stage requires approval, "
      + "waits (`awaiting_approval`) until a second person with deployments:approve approves it. One open promotion per stage "
      + "(409 `promotion_in_progress`); `fromStage` with nothing completed there is 409 `stage_has_no_version`. "
      + "A rollout that cannot start marks the promotion failed and answers the rollout's refusal.",
    responses: { 202: promotionSchema }, errors: [404, 409, 422, 429],
  }), requirePermission("deployments", "create"), validate("param", stageParam), validate("json", promoteSchema), async (c) => {
    const { id, stage } = c.req.valid("param");
    const row = await requestPromotion({ db: c.var.services.db, env: c.env }, actorOf(c), id, stage, c.req.valid("json"));
    return c.json(audited(c, promotionView(row)), 202);
  })
  .get("/promotions/:id", doc({ summary: "A promotion and how its rollout ended", responses: { 200: promotionSchema }, errors: [404] }),
    requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
      const { id } = c.req.valid("param");
      const { db } = c.var.services;
      const [row] = await db.select().from(pipelinePromotions).where(eq(pipelinePromotions.id, id)).limit(1);
      if (!row) throw notFound("promotion", id);
      const [fresh] = await refreshPromotions(db, [row]);
      return c.json(promotionView(fresh!));
    })
  .post("/promotions/:id/approve", doc({
    summary: "Approve a promotion that awaits approval, and start its rollout (four-eyes)",
    description: "Needs deployments:approve. The requester's own approval is 403 `self_approval`; a promotion not awaiting approval is 409 `promotion_not_awaiting_approval`.",
    responses: { 202: promotionSchema }, errors: [404, 409, 422, 429],
  }), requirePermission("deployments", "approve"), validate("param", idParam), async (c) => {
    const row = await approvePromotion({ db: c.var.services.db, env: c.env }, actorOf(c), c.req.valid("param").id);
    return c.json(audited(c, promotionView(row)), 202);
  })
  .post("/promotions/:id/reject", doc({
    summary: "Reject a promotion that awaits approval",
    responses: { 200: promotionSchema }, errors: [404, 409],
  }), requirePermission("deployments", "approve"), validate("param", idParam), validate("json", rejectSchema), async (c) => {
    const row = await rejectPromotion({ db: c.var.services.db, env: c.env }, actorOf(c), c.req.valid("param").id, c.req.valid("json").reason ?? null);
    return c.json(audited(c, promotionView(row)));
  });
