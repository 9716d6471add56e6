/**
 * Promotions: a version onto one stage of a pipeline through a rollout on the
 * stage's selector. A stage that requires approval holds the promotion
 * (awaiting_approval) until a second person with deployments:approve approves
 * it: the requester's own approval is 403 `self_approval` (four-eyes). Each
 * change and its audit row commit together (PROMOTION_REQUESTED, _APPROVED,
 * _REJECTED, _STARTED).
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import { appendAudit, type AuditEntry } from "../../db/auditChain.ts";
import type { Db } from "../../db/client.ts";
import { pipelinePromotions, pipelines } from "../../db/schema.ts";
import { sha256Hex } from "../../protocol/encoding.ts";
import type { PromoteRequest, PromotionSource, StageRollout } from "../../protocol/api/pipelines.ts";
import type { Env } from "../env.ts";
import { ApiError, notFound } from "../errors.ts";
import { launchRollout, rolloutRequest, type RolloutActor } from "./rollouts.ts";
import { lastCompleted, refreshPromotions, type PromotionRow } from "./state.ts";

// Arbitrary constant naming "promotions of one pipeline stage" among advisory locks.
const PROMOTION_LOCK = 7_470_015;

export interface PromotionDeps { db: Db; env: Env }

const auditEntry = (actor: RolloutActor, e: Omit<AuditEntry, "userId" | "ipAddress" | "userAgent">): AuditEntry =>
  ({ userId: actor.userId, ipAddress: actor.ipAddress, userAgent: actor.userAgent, statusCode: null, ...e });

/** What a promotion rolls out, from its source. */
async function resolveSource(db: Db, pipelineId: string, stage: string, body: PromoteRequest) {
  if (body.versionId) return { source: { kind: "version", versionId: body.versionId } as PromotionSource, flows: null, versionId: body.versionId, digest: null };
  if (body.flows) return { source: { kind: "flows" } as PromotionSource, flows: body.flows as unknown[], versionId: null, digest: await sha256Hex(JSON.stringify(body.flows)) };
  const from = body.fromStage!;
  if (from === stage) throw new ApiError(400, "promotion_same_stage", `a stage cannot be promoted from itself (${stage})`);
  const prior = await lastCompleted(db, pipelineId, from);
  if (!prior) throw new ApiError(409, "stage_has_no_version", `stage ${from} has no completed promotion to promote from`);
  return { source: { kind: "stage", fromStage: from, promotionId: prior.id } as PromotionSource, flows: prior.flows, versionId: prior.versionId, digest: prior.digest };
}

/** The rollout request a promotion starts: the stage's selector and defaults, the promotion's overrides and version. */
function requestFor(selector: string, p: Pick<PromotionRow, "rollout" | "flows" | "versionId" | "id">, pipelineName: string, stage: string) {
  return rolloutRequest({
    ...p.rollout, selector,
    ...(p.versionId ? { versionId: p.versionId } : { flows: p.flows }),
    description: `pipeline ${pipelineName}, stage ${stage}, promotion ${p.id}`.slice(0, 500),
  });
}

export async function requestPromotion(
  deps: PromotionDeps, actor: RolloutActor, pipelineId: string, stageName: string, body: PromoteRequest,
): Promise<PromotionRow> {
  const { db } = deps;
  const [pipeline] = await db.select().from(pipelines).where(eq(pipelines.id, pipelineId)).limit(1);
  if (!pipeline) throw notFound("pipeline", pipelineId);
  const stage = pipeline.stages.find((s) => s.name === stageName);
  if (!stage) throw new ApiError(404, "stage_not_found", `pipeline ${pipeline.name} has no stage ${stageName}`);
  if (body.fromStage && !pipeline.stages.some((s) => s.name === body.fromStage)) {
    throw new ApiError(404, "stage_not_found", `pipeline ${pipeline.name} has no stage ${body.fromStage}`);
  }
  const resolved = await resolveSource(db, pipelineId, stageName, body);
  const rollout: StageRollout = { ...stage.rollout, ...body.rollout };
  // Checked now, not after someone approved it: a request that could never start is refused at once.
  requestFor(stage.selector, { rollout, ...resolved, id: "00000000-0000-0000-0000-000000000000" }, pipeline.name, stageName);
  await refreshPromotions(db, await db.select().from(pipelinePromotions)
    .where(and(eq(pipelinePromotions.pipelineId, pipelineId), eq(pipelinePromotions.stage, stageName), eq(pipelinePromotions.status, "rolling_out"))));

  const row = await db.transaction(async (tx) => {
    // One open promotion per stage: the lock makes check-then-insert race-free.
    await tx.execute(sql`select pg_advisory_xact_lock(${PROMOTION_LOCK}, hashtext(${`${pipelineId}/${stageName}`}))`);
    const [open] = await tx.select({ id: pipelinePromotions.id, status: pipelinePromotions.status }).from(pipelinePromotions)
      .where(and(eq(pipelinePromotions.pipelineId, pipelineId), eq(pipelinePromotions.stage, stageName), inArray(pipelinePromotions.status, ["awaiting_approval", "rolling_out"])))
      .limit(1);
    if (open) throw new ApiError(409, "promotion_in_progress", `stage ${stageName} already has promotion ${open.id} (${open.status})`, { promotionId: open.id });
    const [created] = await tx.insert(pipelinePromotions).values({
      pipelineId, stage: stageName, status: stage.requiresApproval ? "awaiting_approval" : "rolling_out",
      source: resolved.source, flows: resolved.flows, versionId: resolved.versionId, digest: resolved.digest, rollout,
      requestedBy: actor.userId,
    }).returning();
    await appendAudit(tx, [auditEntry(actor, {
      action: "PROMOTION_REQUESTED", resourceType: "promotion", resourceId: created!.id,
      details: { pipelineId, pipeline: pipeline.name, stage: stageName, source: resolved.source, digest: resolved.digest, versionId: resolved.versionId, requiresApproval: stage.requiresApproval, description: body.description ?? null },
    })]);
    return created!;
  });
  if (stage.requiresApproval) return row;
  return startPromotion(deps, actor, row);
}

