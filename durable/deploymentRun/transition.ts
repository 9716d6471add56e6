/**
 * The phase machine, pure: (state, event, now) → (next state, effects). No
 * I/O and no clock: the Durable Object (index.ts) stores the state, then
 * performs the effects in order. What each step sends and what its answer
 * means is the step table (steps.ts); this file only moves along it.
 */
import type { CommandType } from "../../protocol/commands.ts";
import type { DeploymentError, DeploymentEvent, DeploymentInit, DeploymentStep, Phase, PhaseRecord } from "../../protocol/deployments.ts";
import { settle } from "./accounting.ts";
import { phaseEvent, progressEvent } from "./projection.ts";
import { initialState, type RunState, type Step } from "./state.ts";
import { nextStep, phaseOf, SEQUENCE, STEPS, type Lead } from "./steps.ts";

export type RunEvent =
  | { type: "start"; init: DeploymentInit }
  /** A bridge's answer to a command this deployment sent; `result` is as reported (parsed here, by the step). */
  | { type: "result"; commandId: string; ok: boolean; result: unknown }
  /** The alarm: a deadline, the end of a wait, or a retry. */
  | { type: "alarm" }
  /** The AUDIT step's record is written. */
  | { type: "promoted" }
  | { type: "promote" | "abort" | "rollback"; by: string | null };

export type Effect =
  | { type: "send"; commandId: string; command: CommandType; args: Record<string, unknown>; timeoutMs: number }
  | { type: "setAlarm"; at: number }
  | { type: "clearAlarm" }
  | { type: "emit"; event: DeploymentEvent }
  /** Write the deployments row; `flush`: before anything after it (the deployment is over). */
  | { type: "project"; flush: boolean }
  /** AUDIT: the instance's flows become the new version, DEPLOYMENT_PROMOTED in the audit log; then a `promoted` event. */
  | { type: "promote" }
  | { type: "audit"; action: "DEPLOYMENT_ROLLED_BACK" | "DEPLOYMENT_FAILED"; reason: DeploymentError | null };

export interface Refusal { status: 404 | 409; code: string; message: string }

export interface Transition {
  state: RunState | null;
  effects: Effect[];
  /** An operator action that does not apply now; state and effects are unchanged. */
  refused?: Refusal;
}

const unchanged = (state: RunState | null, effects: Effect[] = []): Transition => ({ state, effects });
const refuse = (state: RunState | null, status: 404 | 409, code: string, message: string): Transition => ({ state, effects: [], refused: { status, code, message } });

export function transition(state: RunState | null, event: RunEvent, now: number): Transition {
  if (event.type === "start") {
    if (state) return unchanged(state); // idempotent: a second start returns what runs
    const first = SEQUENCE[event.init.holdDuring ?? "switch"][0]!;
    const d = new Draft(initialState(event.init, first, now), now);
    d.record(phaseOf(d.s, first)!, "started");
    d.act();
    return d.close();
  }
  if (!state) return event.type === "result" || event.type === "alarm" || event.type === "promoted"
    ? unchanged(null)
    : refuse(null, 404, "not_found", "deployment not found");
  switch (event.type) {
    case "result": return onResult(state, event, now);
    case "alarm": return onAlarm(state, now);
    case "promoted": {
      if (state.step !== "audit" || state.status !== "in_progress") return unchanged(state);
      const d = new Draft(state, now);
      d.follow(STEPS.audit.done(d.s));
      return d.close();
    }
    case "promote": return onPromote(state, now);
    case "abort": return onAbort(state, event.by, now);
    case "rollback": return onRollback(state, event.by, now);
  }
}

function onResult(state: RunState, e: Extract<RunEvent, { type: "result" }>, now: number): Transition {
  // Stale (an earlier step's, a rollback overtook it) or duplicate answers change nothing.
  if (!state.awaiting || state.awaiting.commandId !== e.commandId || state.step === "done") return unchanged(state);
  const step = STEPS[state.step];
  if (step.kind !== "command") return unchanged(state);
  const d = new Draft(state, now);
  d.s.awaiting = null;
  d.follow(step.answer(d.s, e.ok, e.result, now));
  if (state.step === "drain" && e.ok) d.inFlight = d.s.metrics.inFlightAtDrain;
  return d.close();
}

function onAlarm(state: RunState, now: number): Transition {
  if (state.step === "done" || state.status !== "in_progress") return unchanged(state);
  const step = STEPS[state.step];
  if (state.awaiting) {
    if (now < state.awaiting.deadline) return unchanged(state, [{ type: "setAlarm", at: state.awaiting.deadline }]);
    if (step.kind !== "command") return unchanged(state);
    const d = new Draft(state, now);
    d.s.awaiting = null;
    d.follow(step.missed(d.s));
    return d.close();
  }
  if (state.waitUntil !== null && now < state.waitUntil) return unchanged(state, [{ type: "setAlarm", at: state.waitUntil }]);
  // The wait is over, a local step is retried, or a step that never got sent (the object stopped in between) is sent.
  const d = new Draft(state, now);
  d.act();
  return d.close();
}

