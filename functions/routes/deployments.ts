import { and, desc, eq, inArray, lt, max, or, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { deployments, flowVersions, instances } from "../../db/schema.ts";
import type { DeploymentInit } from "../../core/objects.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { assertDeploymentAllowed } from "../../core/governance/deploymentGate.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeCursor, page } from "../../core/platform/pagination.ts";
import { ACTIVE_STATUSES, createDeploymentSchema, listDeploymentsQuery, STRATEGIES, type DeploymentView } from "../../protocol/deployments.ts";
import { validate } from "../../core/validation.ts";

const idParam = z.object({ id: z.uuid() });
const versionsQuery = z.strictObject({ instanceId: z.uuid() });
// Arbitrary constant naming "deployments of one instance" among advisory locks.
const DEPLOY_LOCK = 7_470_002;

type Row = typeof deployments.$inferSelect;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The stored row as the API shows it when the DeploymentRun has nothing newer. */
function rowView(r: Row): DeploymentView {
  const m = (r.metrics ?? {}) as Record<string, unknown>;
  return {
    id: r.id, instanceId: r.instanceId, strategy: r.strategy, status: r.status as DeploymentView["status"],
    phase: (r.currentPhase as DeploymentView["phase"]) ?? null, progress: Number(m.progress ?? 0),
    ...(typeof m.blue === "string" ? { blue: m.blue } : {}), ...(typeof m.green === "string" ? { green: m.green } : {}),
    switched: Boolean(m.switched), history: (m.history as DeploymentView["history"]) ?? [],
    metrics: m as unknown as DeploymentView["metrics"], error: r.error,
    fromVersionId: r.fromVersionId, toVersionId: r.toVersionId!, createdAt: r.createdAt.toISOString(),
    completedAt: r.completedAt?.toISOString() ?? null,
  };
}

type RunAnswer = { ok: true; view: DeploymentView } | { ok: false; status: 404 | 409; code: string; message: string };

function unwrap(answer: RunAnswer): DeploymentView {
  if (answer.ok) return answer.view;
  throw new ApiError(answer.status, answer.code, answer.message);
}

export const deploymentRoutes = new Hono<AppEnv>()
  .post("/", requirePermission("deployments", "create"), validate("json", createDeploymentSchema), async (c) => {
    const body = c.req.valid("json");
    if (!(STRATEGIES as readonly string[]).includes(body.strategy)) {
      throw new ApiError(400, "unsupported_strategy", `strategy "${body.strategy}" is not supported; supported: ${STRATEGIES.join(", ")}`);
    }
    const { db, kv } = c.var.services;
    const principal = c.var.principal!;
    const now = new Date();
    const init = await transact(c, async (tx, record) => {
      const [inst] = await tx.select().from(instances).where(and(eq(instances.id, body.instanceId), sql`${instances.deletedAt} is null`)).limit(1);
      if (!inst) throw notFound("instance", body.instanceId);
      if (inst.status !== "running") throw new ApiError(409, "instance_not_running", `instance ${inst.name} is ${inst.status}; a blue-green deployment needs it running`);
      // One deployment per instance: the lock makes check-then-insert race-free.
      await tx.execute(sql`select pg_advisory_xact_lock(${DEPLOY_LOCK}, hashtext(${inst.id}))`);
      const [active] = await tx.select({ id: deployments.id, status: deployments.status }).from(deployments)
        .where(and(eq(deployments.instanceId, inst.id), inArray(deployments.status, ACTIVE_STATUSES))).limit(1);
      // The row is a projection of the DeploymentRun; the object is the truth if the row lags behind.
      const live = active ? ((await c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(active.id)).state()) as unknown as DeploymentView | null) : null;
      if (active && live && !ACTIVE_STATUSES.includes(live.status)) {
        await tx.update(deployments).set({ status: live.status, error: live.error, completedAt: live.completedAt ? new Date(live.completedAt) : new Date() }).where(eq(deployments.id, active.id));
      } else if (active) throw new ApiError(409, "deployment_in_progress", `instance ${inst.name} already has deployment ${active.id} (${active.status}); one at a time`, { deploymentId: active.id });
      await assertDeploymentAllowed({ db: tx, kv }, { instance: inst, principal, now });

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
      if (body.versionId) {
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
        details: { instanceId: inst.id, strategy: body.strategy, fromVersion: from!.version, toVersion: to!.version, description: body.description ?? null },
      });
      return {
        id: row!.id, instanceId: inst.id, clusterId: inst.clusterId, strategy: body.strategy, flows: to!.flows,
        fromVersionId: from!.id, toVersionId: to!.id,
        verify: body.verify ?? { mqtt: true, failureLimit: 0, pause: false },
        drainTimeoutMs: body.drainTimeoutSeconds * 1000, analysisMs: body.analysisSeconds * 1000, maxErrorRate: body.maxErrorRate,
        rollbackWindowMs: body.rollbackWindowSeconds * 1000, holdDuring: body.holdDuring, createdBy: principal.userId ?? null, createdAt: now.toISOString(),
      } satisfies DeploymentInit;
    });
    const run = c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(init.id));
    try {
      const started = (await run.start(init)) as unknown as DeploymentView;
      return c.json(started, 202);
    } catch (err) {
      await db.update(deployments).set({ status: "failed", error: `could not start: ${(err as Error).message}`, completedAt: new Date() }).where(eq(deployments.id, init.id));
      throw err;
    }
  })

  .get("/", requirePermission("deployments", "read"), validate("query", listDeploymentsQuery), async (c) => {
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

  .get("/versions", requirePermission("deployments", "read"), validate("query", versionsQuery), async (c) => {
    const rows = await c.var.services.db.select({
      id: flowVersions.id, instanceId: flowVersions.instanceId, version: flowVersions.version, digest: flowVersions.digest,
      createdBy: flowVersions.createdBy, createdAt: flowVersions.createdAt,
    }).from(flowVersions).where(eq(flowVersions.instanceId, c.req.valid("query").instanceId)).orderBy(desc(flowVersions.version)).limit(200);
    return c.json({ items: rows });
  })

  .get("/:id", requirePermission("deployments", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(deployments).where(eq(deployments.id, id)).limit(1);
    if (!row) throw notFound("deployment", id);
    const live = (await c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(id)).state()) as unknown as DeploymentView | null;
    return c.json(live ?? rowView(row));
  })

  .post("/:id/rollback", requirePermission("deployments", "update"), validate("param", idParam), (c) => act(c, "rollback"))
  .post("/:id/promote", requirePermission("deployments", "update"), validate("param", idParam), (c) => act(c, "promote"))
  .post("/:id/abort", requirePermission("deployments", "update"), validate("param", idParam), (c) => act(c, "abort"));

async function act(c: import("hono").Context<AppEnv>, what: "rollback" | "promote" | "abort") {
  const id = c.req.param("id")!;
  const [row] = await c.var.services.db.select({ id: deployments.id }).from(deployments).where(eq(deployments.id, id)).limit(1);
  if (!row) throw notFound("deployment", id);
  const run = c.env.DEPLOYMENT_RUN.get(c.env.DEPLOYMENT_RUN.idFromName(id));
  const answer = (await run.operate(what, c.var.principal!.userId ?? null)) as unknown as RunAnswer;
  const view = unwrap(answer);
  await transact(c, async (_tx, record) => record({
    userId: c.var.principal!.userId, action: `DEPLOYMENT_${what.toUpperCase()}_REQUESTED`, resourceType: "deployment", resourceId: id,
    details: { status: view.status, phase: view.phase },
  }));
  return c.json(view, 202);
}
