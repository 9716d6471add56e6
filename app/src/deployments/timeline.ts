/**
 * A deployment's view as a timeline a person reads: the blue-green phases in
 * order (protocol/deployments.ts), each with its state and duration, the live
 * frames of /ws/deployments/:id folded in, the failure code in plain words,
 * and which operator buttons apply (the same rules as durable/deploymentRun/
 * transition.ts, so a button shown is a request the run accepts).
 */
import type { components } from "../../../protocol/api/client.ts";

export type Deployment = components["schemas"]["Deployment"];
export type Phase = Deployment["history"][number]["phase"];
export type PhaseState = "waiting" | "running" | "done" | "failed" | "paused" | "skipped";

/**
 * The forward phases in the order a run goes through them, which depends on its hold order
 * (durable/deploymentRun/steps.ts ORDER): holding during the whole deploy drains first; holding
 * only during the switch starts and verifies green first and drains just before the switch.
 */
export const PHASE_ORDER: Record<"deploy" | "switch", readonly Phase[]> = {
  deploy: ["DRAIN", "DEPLOY", "VERIFY", "RESUME", "AUDIT", "CLEANUP"],
  switch: ["DEPLOY", "VERIFY", "DRAIN", "RESUME", "AUDIT", "CLEANUP"],
};

/** The view does not carry the hold order; its first phase tells (prepare is DEPLOY when holding only for the switch). */
export function holdOrderOf(d: Deployment): "deploy" | "switch" {
  return d.history[0]?.phase === "DEPLOY" ? "switch" : "deploy";
}

export interface PhaseRow { phase: Phase; state: PhaseState; durationMs: number | null; detail?: string }

export function timeline(d: Deployment, now = Date.now()): PhaseRow[] {
  const rolledBack = d.history.some((h) => h.phase === "ROLLING_BACK");
  const forward = PHASE_ORDER[holdOrderOf(d)];
  const phases = rolledBack ? [...forward, "ROLLING_BACK" as const] : forward;
  const finished = d.status === "completed" || d.status === "failed" || d.status === "rolled_back";
  return phases.map((phase) => {
    const records = d.history.filter((h) => h.phase === phase);
    const last = records.at(-1);
    const started = records.find((h) => h.status === "started");
    const detail = [...records].reverse().find((h) => h.detail)?.detail;
    let state: PhaseState;
    if (!last) state = rolledBack || finished ? "skipped" : "waiting";
    else if (last.status === "started") state = finished ? "done" : "running";
    else state = last.status === "completed" ? "done" : last.status;
    const measured = d.metrics.phaseMs[phase];
    const durationMs = measured ?? (started
      ? (state === "running" || state === "paused" ? now : Date.parse(last!.at)) - Date.parse(started.at)
      : null);
    return { phase, state, durationMs, ...(detail ? { detail } : {}) };
  });
}

/** Folds one /ws/deployments/:id frame into the view; unknown frames leave it as it is. */
export function applyDeploymentEvent(d: Deployment | null, message: unknown): Deployment | null {
  const m = message as { event?: string; data?: Record<string, unknown> } | null;
  if (!m?.data) return d;
  if (m.event === "deployment:state") return m.data as unknown as Deployment;
  if (!d || m.data.deploymentId !== d.id) return d;
  if (m.event === "deployment:phase") {
    const e = m.data as { phase: Phase; status: Deployment["history"][number]["status"]; deploymentStatus: Deployment["status"]; detail?: string; timestamp: string };
    return {
      ...d,
      phase: e.phase,
      status: e.deploymentStatus,
      history: [...d.history, { phase: e.phase, status: e.status, at: e.timestamp, ...(e.detail ? { detail: e.detail } : {}) }],
    };
  }
  if (m.event === "deployment:progress") {
    const e = m.data as { messagesHeld: number; inFlightCount: number; progress: number; attention?: Deployment["attention"] };
    return {
      ...d, progress: e.progress, metrics: { ...d.metrics, messagesHeld: e.messagesHeld, inFlightAtDrain: Math.max(d.metrics.inFlightAtDrain, e.inFlightCount) },
      // A progress frame carries the attention as of its transition (a retry scheduled, a pause, or cleared).
      ...(e.attention !== undefined ? { attention: e.attention } : {}),
    };
  }
  return d;
}