/** Starts the promotion's rollout; a refusal marks the promotion failed (with the refusal's code) and is thrown on. */
async function startPromotion(deps: PromotionDeps, actor: RolloutActor, p: PromotionRow): Promise<PromotionRow> {
  const { db, env } = deps;
  const [pipeline] = await db.select().from(pipelines).where(eq(pipelines.id, p.pipelineId)).limit(1);
  const stage = pipeline?.stages.find((s) => s.name === p.stage);
  try {
    if (!pipeline || !stage) throw new ApiError(409, "stage_not_found", `stage ${p.stage} was removed from the pipeline before the promotion started`);
    const rollout = await launchRollout(env, { ...actor, via: `pipeline:${p.pipelineId}/${p.stage}` }, requestFor(stage.selector, p, pipeline.name, p.stage));
    return await db.transaction(async (tx) => {
      const [row] = await tx.update(pipelinePromotions).set({ rolloutId: rollout.id, status: "rolling_out", updatedAt: new Date() })
        .where(eq(pipelinePromotions.id, p.id)).returning();
      await appendAudit(tx, [auditEntry(actor, {
        action: "PROMOTION_STARTED", resourceType: "promotion", resourceId: p.id,
        details: { pipelineId: p.pipelineId, stage: p.stage, rolloutId: rollout.id, selector: stage.selector },
      })]);
      return row!;
    });
  } catch (err) {
    const failure = err instanceof ApiError ? { code: err.code, message: err.message } : { code: "start_failed", message: String(err).slice(0, 500) };
    await db.update(pipelinePromotions).set({ status: "failed", failure, updatedAt: new Date() }).where(eq(pipelinePromotions.id, p.id));
    throw err;
  }
}

async function decide(db: Db, actor: RolloutActor, promotionId: string, approve: boolean, reason: string | null): Promise<PromotionRow> {
  return db.transaction(async (tx) => {
    const [p] = await tx.select().from(pipelinePromotions).where(eq(pipelinePromotions.id, promotionId)).for("update").limit(1);
    if (!p) throw notFound("promotion", promotionId);
    if (p.status !== "awaiting_approval") {
      throw new ApiError(409, "promotion_not_awaiting_approval", `promotion ${promotionId} is ${p.status}; only a promotion awaiting approval can be ${approve ? "approved" : "rejected"}`, { status: p.status });
    }
    // Four-eyes: whoever asked (also through an API key or a CI hook acting as them) cannot approve it.
    if (approve && p.requestedBy === actor.userId) {
      throw new ApiError(403, "self_approval", "a promotion must be approved by someone other than its requester");
    }
    const [row] = await tx.update(pipelinePromotions).set({
      status: approve ? "rolling_out" : "rejected", decidedBy: actor.userId, decidedAt: new Date(), updatedAt: new Date(),
      ...(reason !== null ? { reason } : {}),
    }).where(eq(pipelinePromotions.id, promotionId)).returning();
    await appendAudit(tx, [auditEntry(actor, {
      action: approve ? "PROMOTION_APPROVED" : "PROMOTION_REJECTED", resourceType: "promotion", resourceId: promotionId,
      details: { pipelineId: p.pipelineId, stage: p.stage, requestedBy: p.requestedBy, reason },
    })]);
    return row!;
  });
}

/** The approver starts the rollout: it runs with their identity, the request's defaults and version. */
export async function approvePromotion(deps: PromotionDeps, actor: RolloutActor, promotionId: string): Promise<PromotionRow> {
  return startPromotion(deps, actor, await decide(deps.db, actor, promotionId, true, null));
}

export function rejectPromotion(deps: PromotionDeps, actor: RolloutActor, promotionId: string, reason: string | null): Promise<PromotionRow> {
  return decide(deps.db, actor, promotionId, false, reason);
}
