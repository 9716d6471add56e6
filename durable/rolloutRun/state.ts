/**
 * What a RolloutRun stores: the plan and status ("meta") and one entry per
 * wave with its instances, each under its own storage key so a tick rewrites
 * only the waves it changed (a 1,000-instance rollout is ~150 KB of state).
 * The flows are stored once, apart. `view` is the API's Rollout.
 */
import type { Rollout, RolloutDeploymentOptions, RolloutInstance, RolloutInstanceStatus, RolloutStatus, WaveStatus } from "../../protocol/api/rollouts.ts";
import type { RolloutInit, RolloutPlan } from "../../core/rollouts/types.ts";

export interface InstanceRun {
  instanceId: string;
  deploymentId: string | null;
  status: RolloutInstanceStatus;
  reason?: string;
  code?: string;
  /** The version it ran before (the deployment's fromVersionId): what a wave rollback redeploys once blue is gone. */
  fromVersionId?: string | null;
  /** When the start of its deployment was attempted: a restart between that and storing the id adopts the deployment. */
  startedAt?: number;
  /** Starts that failed for a reason that may pass (not a refusal); the last allowed one marks it failed. */
  attempts?: number;
  /** After such a failure: not started again before this time (ms). */
  retryAt?: number;
  /** A wave rollback in progress for this instance: its deployment's own rollback, or a redeploy of `fromVersionId`. */
  rollback?: { via: "deployment" | "redeploy"; since: number };
  rollbackDeploymentId?: string;
}

export interface WaveRun {
  index: number;
  target: number;
  status: WaveStatus;
  lateJoiners?: boolean;
  startedAt: number | null;
  completedAt: number | null;
  /** The budget was exceeded: nothing new starts, the wave is judged once what runs has settled. */
  stopping?: boolean;
  instances: InstanceRun[];
}

export interface RolloutMeta {
  id: string;
  selector: string;
  description: string | null;
  flowsDigest: string;
  versionId: string | null;
  plan: RolloutPlan;
  deployment: RolloutDeploymentOptions;
  status: RolloutStatus;
  /** What an operator's pause interrupted (running or awaiting_approval): resume goes back to it. */
  pausedFrom: RolloutStatus | null;
  currentWave: number | null;
  nextWaveAt: number | null;
  failure: { code: string; message: string } | null;
  lateJoinersChecked: boolean;
  /** When the selector was evaluated again after the last planned wave (absent: not yet, or lateJoiners "ignore"). */
  lateJoinersCheckedAt?: number;
  waveCount: number;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
}

export interface RunState {
  meta: RolloutMeta;
  waves: WaveRun[];
}

export const TERMINAL: readonly RolloutStatus[] = ["completed", "failed", "aborted"];
/** An instance whose outcome is not known yet. */
export const UNSETTLED: readonly RolloutInstanceStatus[] = ["pending", "deploying"];

export function initialState(init: RolloutInit, now: number): RunState {
  const at = new Date(now).toISOString();
  return {
    meta: {
      id: init.id, selector: init.selector, description: init.description, flowsDigest: init.flowsDigest, versionId: init.versionId,
      plan: init.plan, deployment: init.deployment, status: "running", pausedFrom: null, currentWave: null, nextWaveAt: null,
      failure: null, lateJoinersChecked: init.plan.lateJoiners === "ignore", waveCount: init.waves.length,
      createdBy: init.createdBy, createdAt: init.createdAt, updatedAt: at, completedAt: null,
    },
    waves: init.waves.map((ids, index) => ({
      index, target: init.targets[index]!, status: "pending", startedAt: null, completedAt: null,
      instances: ids.map((instanceId) => ({ instanceId, deploymentId: null, status: "pending" })),
    })),
  };
}

