/**
 * A rollout as the console shows it: /ws/rollouts/:id frames applied to the
 * view, the operator buttons that apply in each status (the API's 409s, named
 * once here), the wave field as a person types it, and words for the codes.
 */
import type { components } from "../../../protocol/api/client.ts";

export type Rollout = components["schemas"]["Rollout"];
export type RolloutWave = Rollout["waves"][number];
export type RolloutInstance = RolloutWave["instances"][number];
export type RolloutStatus = Rollout["status"];
export type WaveTarget = Rollout["plan"]["waves"][number];

export const ROLLOUT_TONE: Record<string, string> = {
  running: "busy", paused: "idle", awaiting_approval: "busy", rolling_back: "bad", completed: "ok", failed: "bad", aborted: "bad",
  // waves
  pending: "idle", rolled_back: "bad",
  // instances
  deploying: "busy", skipped: "idle",
};

export const ACTIVE_STATUSES: readonly RolloutStatus[] = ["running", "paused", "awaiting_approval", "rolling_back"];

/** Which buttons the API would accept now (docs/rollouts.md: not_pausable, not_paused, not_awaiting_approval, not_abortable). */
export function rolloutActions(status: RolloutStatus): { pause: boolean; resume: boolean; approve: boolean; abort: boolean } {
  return {
    pause: status === "running" || status === "awaiting_approval",
    resume: status === "paused",
    approve: status === "awaiting_approval",
    abort: status === "running" || status === "paused" || status === "awaiting_approval",
  };
}

interface Frame { event: string; data: Record<string, unknown> }
const isFrame = (m: unknown): m is Frame =>
  !!m && typeof m === "object" && typeof (m as Frame).event === "string" && !!(m as Frame).data && typeof (m as Frame).data === "object";

/** Rebuilds the summary from the instances (a per-instance frame changes the counts the view carried). */
export function summarise(waves: readonly RolloutWave[]): Rollout["summary"] {
  const s = { total: 0, completed: 0, failed: 0, pending: 0 };
  for (const w of waves) for (const i of w.instances) {
    s.total++;
    if (i.status === "completed") s.completed++;
    else if (i.status === "failed") s.failed++;
    else if (i.status === "pending" || i.status === "deploying") s.pending++;
  }
  return s;
}

/**
 * One frame onto the view. `rollout:state` replaces it; `rollout:wave` and `rollout:instance` change one wave or
 * one instance in place. A frame about another rollout, or before the first state, changes nothing.
 */
export function applyRolloutEvent(view: Rollout | null, m: unknown): Rollout | null {
  if (!isFrame(m)) return view;
  if (m.event === "rollout:state") return m.data as unknown as Rollout;
  if (!view || m.data.rolloutId !== view.id) return view;
  if (m.event === "rollout:wave") {
    const d = m.data as { index: number; status: RolloutWave["status"]; rolloutStatus: RolloutStatus };
    const waves = view.waves.map((w) => (w.index === d.index ? { ...w, status: d.status } : w));
    return { ...view, status: d.rolloutStatus, waves, currentWave: Math.max(view.currentWave ?? 0, d.index) };
  }
  if (m.event === "rollout:instance") {
    const d = m.data as RolloutInstance & { wave: number };
    let found = false;
    const waves = view.waves.map((w) => {
      if (w.index !== d.wave) return w;
      const instances = w.instances.map((i) => {
        if (i.instanceId !== d.instanceId) return i;
        found = true;
        return {
          ...i, status: d.status, deploymentId: d.deploymentId ?? i.deploymentId,
          ...(d.reason !== undefined ? { reason: d.reason } : {}), ...(d.code !== undefined ? { code: d.code } : {}),
          ...(d.rollbackDeploymentId !== undefined ? { rollbackDeploymentId: d.rollbackDeploymentId } : {}),
        };
      });
      return { ...w, instances };
    });
    return found ? { ...view, waves, summary: summarise(waves) } : view;
  }
  return view;
}

/**
 * The waves field as typed ("1, 10%, 50%, 100%") → the API's targets. Only the shape is checked here (a count or
 * "N%"); whether they are cumulative and cover the selection is the API's answer (422 with its message).
 */
export function parseWaves(text: string): { waves: WaveTarget[] } | { error: string } {
  const parts = text.split(",").map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0) return { error: 'give at least one wave, e.g. "1, 10%, 100%"' };
  const waves: WaveTarget[] = [];
  for (const p of parts) {
    if (/^\d+%$/.test(p)) waves.push(p as WaveTarget);
    else if (/^\d+$/.test(p) && Number(p) > 0) waves.push(Number(p));
    else return { error: `"${p}" is neither a count (1, 5) nor a share (10%, 100%)` };
  }
  return { waves };
}

/** A wave's target for a person: its instances and the cumulative total it brings the rollout to. */
export function waveLabel(w: RolloutWave, waveCount: number): string {
  const n = w.instances.length;
  const which = w.lateJoiners ? "late joiners" : `wave ${w.index + 1}/${waveCount}`;
  return `${which} · ${n} instance${n === 1 ? "" : "s"} (to ${w.target})`;
}

const FAILURE_WORDS: Record<string, string> = {
  failure_budget_exceeded: "More instances of a wave failed than its failure budget allows: the rollout stopped.",
  operator_abort: "Aborted by an operator: instances not started were skipped.",
  rollback_incomplete: "The wave's rollback could not restore every instance: check each instance's reason below.",
};

export function rolloutFailureInWords(f: { code: string; message: string }): string {
  return FAILURE_WORDS[f.code] ?? f.message;
}

/** The plan in one line: "waves 1 → 10% → 100% · 5 at once · approval between waves · budget 0 failed". */
export function planInWords(plan: Rollout["plan"]): string {
  const pause = plan.pause.kind === "approval" ? "approval between waves" : plan.pause.seconds > 0 ? `${plan.pause.seconds}s between waves` : "no pause";
  const b = plan.failureBudget;
  const budget = [b.maxFailedInstances !== undefined ? `${b.maxFailedInstances} failed` : null, b.maxFailedPercent !== undefined ? `${b.maxFailedPercent}% failed` : null].filter(Boolean).join(" or ");
  return `waves ${plan.waves.join(" → ")} · ${plan.parallelism} at once · ${pause} · budget ${budget || "none"} per wave · on failure: ${plan.onFailure === "leave" ? "leave" : "roll the wave back"}`;
}