function onPromote(state: RunState, now: number): Transition {
  if (state.status !== "paused") return refuse(state, 409, "not_paused", `deployment is ${state.status} at ${state.step}; only a paused deployment can be promoted`);
  const d = new Draft(state, now);
  d.s.status = "in_progress";
  d.goto(nextStep(d.s), "promoted by an operator");
  return d.close();
}

function onAbort(state: RunState, by: string | null, now: number): Transition {
  // A rollback that keeps failing is retried forever; a person may decide it is hopeless and take over.
  if (state.step === "rollback" && state.status === "in_progress" && state.attention) {
    const d = new Draft(state, now);
    d.giveUpRollback(by);
    return d.close();
  }
  if (state.status !== "paused") {
    return refuse(state, 409, "not_paused", `deployment is ${state.status} at ${state.step}; only a paused deployment can be aborted (use rollback after the switch)`);
  }
  const d = new Draft(state, now);
  d.rollBack({ code: "operator_abort", message: `aborted by an operator${by ? ` (user ${by})` : ""}` });
  return d.close();
}

/** Any time before blue is cleaned up, except while a step other than the analysis is in the bridge's hands. */
function onRollback(state: RunState, by: string | null, now: number): Transition {
  if (state.step === "rollback" && state.status === "in_progress" && !state.awaiting && state.waitUntil !== null) {
    // Between a rollback's attempts (someone fixed the bridge): the next attempt now, not after the backoff.
    const d = new Draft(state, now);
    d.s.waitUntil = null;
    d.act();
    return d.close();
  }
  if (state.step === "rollback" && state.awaiting && state.attempt > 0) {
    return refuse(state, 409, "step_in_progress", `the rollback's attempt ${state.attempt + 1} is running on the bridge; retry in a moment`);
  }
  if (!["in_progress", "paused"].includes(state.status) || state.step === "rollback" || state.step === "done") {
    return refuse(state, 409, "not_rollbackable",
      `deployment is ${state.status}${state.step === "rollback" ? " and already rolling back" : ""}; blue is gone after the rollback window`);
  }
  if (state.awaiting && state.step !== "analysis") {
    return refuse(state, 409, "step_in_progress", `the ${state.step} step is running on the bridge; retry in a moment`);
  }
  const d = new Draft(state, now);
  d.rollBack({ code: "operator_rollback", message: `rolled back by an operator${by ? ` (user ${by})` : ""}` });
  return d.close();
}

/** One transition being built: a copy of the state, and the effects in the order they must happen. */
class Draft {
  readonly s: RunState;
  /** In-flight count for this transition's progress event (blue's, when the drain answered). */
  inFlight = 0;
  private readonly emits: Effect[] = [];
  private readonly actions: Effect[] = [];
  private flush = false;

  constructor(state: RunState, private readonly now: number) {
    this.s = structuredClone(state);
  }

  /** Phase events first, then the row, then what acts on the world (its alarm, the command). */
  close(): Transition {
    settle(this.s, this.s.step === "done");
    this.emits.push({ type: "emit", event: { event: "deployment:progress", data: progressEvent(this.s, this.inFlight, this.now) } });
    return { state: this.s, effects: [...this.emits, { type: "project", flush: this.flush }, ...this.actions] };
  }

  record(phase: Phase, status: PhaseRecord["status"], detail?: string): void {
    const s = this.s;
    s.history.push({ phase, status, at: new Date(this.now).toISOString(), ...(detail ? { detail } : {}) });
    if (status === "started") s.phaseStartedAt = this.now;
    else if (status !== "paused") s.metrics.phaseMs[phase] = (s.metrics.phaseMs[phase] ?? 0) + (this.now - s.phaseStartedAt);
    this.emits.push({ type: "emit", event: { event: "deployment:phase", data: phaseEvent(s, phase, status, this.now, detail) } });
  }

  follow(lead: Lead): void {
    switch (lead.to) {
      case "next": return this.goto(nextStep(this.s));
      case "wait":
        this.s.waitUntil = this.now + lead.ms;
        return this.goto(nextStep(this.s));
      case "pause":
        this.s.status = "paused";
        this.s.attention = {
          state: "waiting", step: this.s.step as DeploymentStep, attempts: this.s.attempt + 1, maxAttempts: null,
          lastError: lead.lastError ?? null, nextAttemptAt: null, since: this.iso(this.now), message: lead.detail,
        };
        return this.record(phaseOf(this.s, this.s.step)!, "paused", lead.detail);
      case "retry": return this.retry(lead.why);
      case "rollback": return this.rollBack(lead.reason);
      case "finish": return this.finish(lead.status, lead.error, lead.detail);
    }
  }

