import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono, type Context } from "hono";
import { z } from "zod";
import { rollouts } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { startRollout } from "../../core/rollouts/start.ts";
import type { RolloutAction } from "../../core/rollouts/types.ts";
import { decodeCursor, page } from "../../core/platform/pagination.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { listRolloutsQuery, rolloutCreateSchema, rolloutListItemSchema, rolloutSchema, type RolloutListItem } from "../../protocol/api/rollouts.ts";
import { storableRequestText, transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";

const idParam = z.object({ id: z.uuid() });
const doc = describe("Rollouts");

type Row = typeof rollouts.$inferSelect;

const listItem = (r: Row): RolloutListItem => ({
  id: r.id, status: r.status as RolloutListItem["status"], selector: r.selector, createdBy: r.createdBy,
  createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString(), completedAt: r.completedAt?.toISOString() ?? null,
  description: r.description, flowsDigest: r.flowsDigest, versionId: r.versionId, currentWave: r.currentWave,
  summary: r.summary, failure: r.failure ?? null, waveCount: r.waveCount,
});

/** Operator actions: the object decides whether the action applies now; the route records who asked. */
const ACTIONS: Record<RolloutAction, { audit: string; summary: string; description: string }> = {
  pause: { audit: "ROLLOUT_PAUSED", summary: "Pause a rollout (what runs finishes; nothing new starts)", description: "409 `not_pausable` unless it is running or awaiting approval." },
  resume: { audit: "ROLLOUT_RESUMED", summary: "Resume a paused rollout", description: "409 `not_paused` unless it is paused." },
  approve: { audit: "ROLLOUT_APPROVED", summary: "Start the next wave of a rollout waiting for approval", description: "409 `not_awaiting_approval` unless it is `awaiting_approval` (pause kind `approval`)." },
  abort: { audit: "ROLLOUT_ABORTED", summary: "Abort a rollout (instances not started are skipped; what runs finishes)", description: "409 `not_abortable` once it has ended or while it rolls a wave back." },
};

async function act(c: Context<AppEnv>, what: RolloutAction) {
  const id = c.req.param("id")!;
  const [row] = await c.var.services.db.select({ id: rollouts.id }).from(rollouts).where(eq(rollouts.id, id)).limit(1);
  if (!row) throw notFound("rollout", id);
  const principal = c.var.principal!;
  const answer = await c.env.ROLLOUTS.get(c.env.ROLLOUTS.idFromName(id)).operate(what, principal.userId);
  if (!answer.ok) throw new ApiError(answer.status, answer.code, answer.message);
  await transact(c, async (_tx, record) => record({
    userId: principal.userId, action: ACTIONS[what].audit, resourceType: "rollout", resourceId: id,
    details: { status: answer.view.status, currentWave: answer.view.currentWave, summary: answer.view.summary },
  }));
  return c.json(answer.view, 202);
}

const action = (what: RolloutAction) => [
  doc({ summary: ACTIONS[what].summary, description: ACTIONS[what].description, responses: { 202: rolloutSchema }, errors: [404, 409] }),
  requirePermission("deployments", "create"), validate("param", idParam), (c: Context<AppEnv>) => act(c, what),
] as const;

export const rolloutRoutes = new Hono<AppEnv>()
  .post("/", doc({
    summary: "Start a rollout: one flow version to every instance a label selector picks, in waves",
    description: "Each instance's change is a blue-green deployment admitted like POST /api/deployments (policies, quotas: a refusal fails that instance with its code). 400 `invalid_selector` (details.position), 409 `empty_selection`, 409 `rollout_conflict` (an active rollout owns some of the selection; details.rolloutId, details.instanceIds), 409 `deployment_in_progress` (a deployment is changing some of it; details.deploymentId), 422 `waves_incomplete` / `waves_not_cumulative` / `selection_too_large`. See docs/rollouts.md.",
    responses: { 202: rolloutSchema },
    errors: [404, 409, 422],
  }), requirePermission("deployments", "create"), validate("json", rolloutCreateSchema), async (c) => {
    const principal = c.var.principal!;
    const started = await startRollout(c.env, {
      userId: principal.userId, principal, via: principal.via === "api_key" ? `api_key:${principal.apiKeyId}` : "api",
      ipAddress: c.var.clientAddress ?? null, userAgent: storableRequestText(c.req.header("User-Agent"), 500),
    }, c.req.valid("json"));
    c.set("audited", true);
    return c.json(started, 202);
  })

  .get("/", doc({ summary: "List rollouts, newest first", responses: { 200: pageOf(rolloutListItemSchema) } }), requirePermission("deployments", "read"), validate("query", listRolloutsQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(rollouts).where(and(
      q.status ? eq(rollouts.status, q.status) : undefined,
      cursor ? or(lt(rollouts.createdAt, cursor.createdAt), and(eq(rollouts.createdAt, cursor.createdAt), lt(rollouts.id, cursor.id))) : undefined,
    )).orderBy(desc(rollouts.createdAt), desc(rollouts.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(listItem), nextCursor });
  })

  .get("/:id", doc({ summary: "A rollout: status, waves, each instance's deployment, summary", responses: { 200: rolloutSchema }, errors: [404] }), requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const live = await c.env.ROLLOUTS.get(c.env.ROLLOUTS.idFromName(id)).state();
    if (!live) throw notFound("rollout", id);
    return c.json(live);
  })

  .post("/:id/pause", ...action("pause"))
  .post("/:id/resume", ...action("resume"))
  .post("/:id/approve", ...action("approve"))
  .post("/:id/abort", ...action("abort"));
