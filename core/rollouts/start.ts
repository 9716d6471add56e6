/**
 * Starting a rollout, without HTTP: POST /api/rollouts, pipeline promotions
 * and CI webhooks all call startRollout. It validates the request, takes the
 * selection (live instances the selector picks, sorted by name then id),
 * resolves the waves over it, writes the `rollouts` row and its
 * ROLLOUT_STARTED audit row in one transaction, and starts the RolloutRun.
 *
 * Throws ApiError (core/errors.ts):
 *   400 validation_failed   the body does not match RolloutCreate
 *   400 invalid_selector    the selector does not parse (details.position: 0-based character)
 *   404 flow_version_not_found
 *   409 empty_selection     the selector picks no live instance
 *   409 rollout_conflict    an active rollout owns some of the selection (details.rolloutId names it; core/rollouts/overlap.ts)
 *   409 deployment_in_progress  a deployment is changing some of the selection (details.deploymentId)
 *   422 waves_incomplete | waves_not_cumulative   the waves do not cover the selection / go backwards
 *   422 selection_too_large more than MAX_SELECTION instances
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import { appendAudit, canonicalJson } from "../../db/auditChain.ts";
import { flowVersions, instances, rollouts } from "../../db/schema.ts";
import { rolloutCreateSchema, type Rollout, type RolloutCreateInput } from "../../protocol/api/rollouts.ts";
import { sha256Hex } from "../../protocol/encoding.ts";
import type { Principal } from "../app-env.ts";
import type { Env } from "../env.ts";
import { ApiError, notFound } from "../errors.ts";
import { parseSelector, SelectorError, toSql, type Requirement } from "../fleet/labelSelector.ts";
import { Services } from "../platform/services.ts";
import { describeIssues } from "../validation.ts";
import { assertNoOverlap, ROLLOUT_START_LOCK } from "./overlap.ts";
import { resolveWaves, splitWaves } from "./plan.ts";
import type { RolloutInit } from "./types.ts";

/** A RolloutRun holds every selected instance's state; beyond this a fleet is split into several rollouts. */
export const MAX_SELECTION = 5_000;

/**
 * Who starts the rollout.
 * - `userId`: recorded as the rollout's `createdBy`, as every deployment's `createdBy`, and as the user of its audit
 *   rows (ROLLOUT_STARTED here; each DEPLOYMENT_CREATED; ROLLOUT_COMPLETED/FAILED at the end). A CI webhook passes
 *   the hook's owner, a pipeline promotion the user who promoted (or approved); null only for the system itself.
 * - `principal`: the caller's principal when there is one (a request); handed to the deployment gate.
 * - `ipAddress`, `userAgent`: the request's, for the ROLLOUT_STARTED row; absent without a request.
 * - `via`: what started it, recorded in ROLLOUT_STARTED's details: "api" (default), "ci_webhook:<hookId>",
 *   "pipeline:<pipelineId>/<stage>", …
 */
export interface RolloutActor {
  userId: string | null;
  principal?: Principal;
  ipAddress?: string | null;
  userAgent?: string | null;
  via?: string;
}

/** The selector's requirements, or 400 `invalid_selector` naming where it went wrong. */
export function parseSelectorOrThrow(selector: string): Requirement[] {
  try {
    return parseSelector(selector);
  } catch (err) {
    if (err instanceof SelectorError) throw new ApiError(400, "invalid_selector", `invalid selector: ${err.message}`, { position: err.position });
    throw err;
  }
}

export async function startRollout(env: Env, actor: RolloutActor, body: RolloutCreateInput): Promise<Rollout> {
  const parsed = rolloutCreateSchema.safeParse(body);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error.issues);
    throw new ApiError(400, "validation_failed", `invalid rollout: ${issues[0]?.path ? `${issues[0].path}: ` : ""}${issues[0]?.message ?? "invalid input"}`, issues);
  }
  const req = parsed.data;
  const requirements = parseSelectorOrThrow(req.selector);
  const services = new Services(env);
  try {
    const { db } = services;
    let flows = req.flows as unknown[] | undefined;
    if (req.versionId) {
      const [version] = await db.select({ flows: flowVersions.flows }).from(flowVersions).where(eq(flowVersions.id, req.versionId)).limit(1);
      if (!version) throw notFound("flow_version", req.versionId);
      flows = version.flows;
    }
    const selected = await db.select({ id: instances.id }).from(instances)
      .where(and(isNull(instances.deletedAt), toSql(requirements, instances.labels)))
      .orderBy(instances.name, instances.id).limit(MAX_SELECTION + 1);
    if (selected.length === 0) throw new ApiError(409, "empty_selection", `selector "${req.selector}" picks no live instance`, { selector: req.selector });
    if (selected.length > MAX_SELECTION) {
      throw new ApiError(422, "selection_too_large", `selector "${req.selector}" picks more than ${MAX_SELECTION} instances; narrow it and run several rollouts`);
    }
    const targets = resolveWaves(req.waves, selected.length);
    if (!Array.isArray(targets)) throw new ApiError(422, targets.code, targets.message, { waves: req.waves, selected: selected.length });

    const now = new Date();
    const init: RolloutInit = {
      id: crypto.randomUUID(), selector: req.selector, description: req.description ?? null,
      flows: flows!, flowsDigest: await sha256Hex(canonicalJson(flows)), versionId: req.versionId ?? null,
      plan: { waves: req.waves, parallelism: req.parallelism, pause: req.pause, failureBudget: req.failureBudget, onFailure: req.onFailure, lateJoiners: req.lateJoiners },
      deployment: req.deployment,
      waves: splitWaves(selected.map((r) => r.id), targets), targets,
      createdBy: actor.userId, createdAt: now.toISOString(),
    };
    await db.transaction(async (tx) => {
      // One start at a time checks ownership and writes its row: two starts over one group cannot both pass.
      await tx.execute(sql`select pg_advisory_xact_lock(${ROLLOUT_START_LOCK})`);
      await assertNoOverlap(env, tx, selected.map((r) => r.id));
      await tx.insert(rollouts).values({
        id: init.id, status: "running", selector: init.selector, description: init.description, flowsDigest: init.flowsDigest,
        versionId: init.versionId, plan: { ...init.plan }, currentWave: null, waveCount: targets.length,
        summary: { total: selected.length, completed: 0, failed: 0, pending: selected.length }, createdBy: actor.userId, createdAt: now, updatedAt: now,
      });
      await appendAudit(tx, [{
        userId: actor.userId, ipAddress: actor.ipAddress ?? null, userAgent: actor.userAgent ?? null, statusCode: null,
        action: "ROLLOUT_STARTED", resourceType: "rollout", resourceId: init.id,
        details: {
          selector: init.selector, selected: selected.length, waves: targets, flowsDigest: init.flowsDigest, versionId: init.versionId,
          plan: init.plan, via: actor.via ?? "api", description: init.description,
        },
      }]);
    });
    try {
      return await env.ROLLOUTS.get(env.ROLLOUTS.idFromName(init.id)).start(init);
    } catch (err) {
      await db.update(rollouts).set({ status: "failed", failure: { code: "start_failed", message: `could not start: ${(err as Error).message}` }, completedAt: new Date() })
        .where(eq(rollouts.id, init.id));
      throw err;
    }
  } finally {
    await services.close();
  }
}