  /** Schedules the current step's next attempt (a new command id) after its backoff, or follows its policy once they run out. */
  retry(why: string): void {
    const s = this.s;
    const step = s.step === "done" ? undefined : STEPS[s.step];
    const policy = step?.kind === "command" ? step.retry : undefined;
    if (!policy) throw new Error(`deployment ${s.id}: step ${s.step} has no retry policy`);
    const made = s.attempt + 1;
    if (policy.attempts !== null && made >= policy.attempts) return this.follow(policy.exhausted(s, why, made));
    const delayMs = Math.min(policy.maxMs, policy.baseMs * 2 ** (made - 1));
    s.attempt = made;
    s.waitUntil = this.now + delayMs;
    s.attention = {
      state: "retrying", step: s.step as DeploymentStep, attempts: made, maxAttempts: policy.attempts, lastError: why,
      nextAttemptAt: this.iso(s.waitUntil),
      // One condition from its first failure on: `since` stays while the same step keeps retrying.
      since: s.attention?.state === "retrying" && s.attention.step === s.step ? s.attention.since : this.iso(this.now),
      message: policy.explain(s, made, delayMs),
    };
    this.act();
  }

  private iso(at: number): string {
    return new Date(at).toISOString();
  }

  /** A person gives up a rollback that keeps failing: the deployment ends failed, and says what may still be held. */
  giveUpRollback(by: string | null): void {
    const s = this.s;
    const tried = s.attention ? `${s.attention.attempts} attempt(s), the last: ${s.attention.lastError ?? "unknown"}` : "its first attempt";
    this.finish("failed", {
      code: "rollback_failed",
      message: `the rollback was given up by an operator${by ? ` (user ${by})` : ""} after ${tried}; blue may not be serving`
        + `${s.error ? `; it was rolling back because ${s.error.message}` : ""}`,
    });
  }

  goto(step: Step, detail?: string): void {
    const from = phaseOf(this.s, this.s.step);
    const to = phaseOf(this.s, step);
    if (from && to !== from) this.record(from, "completed", detail);
    this.s.step = step;
    this.s.attempt = 0;
    this.s.attention = null;
    if (to && to !== from) this.record(to, "started");
    this.act();
  }

  /** Does what the current step needs: wait for its time, send its command, or do its local work. */
  act(): void {
    const s = this.s;
    if (s.status !== "in_progress" || s.awaiting || s.step === "done") return;
    if (s.waitUntil !== null && this.now < s.waitUntil) return void this.actions.push({ type: "setAlarm", at: s.waitUntil });
    s.waitUntil = null;
    const step = STEPS[s.step];
    if (step.kind === "local") {
      s.metrics.totalMs = this.now - Date.parse(s.createdAt);
      this.actions.push({ type: "setAlarm", at: this.now + step.retryMs }, { type: step.effect });
      return;
    }
    const timeoutMs = step.deadlineMs(s);
    const commandId = `d_${s.id}_${s.step}_${s.attempt}`;
    // Stored (with the state) before it is sent: a restarted object knows what it is waiting for.
    s.awaiting = { commandId, deadline: this.now + timeoutMs };
    this.actions.push({ type: "setAlarm", at: s.awaiting.deadline }, { type: "send", commandId, command: step.command, args: step.args(s), timeoutMs });
  }

  rollBack(reason: DeploymentError): void {
    const s = this.s;
    s.error = reason;
    s.status = "in_progress";
    const from = phaseOf(s, s.step);
    if (from && from !== "ROLLING_BACK") this.record(from, "failed", reason.message);
    s.step = "rollback";
    s.attempt = 0;
    s.attention = null;
    s.awaiting = null;
    s.waitUntil = null;
    this.record("ROLLING_BACK", "started", reason.message);
    this.act();
  }

  finish(status: "completed" | "rolled_back" | "failed", error: DeploymentError | null, detail?: string): void {
    const s = this.s;
    const phase = phaseOf(s, s.step);
    // Status first: the last phase event tells watchers how it ended.
    s.status = status;
    s.error = error;
    if (phase) this.record(phase, status === "failed" ? "failed" : "completed", status === "failed" ? error?.message : detail);
    s.step = "done";
    s.attention = null;
    s.awaiting = null;
    s.waitUntil = null;
    s.completedAt = new Date(this.now).toISOString();
    s.metrics.totalMs = this.now - Date.parse(s.createdAt);
    // The row says it is over before the audit log and the caller hear it: the next deployment of this instance checks the row.
    this.flush = true;
    if (status !== "completed") this.actions.push({ type: "audit", action: status === "rolled_back" ? "DEPLOYMENT_ROLLED_BACK" : "DEPLOYMENT_FAILED", reason: error });
    this.actions.push({ type: "clearAlarm" });
  }
}
