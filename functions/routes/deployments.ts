import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { deployments, flowVersions } from "../../db/schema.ts";
import type { OperateAnswer } from "../../core/objects.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { storableRequestText, transact } from "../middleware/auditTrail.ts";
import { startDeployment } from "../../core/deployments/start.ts";
import { orphanView } from "../../core/deployments/orphans.ts";
import { assertNotInRollout } from "../../core/rollouts/overlap.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeCursor, page } from "../../core/platform/pagination.ts";
import {
  attentionSchema, createDeploymentSchema, deploymentErrorSchema, deploymentMetricsSchema, deploymentViewSchema, listDeploymentsQuery, phaseRecordSchema,
  type DeploymentView,
} from "../../protocol/deployments.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { listOf, pageOf } from "../../protocol/api/common.ts";
import { deploymentSchema, flowVersionDetailSchema, flowVersionSchema } from "../../protocol/api/deployments.ts";

const idParam = z.object({ id: z.uuid() });
const versionsQuery = z.strictObject({ instanceId: z.uuid() });

type Row = typeof deployments.$inferSelect;

/**
 * What durable/deploymentRun/projection.ts writes into `metrics` beside the
 * metrics themselves; read back leniently (a row is a projection: what does
 * not parse is shown as its default, never a 500).
 */
const rowExtras = z.object({
  progress: z.number().catch(0),
  blue: z.string().optional().catch(undefined),
  green: z.string().optional().catch(undefined),
  switched: z.boolean().catch(false),
  history: z.array(phaseRecordSchema).catch([]),
  fromStack: z.string().optional().catch(undefined),
  toStack: z.string().optional().catch(undefined),
  toNodeRed: z.string().optional().catch(undefined),
  attention: attentionSchema.nullable().catch(null).default(null),
  timeouts: deploymentViewSchema.shape.timeouts.catch(null).default(null),
}).catch({ progress: 0, switched: false, history: [], attention: null, timeouts: null });
const emptyMetrics: DeploymentView["metrics"] = { messagesHeld: 0, messagesReplayed: 0, messagesLost: 0, messagesDuplicated: 0, inFlightAtDrain: 0, stragglers: 0, phaseMs: {} };
const rowError = deploymentErrorSchema.shape.code.catch("step_failed");

/** The stored row as the API shows it when the DeploymentRun has nothing newer. */
function rowView(r: Row): DeploymentView {
  const m = r.metrics ?? {};
  const extras = rowExtras.parse(m);
  return {
    id: r.id, instanceId: r.instanceId, strategy: r.strategy, status: r.status as DeploymentView["status"],
    phase: (r.currentPhase as DeploymentView["phase"]) ?? null, progress: extras.progress,
    ...(extras.blue ? { blue: extras.blue } : {}), ...(extras.green ? { green: extras.green } : {}),
    switched: extras.switched, history: extras.history, attention: extras.attention, timeouts: extras.timeouts,
    metrics: deploymentMetricsSchema.catch(emptyMetrics).parse(m),
    error: r.error === null ? null : { code: rowError.parse(r.errorCode), message: r.error },
    fromVersionId: r.fromVersionId, toVersionId: r.toVersionId!,
    fromStack: extras.fromStack ?? null, toStack: extras.toStack ?? null, toNodeRed: extras.toNodeRed ?? null,
    createdAt: r.createdAt.toISOString(),
    completedAt: r.completedAt?.toISOString() ?? null,
  };
}

function unwrap(answer: OperateAnswer): DeploymentView {
  if (answer.ok) return answer.view;
  throw new ApiError(answer.status, answer.code, answer.message);
}

const doc = describe("Deployments");

