/**
 * Checkpointed workflows (docs/agents.md "Checkpoint and replay"): the
 * operators' API (list, one run with its checkpoints, replay, cancel) and the
 * bridge's signed webhook that stores checkpoint records and collects the
 * replay/cancel requests for its instances. Replay and cancel are recorded
 * here (audited) and applied by the bridge on the serving runtime; the run's
 * `pendingAction` shows one until the bridge reports it (`lastAction`).
 */
import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { workflowCheckpoints, workflows } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { verifyClusterWebhook } from "../../core/fleet/signedRequest.ts";
import { describe } from "../../core/openapi/describe.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { describeIssues, validate } from "../../core/validation.ts";
import { ingestCheckpoints, replayPoint } from "../../core/workflows/store.ts";
import { pageOf, timestamp, uuid } from "../../protocol/api/common.ts";
import { checkpointBatchAnswerSchema, checkpointBatchSchema, CHECKPOINT_PHASES, WORKFLOW_STATES } from "../../protocol/workflows.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";

const errorShape = z.object({ code: z.string(), message: z.string() });
export const workflowSchema = z.object({
  id: uuid, instanceId: uuid, workflowId: z.string(), kind: z.string(),
  state: z.enum(WORKFLOW_STATES), lastStep: z.string(), lastPhase: z.enum(CHECKPOINT_PHASES), completed: z.array(z.string()),
  error: errorShape.nullable(), runtimeId: z.string().nullable(),
  pendingAction: z.enum(["replay", "cancel"]).nullable(), pendingFromStep: z.string().nullable(),
  lastAction: z.object({ action: z.string(), outcome: z.string(), at: timestamp, error: errorShape.optional() }).nullable(),
  startedAt: timestamp, updatedAt: timestamp,
}).meta({ id: "Workflow", description: "One checkpointed workflow run in an instance, with the state of its latest checkpoint." });
const checkpointSchema = z.object({
  checkpointId: uuid.nullable(), step: z.string(), phase: z.string().nullable(), state: z.unknown(), inputHash: z.string().nullable(),
  completed: z.array(z.string()).nullable(), runtimeId: z.string().nullable(), error: errorShape.nullable(), recordedAt: timestamp.nullable(),
}).meta({ id: "WorkflowCheckpoint" });
const workflowDetailSchema = workflowSchema.extend({ checkpoints: z.array(checkpointSchema) }).meta({ id: "WorkflowDetail" });

const listQuery = z.strictObject({ instanceId: z.uuid().optional(), state: z.enum(WORKFLOW_STATES).optional(), kind: z.string().min(1).max(255).optional(), ...pageQuery });
const idParam = z.object({ id: z.uuid() });
const replayBody = z.strictObject({ fromStep: z.string().min(1).max(255).optional() });
const clusterParam = z.object({ id: z.uuid() });

type Row = typeof workflows.$inferSelect;
const view = (w: Row) => ({
  id: w.id, instanceId: w.instanceId, workflowId: w.workflowId, kind: w.kind, state: w.state, lastStep: w.lastStep, lastPhase: w.lastPhase,
  completed: w.completed, error: w.error ?? null, runtimeId: w.runtimeId, pendingAction: w.pendingAction, pendingFromStep: w.pendingFromStep,
  lastAction: w.lastAction ?? null, startedAt: w.startedAt, updatedAt: w.updatedAt,
});

async function findRun(c: { var: AppEnv["Variables"] }, id: string): Promise<Row> {
  const [row] = await c.var.services.db.select().from(workflows).where(eq(workflows.id, id)).limit(1);
  if (!row) throw notFound("workflow", id);
  return row;
}

const doc = describe("Instances");

