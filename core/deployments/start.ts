/**
 * Starting one blue-green deployment: the one code path behind POST
 * /api/deployments and every instance of a rollout (durable/rolloutRun). In
 * one transaction: the instance is running, no other deployment is active on
 * it (advisory lock), policies and quotas admit it
 * (core/governance/deploymentGate.ts), the flow versions are recorded, the row
 * and its DEPLOYMENT_CREATED audit row are written; then its DeploymentRun
 * starts. An active row whose start was cut before its object began is settled
 * as failed (`start_interrupted`, orphans.ts) instead of blocking the instance. Refusals are ApiErrors with the codes the API documents.
 */
import { and, eq, inArray, max, sql } from "drizzle-orm";
import { appendAudit, canonicalJson } from "../../db/auditChain.ts";
import type { Db } from "../../db/client.ts";
import { deployments, flowVersions, instances } from "../../db/schema.ts";
import { ACTIVE_STATUSES, STRATEGIES, type CreateDeployment, type DeploymentInit, type DeploymentView } from "../../protocol/deployments.ts";
import type { Principal } from "../app-env.ts";
import type { Env } from "../env.ts";
import { ApiError, notFound } from "../errors.ts";
import { sha256Hex } from "../../protocol/encoding.ts";
import { assertStackSupported } from "../fleet/stacks.ts";
import { assertDeploymentAllowed } from "../governance/deploymentGate.ts";
import type { KvStore } from "../platform/kv.ts";
import { admitDeployment } from "./admission.ts";
import { isOrphan, settleOrphan } from "./orphans.ts";
import { deploymentFlowsFromBlueprint } from "../blueprints/resolve.ts";
import { resolveTimeouts, workerTimeoutScale } from "./timeouts.ts";

// Arbitrary constant naming "deployments of one instance" among advisory locks.
const DEPLOY_LOCK = 7_470_002;

/** Who starts it: the deployment's createdBy and its audit rows' who/where. */
export interface DeploymentActor {
  userId: string | null;
  principal?: Principal;
  ipAddress?: string | null;
  userAgent?: string | null;
}

/** Where the deployment came from, recorded in its DEPLOYMENT_CREATED row (a rollout names itself). */
export interface DeploymentOrigin {
  rolloutId?: string;
}

/**
 * A flow version's digest: over canonical JSON (sorted keys), as instance creation computes it.
 * The instance's flows come back from jsonb with their keys reordered, so a digest over
 * JSON.stringify stored the running flows again as a new version on the first deployment.
 */
const flowsDigest = (flows: unknown) => sha256Hex(canonicalJson(flows));