export const deploymentRoutes = new Hono<AppEnv>()
  .post("/", doc({
    summary: "Start a blue-green deployment of new flows (or a stored version, or another stack) to a running instance",
    description: "One at a time per instance. Governance applies: policies (403 `POLICY_DENIED`) and daily quotas (429 `QUOTA_EXCEEDED`). With `stack` it is a runtime upgrade: green runs that Node-RED stack (with the given flows, or the current ones), and the instance's stack changes only when it completes; a stack the cluster's bridge does not run is 422 `stack_unsupported`. With `blueprint` (GET /api/blueprints) green runs that blueprint's flows; its required parameters must be in the instance's env or secrets (400 `blueprint_param_missing`; 404 `blueprint_not_found`). An instance an active rollout has in hand (a wave of it still to come, deploying or rolling it back, or a late joiner it will deploy after its last wave) is 409 `rollout_in_progress` (details.rolloutId, details.wave; docs/rollouts.md). See docs/deployments.md and docs/stacks.md.",
    responses: { 202: deploymentSchema },
    errors: [404, 409, 422, 429],
  }), requirePermission("deployments", "create"), validate("json", createDeploymentSchema), async (c) => {
    const body = c.req.valid("json");
    const principal = c.var.principal!;
    // A rollout's own deployments start through startDeployment directly; a person's or a CI job's is refused here.
    await assertNotInRollout(c.env, c.var.services.db, body.instanceId);
    // The one code path every deployment starts through (rollouts too): core/deployments/start.ts.
    const started = await startDeployment(c.env, c.var.services, {
      userId: principal.userId, principal, ipAddress: c.var.clientAddress ?? null, userAgent: storableRequestText(c.req.header("User-Agent"), 500),
    }, body);
    c.set("audited", true);
    return c.json(started, 202);
  })

  .get("/", doc({ summary: "List deployments, newest first", responses: { 200: pageOf(deploymentSchema) } }), requirePermission("deployments", "read"), validate("query", listDeploymentsQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(deployments).where(and(
      q.instanceId ? eq(deployments.instanceId, q.instanceId) : undefined,
      q.status ? eq(deployments.status, q.status) : undefined,
      cursor ? or(lt(deployments.createdAt, cursor.createdAt), and(eq(deployments.createdAt, cursor.createdAt), lt(deployments.id, cursor.id))) : undefined,
    )).orderBy(desc(deployments.createdAt), desc(deployments.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(rowView), nextCursor });
  })

  .get("/versions", doc({ summary: "An instance's flow versions, newest first", responses: { 200: listOf(flowVersionSchema) } }), requirePermission("deployments", "read"), validate("query", versionsQuery), async (c) => {
    const rows = await c.var.services.db.select({
      id: flowVersions.id, instanceId: flowVersions.instanceId, version: flowVersions.version, digest: flowVersions.digest,
      createdBy: flowVersions.createdBy, createdAt: flowVersions.createdAt,
    }).from(flowVersions).where(eq(flowVersions.instanceId, c.req.valid("query").instanceId)).orderBy(desc(flowVersions.version)).limit(200);
    return c.json({ items: rows });
  })

  .get("/versions/:id", doc({ summary: "One stored flow version with its flows", responses: { 200: flowVersionDetailSchema }, errors: [404] }), requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(flowVersions).where(eq(flowVersions.id, id)).limit(1);
    if (!row) throw notFound("flow_version", id);
    return c.json({
      id: row.id, instanceId: row.instanceId, version: row.version, digest: row.digest,
      createdBy: row.createdBy, createdAt: row.createdAt, flows: row.flows,
    });
  })

  .get("/:id", doc({ summary: "A deployment: status, phase, history, metrics, error", responses: { 200: deploymentSchema }, errors: [404] }), requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(deployments).where(eq(deployments.id, id)).limit(1);
    if (!row) throw notFound("deployment", id);
    const live = await c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(id)).state();
    // A row whose start was cut before its object began reads as what the next start records (core/deployments/orphans.ts).
    return c.json(live ?? orphanView(rowView(row), row, live, new Date()));
  })

  .post("/:id/rollback", doc({ summary: "Roll back to blue (until the rollback window closes)", description: "409 `not_rollbackable` once blue is stopped.", responses: { 202: deploymentSchema }, errors: [404, 409] }), requirePermission("deployments", "update"), validate("param", idParam), (c) => act(c, "rollback"))
  .post("/:id/promote", doc({ summary: "Continue a paused deployment", description: "409 `not_paused` unless it is paused.", responses: { 202: deploymentSchema }, errors: [404, 409] }), requirePermission("deployments", "update"), validate("param", idParam), (c) => act(c, "promote"))
  .post("/:id/abort", doc({ summary: "Abort a paused deployment (blue keeps serving)", description: "409 `not_paused` unless it is paused; after the switch, use rollback.", responses: { 202: deploymentSchema }, errors: [404, 409] }), requirePermission("deployments", "update"), validate("param", idParam), (c) => act(c, "abort"));

async function act(c: import("hono").Context<AppEnv>, what: "rollback" | "promote" | "abort") {
  const id = c.req.param("id")!;
  const [row] = await c.var.services.db.select({ id: deployments.id }).from(deployments).where(eq(deployments.id, id)).limit(1);
  if (!row) throw notFound("deployment", id);
  const run = c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(id));
  const view = unwrap(await run.operate(what, c.var.principal!.userId ?? null));
  await transact(c, async (_tx, record) => record({
    userId: c.var.principal!.userId, action: `DEPLOYMENT_${what.toUpperCase()}_REQUESTED`, resourceType: "deployment", resourceId: id,
    details: { status: view.status, phase: view.phase },
  }));
  return c.json(view, 202);
}