export function summaryOf(waves: readonly WaveRun[]): Rollout["summary"] {
  const s = { total: 0, completed: 0, failed: 0, pending: 0 };
  for (const w of waves) {
    for (const i of w.instances) {
      s.total++;
      if (i.status === "completed") s.completed++;
      else if (i.status === "failed") s.failed++;
      else if (UNSETTLED.includes(i.status)) s.pending++;
    }
  }
  return s;
}

export function instanceView(i: InstanceRun): RolloutInstance {
  return {
    instanceId: i.instanceId, deploymentId: i.deploymentId, status: i.status,
    ...(i.reason !== undefined ? { reason: i.reason } : {}), ...(i.code !== undefined ? { code: i.code } : {}),
    ...(i.rollbackDeploymentId ? { rollbackDeploymentId: i.rollbackDeploymentId } : {}),
  };
}

function lateJoinersOf(s: RunState): NonNullable<Rollout["lateJoiners"]> {
  const late = s.waves.filter((w) => w.lateJoiners).flatMap((w) => w.instances);
  return {
    policy: s.meta.plan.lateJoiners, checkedAt: iso(s.meta.lateJoinersCheckedAt ?? null),
    added: late.length, skipped: late.filter((i) => i.status === "skipped").length,
  };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function view(s: RunState): Rollout {
  const m = s.meta;
  return {
    id: m.id, status: m.status, selector: m.selector, createdBy: m.createdBy, createdAt: m.createdAt, updatedAt: m.updatedAt,
    completedAt: m.completedAt, description: m.description, flowsDigest: m.flowsDigest, versionId: m.versionId,
    plan: m.plan, currentWave: m.currentWave, nextWaveAt: iso(m.nextWaveAt),
    waves: s.waves.map((w) => ({
      index: w.index, target: w.target, status: w.status, ...(w.lateJoiners ? { lateJoiners: true } : {}),
      startedAt: iso(w.startedAt), completedAt: iso(w.completedAt), instances: w.instances.map(instanceView),
    })),
    summary: summaryOf(s.waves),
    failure: m.failure,
    lateJoiners: lateJoinersOf(s),
  };
}

/**
 * Whether this rollout has `instanceId` in hand for a single deployment's sake (POST /api/deployments refuses one on
 * it, 409 `rollout_in_progress`): while the rollout is active, an instance of a wave that is still to come, deploying,
 * or rolling back (a completed instance of a running wave may still be rolled back with it), unless it was skipped;
 * or, not in any wave, while the late joiners are still to come (`lateJoiner`: the caller checks the selector, since
 * that instance gets this rollout's version after its last wave). An instance whose wave is over is free again.
 */
export type Holding =
  | { kind: "wave"; rolloutId: string; rolloutStatus: RolloutStatus; wave: number; waveStatus: WaveStatus; instanceStatus: RolloutInstanceStatus; deploymentId: string | null }
  | { kind: "late_joiner"; rolloutId: string; rolloutStatus: RolloutStatus; selector: string };

const HOLDING_WAVES: readonly WaveStatus[] = ["pending", "running", "rolling_back"];

export function holding(s: RunState, instanceId: string): Holding | null {
  const m = s.meta;
  if (TERMINAL.includes(m.status)) return null;
  for (const w of s.waves) {
    const i = w.instances.find((x) => x.instanceId === instanceId);
    if (!i) continue;
    // Skipped: the rollout will not touch it. A wave that is over let go of its instances (what still deploys there is
    // refused by the one-deployment-per-instance rule instead).
    if (i.status === "skipped" || !HOLDING_WAVES.includes(w.status)) return null;
    return {
      kind: "wave", rolloutId: m.id, rolloutStatus: m.status, wave: w.index, waveStatus: w.status, instanceStatus: i.status,
      deploymentId: i.rollbackDeploymentId ?? i.deploymentId,
    };
  }
  const joinersToCome = m.plan.lateJoiners === "after_completion" && !m.lateJoinersChecked && m.status !== "rolling_back";
  return joinersToCome ? { kind: "late_joiner", rolloutId: m.id, rolloutStatus: m.status, selector: m.selector } : null;
}