export async function startDeployment(
  env: Env, services: { db: Db; kv: KvStore }, actor: DeploymentActor, body: CreateDeployment, origin: DeploymentOrigin = {},
): Promise<DeploymentView> {
  if (!(STRATEGIES as readonly string[]).includes(body.strategy)) {
    throw new ApiError(400, "unsupported_strategy", `strategy "${body.strategy}" is not supported; supported: ${STRATEGIES.join(", ")}`);
  }
  const { db, kv } = services;
  const now = new Date();
  // Before anything is written: a bad REDFORGE_DEPLOY_TIMEOUT_SCALE is a 503 that names it.
  const workerScale = workerTimeoutScale(env);
  const init = await db.transaction(async (tx) => {
    const [inst] = await tx.select().from(instances).where(and(eq(instances.id, body.instanceId), sql`${instances.deletedAt} is null`)).limit(1);
    if (!inst) throw notFound("instance", body.instanceId);
    const link = await env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(inst.clusterId)).status();
    const admission = admitDeployment(inst.status, link.connected);
    if (!admission.ok) {
      throw new ApiError(409, "instance_not_running", `instance ${inst.name} ${admission.reason}; a blue-green deployment needs it running (or unknown with its bridge connected)`, { status: inst.status, bridgeConnected: link.connected });
    }
    // One deployment per instance: the lock makes check-then-insert race-free.
    await tx.execute(sql`select pg_advisory_xact_lock(${DEPLOY_LOCK}, hashtext(${inst.id}))`);
    const [active] = await tx.select({ id: deployments.id, instanceId: deployments.instanceId, status: deployments.status, createdAt: deployments.createdAt }).from(deployments)
      .where(and(eq(deployments.instanceId, inst.id), inArray(deployments.status, ACTIVE_STATUSES))).limit(1);
    // The row is a projection of the DeploymentRun; the object is the truth if the row lags behind.
    const live = active ? await env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(active.id)).state() : null;
    if (active && live && !ACTIVE_STATUSES.includes(live.status)) {
      await tx.update(deployments).set({ status: live.status, error: live.error?.message ?? null, errorCode: live.error?.code ?? null, completedAt: live.completedAt ? new Date(live.completedAt) : new Date() }).where(eq(deployments.id, active.id));
    } else if (active && isOrphan(active, live, now)) {
      // Its start was cut between the commit and the object (orphans.ts): it never ran, so it holds nothing.
      await settleOrphan(tx, active, now);
    } else if (active) throw new ApiError(409, "deployment_in_progress", `instance ${inst.name} already has deployment ${active.id} (${active.status}); one at a time`, { deploymentId: active.id });
    await assertDeploymentAllowed({ db: tx, kv }, { instance: inst, principal: actor.principal, now });
    if (body.stack) await assertStackSupported(env, inst.clusterId, body.stack);
    const toStack = body.stack ?? inst.stack;
    // A blueprint's flows; its required parameters must already be in the instance's env or secrets.
    const newFlows = body.blueprint ? deploymentFlowsFromBlueprint(body.blueprint, [...Object.keys(inst.env), ...inst.secretNames]) : body.flows;

    // Versions: what runs now (recorded as a version if it never was) and what comes.
    const [{ latest } = { latest: null }] = await tx.select({ latest: max(flowVersions.version) }).from(flowVersions).where(eq(flowVersions.instanceId, inst.id));
    let next = (latest ?? 0) + 1;
    const [current] = latest === null ? [] : await tx.select().from(flowVersions)
      .where(and(eq(flowVersions.instanceId, inst.id), eq(flowVersions.version, latest))).limit(1);
    let from = current;
    const runningDigest = await flowsDigest(inst.flows);
    if (!from || from.digest !== runningDigest) {
      [from] = await tx.insert(flowVersions).values({ instanceId: inst.id, version: next++, flows: inst.flows, digest: runningDigest, createdBy: actor.userId }).returning();
    }
    let to;
    if (!body.versionId && !newFlows) {
      to = from; // a runtime upgrade of what runs now
    } else if (body.versionId) {
      [to] = await tx.select().from(flowVersions).where(and(eq(flowVersions.id, body.versionId), eq(flowVersions.instanceId, inst.id))).limit(1);
      if (!to) throw notFound("flow version", body.versionId);
    } else {
      [to] = await tx.insert(flowVersions).values({
        instanceId: inst.id, version: next, flows: newFlows!, digest: await flowsDigest(newFlows), createdBy: actor.userId,
      }).returning();
    }
    const [row] = await tx.insert(deployments).values({
      instanceId: inst.id, strategy: body.strategy, status: "in_progress", currentPhase: body.holdDuring === "switch" ? "DEPLOY" : "DRAIN",
      fromVersionId: from!.id, toVersionId: to!.id, createdBy: actor.userId, createdAt: now,
    }).returning();
    await appendAudit(tx, [{
      userId: actor.userId, ipAddress: actor.ipAddress ?? null, userAgent: actor.userAgent ?? null, statusCode: null,
      action: "DEPLOYMENT_CREATED", resourceType: "deployment", resourceId: row!.id,
      details: {
        instanceId: inst.id, strategy: body.strategy, fromVersion: from!.version, toVersion: to!.version,
        fromStack: inst.stack, toStack, description: body.description ?? null, ...(body.blueprint ? { blueprint: body.blueprint } : {}), ...(origin.rolloutId ? { rolloutId: origin.rolloutId } : {}),
      },
    }]);
    return {
      id: row!.id, instanceId: inst.id, clusterId: inst.clusterId, strategy: body.strategy, flows: to!.flows,
      fromVersionId: from!.id, toVersionId: to!.id,
      verify: body.verify ?? { mqtt: true, failureLimit: 0, pause: false },
      drainTimeoutMs: body.drainTimeoutSeconds * 1000, analysisMs: body.analysisSeconds * 1000, maxErrorRate: body.maxErrorRate,
      rollbackWindowMs: body.rollbackWindowSeconds * 1000, holdDuring: body.holdDuring,
      timeouts: resolveTimeouts(body.timeouts, workerScale, link.roundTripMs), fromStack: inst.stack, toStack, createdBy: actor.userId ?? null, createdAt: now.toISOString(),
    } satisfies DeploymentInit;
  });
  const run = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(init.id));
  try {
    return await run.start(init);
  } catch (err) {
    await db.update(deployments).set({ status: "failed", error: `could not start: ${(err as Error).message}`, errorCode: "start_failed", completedAt: new Date() }).where(eq(deployments.id, init.id));
    throw err;
  }
}
