/**
 * A deployment row with no DeploymentRun behind it. startDeployment (start.ts) commits the row (in_progress) and
 * only then starts the object; a workerd restart or crash between the two left the row active forever: every
 * later deployment of the instance was 409 `deployment_in_progress`, and a rollout marked the instance
 * `start_failed`. Such a row is settled as failed (`start_interrupted`) once it is older than START_GRACE_MS
 * and its object still has no state: before that, the start may merely be slow.
 */
import { and, eq, inArray } from "drizzle-orm";
import { appendAuditOnce } from "../../db/auditChain.ts";
import type { Db } from "../../db/client.ts";
import { deployments } from "../../db/schema.ts";
import { ACTIVE_STATUSES, type DeploymentError, type DeploymentView } from "../../protocol/deployments.ts";

/**
 * How old an active row without object state must be to count as interrupted. The row's createdAt is taken
 * before the start's transaction (which under load has taken tens of seconds: governance, the audit chain's
 * lock), and the object stores its state at once when started, so a minute leaves a slow start alone.
 */
type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export const START_GRACE_MS = 60_000;

export const INTERRUPTED_CODE = "start_interrupted" as const;

/** A row the check read: its status and when it was created. */
export interface ActiveRow { id: string; instanceId: string; status: string; createdAt: Date }

/** Whether `row` is an orphan: active, its DeploymentRun has no state (`live` null), and older than the grace. */
export function isOrphan(row: ActiveRow, live: DeploymentView | null, now: Date, graceMs = START_GRACE_MS): boolean {
  return live === null && (ACTIVE_STATUSES as string[]).includes(row.status) && now.getTime() - row.createdAt.getTime() >= graceMs;
}

export function interruptedError(row: Pick<ActiveRow, "createdAt">): DeploymentError {
  return {
    code: INTERRUPTED_CODE,
    message: `the deployment's start was interrupted (the control plane stopped after recording it at ${row.createdAt.toISOString()} `
      + "and before its run began); nothing was sent to the instance",
  };
}

/**
 * Settles an orphan row as failed inside the caller's transaction, with its DEPLOYMENT_FAILED audit row (once).
 * Only while it is still active: a row the object wrote meanwhile is not overwritten.
 */
export async function settleOrphan(tx: Tx, row: ActiveRow, now: Date): Promise<DeploymentError> {
  const error = interruptedError(row);
  const settled = await tx.update(deployments).set({ status: "failed", error: error.message, errorCode: error.code, completedAt: now })
    .where(and(eq(deployments.id, row.id), inArray(deployments.status, ACTIVE_STATUSES))).returning({ id: deployments.id });
  if (settled.length > 0) {
    await appendAuditOnce(tx, {
      userId: null, action: "DEPLOYMENT_FAILED", resourceType: "deployment", resourceId: row.id,
      details: { instanceId: row.instanceId, code: error.code, reason: error.message, metrics: null },
    });
  }
  return error;
}

/** GET /api/deployments/:id of an orphan (read-only): failed with `start_interrupted`, as the next start will record it. */
export function orphanView(v: DeploymentView, row: ActiveRow, live: DeploymentView | null, now: Date): DeploymentView {
  if (!isOrphan(row, live, now)) return v;
  return { ...v, status: "failed", error: interruptedError(row), attention: null, completedAt: v.completedAt ?? now.toISOString() };
}
