import { and, desc, eq, inArray, lt, max, or, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { deployments, flowVersions, instances } from "../../db/schema.ts";
import type { DeploymentInit, OperateAnswer } from "../../core/objects.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { assertDeploymentAllowed } from "../../core/governance/deploymentGate.ts";
import { assertStackSupported } from "../../core/fleet/stacks.ts";
import { resolveTimeouts, workerTimeoutScale } from "../../core/deployments/timeouts.ts";
import { admitDeployment } from "../../core/deployments/admission.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeCursor, page } from "../../core/platform/pagination.ts";
import {
  ACTIVE_STATUSES, attentionSchema, createDeploymentSchema, deploymentErrorSchema, deploymentMetricsSchema, deploymentViewSchema, listDeploymentsQuery, phaseRecordSchema, STRATEGIES,
  type DeploymentView,
} from "../../protocol/deployments.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { listOf, pageOf } from "../../protocol/api/common.ts";
import { deploymentSchema, flowVersionSchema } from "../../protocol/api/deployments.ts";

const idParam = z.object({ id: z.uuid() });
const versionsQuery = z.strictObject({ instanceId: z.uuid() });
// Arbitrary constant naming "deployments of one instance" among advisory locks.
const DEPLOY_LOCK = 7_470_002;

type Row = typeof deployments.$inferSelect;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

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
    description: "One at a time per instance. Governance applies: policies (403 `POLICY_DENIED`) and daily quotas (429 `QUOTA_EXCEEDED`). With `stack` it is a runtime upgrade: green runs that Node-RED stack (with the given flows, or the current ones), and the instance's stack changes only when it completes; a stack the cluster's bridge does not run is 422 `stack_unsupported`. See docs/deployments.md and docs/stacks.md.",
    responses: { 202: deploymentSchema },
    errors: [404, 409, 422, 429],
  }), requirePermission("deployments", "create"), validate("json", createDeploymentSchema), async (c) => {
    const body = c.req.valid("json");
    if (!(STRATEGIES as readonly string[]).includes(body.strategy)) {
      throw new ApiError(400, "unsupported_strategy", `strategy "${body.strategy}" is not supported; supported: ${STRATEGIES.join(", ")}`);
    }
    const { db, kv } = c.var.services;
    const principal = c.var.principal!;
    const now = new Date();
    // Before anything is written: a bad REDFORGE_DEPLOY_TIMEOUT_SCALE is a 503 that names it.
    const workerScale = workerTimeoutScale(c.env);
    const init = await transact(c, async (tx, record) => {
      const [inst] = await tx.select().from(instances).where(and(eq(instances.id, body.instanceId), sql`${instances.deletedAt} is null`)).limit(1);
      if (!inst) throw notFound("instance", body.instanceId);
      const link = await c.env.CLUSTER_LINK.get(c.env.CLUSTER_LINK.idFromName(inst.clusterId)).status();
      const admission = admitDeployment(inst.status, link.connected);
      if (!admission.ok) {
        throw new ApiError(409, "instance_not_running", `instance ${inst.name} ${admission.reason}; a blue-green deployment needs it running (or unknown with its bridge connected)`, { status: inst.status, bridgeConnected: link.connected });
      }
      // One deployment per instance: the lock makes check-then-insert race-free.
      await tx.execute(sql`select pg_advisory_xact_lock(${DEPLOY_LOCK}, hashtext(${inst.id}))`);
      const [active] = await tx.select({ id: deployments.id, status: deployments.status }).from(deployments)
        .where(and(eq(deployments.instanceId, inst.id), inArray(deployments.status, ACTIVE_STATUSES))).limit(1);
      // The row is a projection of the DeploymentRun; the object is the truth if the row lags behind.
      const live = active ? await c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(active.id)).state() : null;
      if (active && live && !ACTIVE_STATUSES.includes(live.status)) {
        await tx.update(deployments).set({ status: live.status, error: live.error?.message ?? null, errorCode: live.error?.code ?? null, completedAt: live.completedAt ? new Date(live.completedAt) : new Date() }).where(eq(deployments.id, active.id));
      } else if (active) throw new ApiError(409, "deployment_in_progress", `instance ${inst.name} already has deployment ${active.id} (${active.status}); one at a time`, { deploymentId: active.id });
      await assertDeploymentAllowed({ db: tx, kv }, { instance: inst, principal, now });
      if (body.stack) await assertStackSupported(c.env, inst.clusterId, body.stack);
      const toStack = body.stack ?? inst.stack;

      // Versions: what runs now (recorded as a version if it never was) and what comes.
      const [{ latest } = { latest: null }] = await tx.select({ latest: max(flowVersions.version) }).from(flowVersions).where(eq(flowVersions.instanceId, inst.id));
      let next = (latest ?? 0) + 1;
      const [current] = latest === null ? [] : await tx.select().from(flowVersions)
        .where(and(eq(flowVersions.instanceId, inst.id), eq(flowVersions.version, latest))).limit(1);
      let from = current;
      const runningDigest = await sha256Hex(JSON.stringify(inst.flows));
      if (!from || from.digest !== runningDigest) {
        [from] = await tx.insert(flowVersions).values({ instanceId: inst.id, version: next++, flows: inst.flows, digest: runningDigest, createdBy: principal.userId }).returning();
      }
      let to;
      if (!body.versionId && !body.flows) {
        to = from; // a runtime upgrade of what runs now
      } else if (body.versionId) {
        [to] = await tx.select().from(flowVersions).where(and(eq(flowVersions.id, body.versionId), eq(flowVersions.instanceId, inst.id))).limit(1);
        if (!to) throw notFound("flow version", body.versionId);
      } else {
        [to] = await tx.insert(flowVersions).values({
          instanceId: inst.id, version: next, flows: body.flows!, digest: await sha256Hex(JSON.stringify(body.flows)), createdBy: principal.userId,
        }).returning();
      }
      const [row] = await tx.insert(deployments).values({
        instanceId: inst.id, strategy: body.strategy, status: "in_progress", currentPhase: body.holdDuring === "switch" ? "DEPLOY" : "DRAIN",
        fromVersionId: from!.id, toVersionId: to!.id, createdBy: principal.userId, createdAt: now,
      }).returning();
      record({
        userId: principal.userId, action: "DEPLOYMENT_CREATED", resourceType: "deployment", resourceId: row!.id,
        details: {
          instanceId: inst.id, strategy: body.strategy, fromVersion: from!.version, toVersion: to!.version,
          fromStack: inst.stack, toStack, description: body.description ?? null,
        },
      });
      return {
        id: row!.id, instanceId: inst.id, clusterId: inst.clusterId, strategy: body.strategy, flows: to!.flows,
        fromVersionId: from!.id, toVersionId: to!.id,
        verify: body.verify ?? { mqtt: true, failureLimit: 0, pause: false },
        drainTimeoutMs: body.drainTimeoutSeconds * 1000, analysisMs: body.analysisSeconds * 1000, maxErrorRate: body.maxErrorRate,
        rollbackWindowMs: body.rollbackWindowSeconds * 1000, holdDuring: body.holdDuring,
        timeouts: resolveTimeouts(body.timeouts, workerScale, link.roundTripMs), fromStack: inst.stack, toStack, createdBy: principal.userId ?? null, createdAt: now.toISOString(),
      } satisfies DeploymentInit;
    });
    const run = c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(init.id));
    try {
      const started = await run.start(init);
      return c.json(started, 202);
    } catch (err) {
      await db.update(deployments).set({ status: "failed", error: `could not start: ${(err as Error).message}`, errorCode: "start_failed", completedAt: new Date() }).where(eq(deployments.id, init.id));
      throw err;
    }
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

  .get("/:id", doc({ summary: "A deployment: status, phase, history, metrics, error", responses: { 200: deploymentSchema }, errors: [404] }), requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(deployments).where(eq(deployments.id, id)).limit(1);
    if (!row) throw notFound("deployment", id);
    const live = await c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(id)).state();
    return c.json(live ?? rowView(row));
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