type FailureCode = NonNullable<Deployment["error"]>["code"];

const FAILURE_WORDS: Record<FailureCode, string> = {
  smoke_failed: "The new version failed its smoke tests, so traffic stayed on (or went back to) the running version.",
  green_failed: "The new version did not start (it crashed, looped, or was not ready in time).",
  deadline_exceeded: "The cluster's bridge did not answer a step in time.",
  drain_timeout: "Messages in flight did not finish before the drain timeout.",
  operator_abort: "Someone aborted the paused deployment.",
  operator_rollback: "Someone rolled the deployment back.",
  analysis_failed: "After the switch the new version's error rate was above the allowed limit, so it was rolled back.",
  step_failed: "The bridge could not carry out a step.",
  invalid_result: "The bridge answered a step with something the control plane could not read.",
  rollback_failed: "Rolling back failed: check the instance, it may need a hand.",
  stack_unsupported: "The cluster's bridge does not run the requested Node-RED version.",
  not_implemented: "This kind of deployment is not supported yet.",
  start_failed: "The deployment could not be started.",
  start_interrupted: "The control plane stopped while starting the deployment; nothing reached the instance. Deploy again.",
};

export function failureInWords(error: Deployment["error"]): string | null {
  return error ? FAILURE_WORDS[error.code] ?? "The deployment failed." : null;
}

export interface OperatorActions {
  promote: boolean; abort: boolean; rollback: boolean;
  /** A rollback that keeps failing, between attempts: POST /rollback tries again now instead of after the backoff. */
  retryRollback: boolean;
  /** A rollback that keeps failing: POST /abort gives it up (the deployment ends failed, `rollback_failed`). */
  giveUpRollback: boolean;
}

/** The same rules as durable/deploymentRun/transition.ts onPromote / onAbort / onRollback. */
export function operatorActions(d: Deployment, now = Date.now()): OperatorActions {
  const paused = d.status === "paused";
  const rollbackRetrying = d.status === "in_progress" && d.phase === "ROLLING_BACK" && d.attention?.state === "retrying";
  const betweenAttempts = rollbackRetrying && !!d.attention?.nextAttemptAt && Date.parse(d.attention.nextAttemptAt) > now;
  return {
    promote: paused,
    abort: paused,
    rollback: (d.status === "in_progress" || paused) && d.phase !== "ROLLING_BACK",
    retryRollback: betweenAttempts,
    giveUpRollback: rollbackRetrying,
  };
}

const STEP_WORDS: Record<string, string> = {
  prepare: "starting the new version", deploy: "deploying the flows", drain: "draining", verify: "the smoke checks",
  switch: "switching traffic", analysis: "the post-switch analysis", rollback: "the rollback", cleanup: "cleaning up",
};

/** A deployment's `attention` as one sentence a person reads first (the API's message follows it). */
export function attentionInWords(a: NonNullable<Deployment["attention"]>, now = Date.now()): string {
  const step = STEP_WORDS[a.step] ?? a.step;
  if (a.state === "waiting") return `Paused at ${step}: waiting for a person to promote or abort.`;
  const of = a.maxAttempts === null ? "" : ` of ${a.maxAttempts}`;
  const next = a.nextAttemptAt ? Math.round((Date.parse(a.nextAttemptAt) - now) / 1000) : null;
  const when = next === null ? "" : next > 0 ? `; next attempt in ${next} s` : "; attempt running";
  return `Retrying ${step} (attempt ${a.attempts}${of} failed${when}).`;
}

export function formatMs(ms: number | null): string {
  if (ms === null) return "—";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
}
