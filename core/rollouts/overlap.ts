/**
 * A new rollout may not touch an instance another rollout still owns, nor one
 * a deployment is changing right now: checked up front, before anything is
 * written, so the second rollout is refused whole (409) instead of failing
 * instance by instance later (their deployments would refuse each other with
 * `deployment_in_progress`, which counts against the failure budget).
 *
 * An instance belongs to an active rollout (running, paused, awaiting
 * approval, rolling back) when it is in one of its waves and was not skipped,
 * or, while that rollout's late joiners are still to come (lateJoiners
 * "after_completion"), when that rollout's selector picks it now: it would get
 * that rollout's version after its last wave.
 *
 * Throws ApiError:
 *   409 rollout_conflict        details {rolloutId, rolloutStatus, overlapping, instanceIds (first 20)}
 *   409 deployment_in_progress  details {deploymentId, instanceId, overlapping, instanceIds (first 20)}
 * and, for a single deployment (assertNotInRollout), 409 rollout_in_progress.
 */
import { and, eq, inArray, isNull, not } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { deployments, instances, rollouts } from "../../db/schema.ts";
import { ACTIVE_ROLLOUT_STATUSES, type Rollout } from "../../protocol/api/rollouts.ts";
import { ACTIVE_STATUSES } from "../../protocol/deployments.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../errors.ts";
import { parseSelector, toSql } from "../fleet/labelSelector.ts";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
type Q = Db | Tx;

/** How many overlapping instance ids an error names (the count is exact). */
const NAMED = 20;
/** Confirmed with their DeploymentRun, at most this many (rows can lag the object, never the other way round). */
const CONFIRM = 20;

/** The instances an active rollout still owns, from its object (the truth); null when it has ended. */
export async function ownedBy(env: Env, db: Q, row: { id: string; selector: string; status: string }, withJoiners = true): Promise<{ status: string; ids: Set<string> } | null> {
  const live: Rollout | null = await env.ROLLOUTS.get(env.ROLLOUTS.idFromName(row.id)).state();
  if (live && !ACTIVE_ROLLOUT_STATUSES.includes(live.status)) return null;
  const ids = new Set<string>();
  for (const w of live?.waves ?? []) for (const i of w.instances) if (i.status !== "skipped") ids.add(i.instanceId);
  // Not started yet (its row was just written) or its late joiners are still to come: what its selector picks now.
  const joinersToCome = withJoiners && (!live || (live.plan.lateJoiners === "after_completion" && !live.waves.some((w) => w.lateJoiners) && live.status !== "rolling_back"));
  if (joinersToCome) {
    const picked = await db.select({ id: instances.id }).from(instances)
      .where(and(isNull(instances.deletedAt), toSql(parseSelector(row.selector), instances.labels)));
    for (const r of picked) ids.add(r.id);
  }
  return { status: live?.status ?? row.status, ids };
}

/** Refuses the selection when an active rollout owns some of it, or a deployment is changing some of it. */
export async function assertNoOverlap(env: Env, db: Q, selection: readonly string[]): Promise<void> {
  const wanted = new Set(selection);
  const active = await db.select({ id: rollouts.id, selector: rollouts.selector, status: rollouts.status }).from(rollouts)
    .where(inArray(rollouts.status, [...ACTIVE_ROLLOUT_STATUSES]));
  for (const row of active) {
    const owned = await ownedBy(env, db, row);
    if (!owned) continue;
    const overlap = [...wanted].filter((id) => owned.ids.has(id));
    if (overlap.length === 0) continue;
    throw new ApiError(409, "rollout_conflict",
      `${overlap.length} of the ${wanted.size} selected instance(s) belong to rollout ${row.id} (${owned.status}); wait for it to end or abort it`,
      { rolloutId: row.id, rolloutStatus: owned.status, overlapping: overlap.length, instanceIds: overlap.slice(0, NAMED) });
  }

  const busy = await db.select({ id: deployments.id, instanceId: deployments.instanceId }).from(deployments)
    .where(and(inArray(deployments.status, ACTIVE_STATUSES), inArray(deployments.instanceId, [...wanted])));
  // The row is a projection of the DeploymentRun: one that lags behind an ended deployment does not refuse. Nor does
  // one past its switch that only waits out its rollback window (CLEANUP): a rollout counts that instance done
  // (deploymentOutcome), so the next rollout must not be refused for it; its start retries until the cleanup ends.
  const confirmed: typeof busy = [];
  for (const d of busy.slice(0, CONFIRM)) {
    const live = await env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(d.id)).state();
    if (!live || (ACTIVE_STATUSES.includes(live.status) && !(live.switched && live.phase === "CLEANUP"))) confirmed.push(d);
  }
  if (busy.length > CONFIRM) confirmed.push(...busy.slice(CONFIRM));
  if (confirmed.length === 0) return;
  const first = confirmed[0]!;
  throw new ApiError(409, "deployment_in_progress",
    `${confirmed.length} of the ${wanted.size} selected instance(s) have a deployment in progress (for example ${first.id} on instance ${first.instanceId}); wait for it to end`,
    { deploymentId: first.id, instanceId: first.instanceId, overlapping: confirmed.length, instanceIds: confirmed.slice(0, NAMED).map((d) => d.instanceId) });
}