export const workflowRoutes = new Hono<AppEnv>()
  .get("/", doc({
    summary: "List checkpointed workflow runs, newest first",
    description: "State from each run's latest checkpoint: running (started, a step completed, or handed to another runtime), completed, failed (e.g. `step_interrupted`), cancelled.",
    responses: { 200: pageOf(workflowSchema) },
  }), requirePermission("instances", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(workflows).where(and(
      q.instanceId ? eq(workflows.instanceId, q.instanceId) : undefined,
      q.state ? eq(workflows.state, q.state) : undefined,
      q.kind ? eq(workflows.kind, q.kind) : undefined,
      cursor ? or(lt(workflows.createdAt, cursor.createdAt), and(eq(workflows.createdAt, cursor.createdAt), lt(workflows.id, cursor.id))) : undefined,
    )).orderBy(desc(workflows.createdAt), desc(workflows.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(view), nextCursor });
  })
  .get("/:id", doc({ summary: "A workflow run with its checkpoints (newest first, at most 200)", responses: { 200: workflowDetailSchema }, errors: [404] }),
    requirePermission("instances", "read"), validate("param", idParam), async (c) => {
      const row = await findRun(c, c.req.valid("param").id);
      const checkpoints = await c.var.services.db.select().from(workflowCheckpoints)
        .where(and(eq(workflowCheckpoints.instanceId, row.instanceId), eq(workflowCheckpoints.workflowId, row.workflowId)))
        .orderBy(desc(workflowCheckpoints.recordedAt), desc(workflowCheckpoints.createdAt)).limit(200);
      return c.json({
        ...view(row),
        checkpoints: checkpoints.map((k) => ({ checkpointId: k.checkpointId, step: k.step, phase: k.phase, state: k.state, inputHash: k.inputHash, completed: k.completed, runtimeId: k.runtimeId, error: k.error ?? null, recordedAt: k.recordedAt })),
      });
    })
  .post("/:id/replay", doc({
    summary: "Replay a workflow run from its last checkpoint (or from a step's)",
    description: "The bridge continues the run on the instance's serving runtime: after the checkpoint's step when it completed, or running the step again when it had only begun (an operator's replay runs it even when it is not marked repeatable). 202 with `pendingAction: replay` until the bridge reports. 409 `workflow_completed` for a finished run, `workflow_action_pending` while another request waits; 404 `checkpoint_not_found` when there is no checkpoint to start from.",
    body: replayBody, bodyOptional: true,
    responses: { 202: workflowSchema }, errors: [404, 409],
  }), requirePermission("instances", "update"), validate("param", idParam), validate("json", replayBody), async (c) => {
    const { id } = c.req.valid("param");
    const { fromStep } = c.req.valid("json");
    const p = c.var.principal!;
    const row = await transact(c, async (tx, record) => {
      const [run] = await tx.select().from(workflows).where(eq(workflows.id, id)).for("update").limit(1);
      if (!run) throw notFound("workflow", id);
      if (run.state === "completed") throw new ApiError(409, "workflow_completed", `workflow ${run.workflowId} has completed; there is nothing to replay`);
      if (run.pendingAction) throw new ApiError(409, "workflow_action_pending", `a ${run.pendingAction} of workflow ${run.workflowId} is waiting for the bridge`);
      const from = await replayPoint(tx as never, run.instanceId, run.workflowId, fromStep);
      if (!from) throw new ApiError(404, "checkpoint_not_found", fromStep ? `workflow ${run.workflowId} has no checkpoint of step "${fromStep}"` : `workflow ${run.workflowId} has no checkpoint to replay from`);
      const [saved] = await tx.update(workflows).set({ pendingAction: "replay", pendingFromStep: fromStep ?? null, actionRequestedBy: p.userId, actionRequestedAt: new Date(), actionSentAt: null })
        .where(eq(workflows.id, id)).returning();
      record({ action: "WORKFLOW_REPLAY_REQUESTED", resourceType: "workflow", resourceId: id, details: { instanceId: run.instanceId, workflowId: run.workflowId, state: run.state, fromStep: from.step, resume: from.resume } });
      return saved!;
    });
    return c.json(view(row), 202);
  })
  .post("/:id/cancel", doc({
    summary: "Cancel a workflow run",
    description: "The bridge tells the serving runtime to run no further step of it (a step under way finishes). 202 with `pendingAction: cancel`; the run shows `cancelled` once the runtime's checkpoint arrives. 409 `workflow_finished` for a completed or cancelled run, `workflow_action_pending` while another request waits.",
    responses: { 202: workflowSchema }, errors: [404, 409],
  }), requirePermission("instances", "update"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const p = c.var.principal!;
    const row = await transact(c, async (tx, record) => {
      const [run] = await tx.select().from(workflows).where(eq(workflows.id, id)).for("update").limit(1);
      if (!run) throw notFound("workflow", id);
      if (run.state === "completed" || run.state === "cancelled") throw new ApiError(409, "workflow_finished", `workflow ${run.workflowId} is already ${run.state}`);
      if (run.pendingAction) throw new ApiError(409, "workflow_action_pending", `a ${run.pendingAction} of workflow ${run.workflowId} is waiting for the bridge`);
      const [saved] = await tx.update(workflows).set({ pendingAction: "cancel", pendingFromStep: null, actionRequestedBy: p.userId, actionRequestedAt: new Date(), actionSentAt: null })
        .where(eq(workflows.id, id)).returning();
      record({ action: "WORKFLOW_CANCEL_REQUESTED", resourceType: "workflow", resourceId: id, details: { instanceId: run.instanceId, workflowId: run.workflowId, state: run.state, lastStep: run.lastStep } });
      return saved!;
    });
    return c.json(view(row), 202);
  });

function parseBatch(body: string) {
  let raw: unknown;
  try { raw = JSON.parse(body || "{}"); } catch { throw new ApiError(400, "malformed_json", "request body is not valid JSON"); }
  const parsed = checkpointBatchSchema.safeParse(raw);
  if (!parsed.success) throw new ApiError(400, "validation_failed", "checkpoint batch does not match the protocol", describeIssues(parsed.error.issues));
  return parsed.data;
}

/** Mounted before `authenticate`: the cluster's webhook signature is the credential. */
export const workflowWebhookRoutes = new Hono<AppEnv>()
  .post("/webhooks/clusters/:id/checkpoints", describe("Bridge")({
    summary: "Checkpoint records from a cluster's instances, and the replay/cancel requests waiting for them",
    description: "Each record stored once by `checkpointId` (a resent record is not stored again). An empty `records` only collects directives; `results` report what the bridge did with earlier ones. A record of another cluster's instance → 403 `instance_not_in_cluster`, nothing stored.",
    access: "clusterWebhook",
    body: checkpointBatchSchema,
    responses: { 202: checkpointBatchAnswerSchema },
    errors: [403, 404, 409],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    const hook = await verifyClusterWebhook(c, id);
    try {
      const batch = parseBatch(hook.body);
      const result = await ingestCheckpoints(c.var.services.db, id, batch, new Date());
      return c.json({ accepted: true as const, ...result }, 202);
    } catch (err) {
      await hook.release().catch(() => {});
      throw err;
    }
  });