/** Only one rollout start checks and writes its row at a time (two concurrent starts over one group cannot both pass). */
export const ROLLOUT_START_LOCK = 7_470_015;

/**
 * Late joiners of rollout `self` that another active rollout has in its waves (labelled into this selection after
 * that one started): they stay with it. Claims by selector alone do not count here, so two rollouts checking their
 * late joiners at once cannot both leave an instance out.
 */
export async function unclaimed(env: Env, db: Q, self: string, candidates: readonly string[]): Promise<{ free: string[]; claimed: Map<string, string> }> {
  const claimed = new Map<string, string>();
  if (candidates.length === 0) return { free: [], claimed };
  const active = await db.select({ id: rollouts.id, selector: rollouts.selector, status: rollouts.status }).from(rollouts)
    .where(and(inArray(rollouts.status, [...ACTIVE_ROLLOUT_STATUSES]), not(inArray(rollouts.id, [self]))));
  for (const row of active) {
    const owned = await ownedBy(env, db, row, false).catch(() => null);
    if (!owned) continue;
    for (const id of candidates) if (owned.ids.has(id) && !claimed.has(id)) claimed.set(id, row.id);
  }
  return { free: candidates.filter((id) => !claimed.has(id)), claimed };
}

/** What RolloutRun.holds answers (durable/rolloutRun/state.ts `Holding`), as it crosses RPC. */
type Holding =
  | { kind: "wave"; rolloutId: string; rolloutStatus: string; wave: number; waveStatus: string; instanceStatus: string; deploymentId: string | null }
  | { kind: "late_joiner"; rolloutId: string; rolloutStatus: string; selector: string };
interface RolloutHolder { holds(instanceId: string): Promise<Holding | "not_started" | null> }

/**
 * Refuses a single deployment (POST /api/deployments) on an instance an active rollout has in hand: a wave of it is
 * still to come, deploying it or rolling it back, or the instance is one of its late joiners still to come. Without
 * this the operator's deployment and the rollout's would collide (whichever starts second is refused with
 * `deployment_in_progress`, and on the rollout's side that counts against the wave's failure budget), or the rollout
 * would overwrite the operator's flows a few minutes later. The rollout starts its own deployments through
 * core/deployments/start.ts directly, never through this check.
 *
 * Throws ApiError 409 rollout_in_progress, details {rolloutId, rolloutStatus, instanceId, wave, waveStatus,
 * instanceStatus, deploymentId} for a wave's instance, {rolloutId, rolloutStatus, instanceId, lateJoiner: true} for a
 * late joiner.
 */
export async function assertNotInRollout(env: Env, db: Q, instanceId: string): Promise<void> {
  const active = await db.select({ id: rollouts.id, selector: rollouts.selector, status: rollouts.status }).from(rollouts)
    .where(inArray(rollouts.status, [...ACTIVE_ROLLOUT_STATUSES]));
  for (const row of active) {
    const stub = env.ROLLOUTS.get(env.ROLLOUTS.idFromName(row.id)) as unknown as RolloutHolder;
    const held = await stub.holds(instanceId);
    if (held === null) continue;
    if (held === "not_started" || held.kind === "late_joiner") {
      const selector = held === "not_started" ? row.selector : held.selector;
      const [picked] = await db.select({ id: instances.id }).from(instances)
        .where(and(eq(instances.id, instanceId), isNull(instances.deletedAt), toSql(parseSelector(selector), instances.labels))).limit(1);
      if (!picked) continue;
      const status = held === "not_started" ? row.status : held.rolloutStatus;
      throw new ApiError(409, "rollout_in_progress",
        `instance ${instanceId} matches the selector of rollout ${row.id} (${status}), which deploys it after its last wave; wait for the rollout to end or abort it`,
        { rolloutId: row.id, rolloutStatus: status, instanceId, lateJoiner: true });
    }
    const what = held.waveStatus === "pending" ? `wave ${held.wave + 1} of rollout ${row.id} is still to deploy it`
      : held.waveStatus === "rolling_back" ? `wave ${held.wave + 1} of rollout ${row.id} is rolling it back`
      : `wave ${held.wave + 1} of rollout ${row.id} is deploying it (${held.instanceStatus})`;
    throw new ApiError(409, "rollout_in_progress", `instance ${instanceId}: ${what}; wait for the rollout to end or abort it`, {
      rolloutId: held.rolloutId, rolloutStatus: held.rolloutStatus, instanceId, wave: held.wave, waveStatus: held.waveStatus,
      instanceStatus: held.instanceStatus, deploymentId: held.deploymentId,
    });
  }
}
