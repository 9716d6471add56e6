/**
 * The blue-green strategy as one table: for each step, the phase it belongs
 * to (per hold order), its deadline, the command it sends, and what the
 * command's typed answer leads to. transition.ts moves a deployment through
 * it; nothing else knows what a step does. A new strategy (canary, waves) is
 * a new table of the same shape.
 */
import type { z } from "zod";
import {
  commandErrorSchema, parseResult, type commandArgs, type CommandError, type CommandResult, type CommandType, type SmokeResult,
} from "../../protocol/commands.ts";
import type { DeploymentError, FailureCode, HoldDuring, Phase, TimedStep } from "../../protocol/deployments.ts";
import * as accounting from "./accounting.ts";
import { verifyChecks } from "./entries.ts";
import type { RunState, Step } from "./state.ts";

/** Where an answer (or a step's end) leads. */
export type Lead =
  | { to: "next" }
  /** The next step starts after `ms` (the analysis window, the rollback window). */
  | { to: "wait"; ms: number }
  /** Stop for a person: POST /promote or /abort. `lastError`: what could not be settled, for the view's attention. */
  | { to: "pause"; detail: string; lastError?: string }
  /** Try the step again under a new command id after a backoff, as its `retry` policy says (then `exhausted`). */
  | { to: "retry"; why: string }
  | { to: "rollback"; reason: DeploymentError }
  | { to: "finish"; status: "completed" | "rolled_back" | "failed"; error: DeploymentError | null; detail?: string };

const fail = (code: FailureCode, message: string): DeploymentError => ({ code, message });
const rollback = (code: FailureCode, message: string): Lead => ({ to: "rollback", reason: fail(code, message) });

/**
 * Two orders of the same steps. `switch` (the API's default, DESIGN §3):
 * green is started, deployed and verified while blue still serves, and blue
 * drains right before RESUME, so work is held only for the switch. `deploy`
 * (opt-in, for flows that must never run two versions at once): blue drains
 * first and work is held through DEPLOY and VERIFY; green is started inside
 * DRAIN before blue's gate closes, so its boot is not held.
 */
export const SEQUENCE: Record<HoldDuring, readonly Step[]> = {
  deploy: ["prepare", "drain", "deploy", "verify", "switch", "analysis", "audit", "cleanup"],
  switch: ["prepare", "deploy", "verify", "drain", "switch", "analysis", "audit", "cleanup"],
};

const both = (phase: Phase): Record<HoldDuring, Phase> => ({ deploy: phase, switch: phase });

type ArgsIn<T extends CommandType> = z.input<(typeof commandArgs)[T]>;

/**
 * How a step is tried again (a new command id, `d_{deployment}_{step}_{attempt}`): a check that could not
 * complete, a rollback that failed, a cleanup that did not stop blue.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included; null: until it succeeds or a person acts. */
  attempts: number | null;
  /** The wait before attempt n + 1 is baseMs · 2^(n − 1), at most maxMs. */
  baseMs: number;
  maxMs: number;
  /** What the attempts running out leads to (never for `attempts: null`). */
  exhausted(s: RunState, why: string, attempts: number): Lead;
  /** The view's attention message while it retries. */
  explain(s: RunState, attempts: number, delayMs: number): string;
}

interface CommandStepSpec<T extends CommandType> {
  phase: Record<HoldDuring, Phase>;
  command: T;
  retry?: RetryPolicy;
  /** How long the bridge has for it; the alarm carries the deadline and ClusterLink's outbox gets the same. */
  deadlineMs(s: RunState): number;
  args(s: RunState): ArgsIn<T>;
  /** An ok answer, parsed with the command's result schema. */
  done(s: RunState, result: CommandResult<T>, now: number): Lead;
  /** An error answer (default: roll back, `step_failed`). */
  failed?(s: RunState, error: CommandError): Lead;
  /** No answer by the deadline (default: roll back, `deadline_exceeded`). */
  missed?(s: RunState, deadlineMs: number): Lead;
  /** An ok answer that does not parse (default: roll back, `invalid_result`). */
  invalid?(s: RunState, message: string): Lead;
}

export interface CommandStep {
  kind: "command";
  phase: Record<HoldDuring, Phase>;
  command: CommandType;
  retry?: RetryPolicy;
  deadlineMs(s: RunState): number;
  args(s: RunState): Record<string, unknown>;
  /** What an answer leads to: parsed at this boundary, so a step reads typed fields only. */
  answer(s: RunState, ok: boolean, raw: unknown, now: number): Lead;
  missed(s: RunState): Lead;
}

/** A step the object does itself (AUDIT: the record in Postgres), retried by the alarm until it succeeds. */
export interface LocalStep {
  kind: "local";
  phase: Record<HoldDuring, Phase>;
  effect: "promote";
  retryMs: number;
  done(s: RunState): Lead;
}

/** Bridge codes (bridge/errors.ts) that mean green could not be started. */
const GREEN_FAILURES = new Set(["green_failed", "green_timeout", "start_failed", "start_timeout", "no_free_port"]);

const stepFailed = (step: string) => (_s: RunState, e: CommandError): Lead => rollback("step_failed", `${step} failed: ${e.message} (${e.code})`);

function commandStep<T extends CommandType>(name: string, spec: CommandStepSpec<T>): CommandStep {
  return {
    kind: "command", phase: spec.phase, command: spec.command, deadlineMs: spec.deadlineMs, ...(spec.retry ? { retry: spec.retry } : {}),
    // Bridges built before replyTo require deploymentId on deployment.*; today's drop it (test/unit/olderBridgeArgs.test.ts).
    args: (s) => ({ ...spec.args(s), deploymentId: s.id }),
    answer(s, ok, raw, now) {
      if (!ok) return (spec.failed ?? stepFailed(name))(s, commandErrorSchema.catch({ code: "internal", message: "no reason given" }).parse(raw ?? {}));
      const parsed = parseResult(spec.command, raw ?? {});
      if (!parsed.success) {
        const why = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "result"}: ${i.message}`).join("; ");
        const message = `${name} answered with a result that does not parse (${why}); the bridge and the control plane may run different versions`;
        return spec.invalid ? spec.invalid(s, message) : rollback("invalid_result", message);
      }
      return spec.done(s, parsed.data, now);
    },
    missed(s) {
      const ms = spec.deadlineMs(s);
      return spec.missed ? spec.missed(s, ms) : rollback("deadline_exceeded", `the bridge did not finish ${name} within ${ms / 1000} s`);
    },
  };
}

/** Blue and green, known from prepare on (every later step needs them). */
function runtimes(s: RunState): { blue: string; green: string } {
  if (!s.blue || !s.green) throw new Error(`deployment ${s.id}: step ${s.step} needs blue and green, which prepare sets`);
  return { blue: s.blue, green: s.green };
}

export function describeChecks(result: SmokeResult): string {
  const bad = result.checks.filter((c) => c.outcome !== "passed");
  return bad.length ? bad.map((c) => `${c.name} ${c.outcome} (${c.detail})`).join("; ") : result.verdict;
}

/** The drain may take `drainTimeoutMs` on the bridge (then stragglers finish on blue); this margin covers the round trip. */
const DRAIN_MARGIN_MS = 30_000;
const ROLLBACK_DEADLINE_MS = 180_000;

const scaleOf = (s: RunState) => s.timeouts?.scale ?? 1;
/** A step's deadline: the seconds the deployment gave it, else the table's, times its scale (docs/deployments.md, "Deadlines"). */
const deadline = (step: TimedStep, tableMs: number) => (s: RunState): number => s.timeouts?.stepMs[step] ?? Math.round(tableMs * scaleOf(s));
const drainMarginMs = (s: RunState) => Math.round(DRAIN_MARGIN_MS * scaleOf(s));

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * Bridge codes (bridge/errors.ts, and `driver_error` from older bridges) that say a check could not
 * run to a verdict (a timeout, the Admin API or the platform erring under load), not that green is
 * bad. Any other code (green `not_running`, `invalid_args`…) is a real failure.
 */
const CANNOT_DECIDE = new Set(["internal", "interrupted", "driver_error", "timeout", "node_red_error", "kubernetes_error", "report_undelivered", "bridge_state_error"]);

/** Argo Rollouts' rule: a check that cannot complete is inconclusive, never a failure. Retried, then a person decides. */
const CHECK_ATTEMPTS = 3;
const CHECK_RETRY: RetryPolicy = {
  attempts: CHECK_ATTEMPTS, baseMs: 5_000, maxMs: 60_000,
  exhausted: (s, why, n) => ({
    to: "pause", lastError: why,
    detail: `inconclusive: ${s.step} could not complete in ${n} attempts (last: ${why}); green was never shown to be bad, so nothing was rolled back: POST /promote or /abort`,
  }),
  explain: (s, n, ms) => `${s.step} could not complete (attempt ${n} of ${CHECK_ATTEMPTS}); trying again in ${seconds(ms)}. If it still cannot, the deployment pauses for a person; it does not roll back`,
};

const checkCannotComplete = (name: string) => (_s: RunState, e: CommandError): Lead =>
  CANNOT_DECIDE.has(e.code) ? { to: "retry", why: `${e.message} (${e.code})` } : rollback("step_failed", `${name} failed: ${e.message} (${e.code})`);
const checkMissed = (_s: RunState, ms: number): Lead => ({ to: "retry", why: `no answer within ${seconds(ms)}` });

/**
 * A switch that could not complete (the bridge or its data plane too slow to answer: a replay of thousands of
 * held messages on a loaded machine, issue 12 (j)) is sent again rather than rolled back: a re-sent switch
 * joins the hand-over under way or finds it done (bridge/routing/mqttFront.ts), and drains again first when the
 * hold was released meanwhile (bridge/deploy/blueGreen.ts), so giving up on a switch that is progressing only
 * adds a second hand-over. A real failure (green not running…) still rolls back at once.
 */
const SWITCH_ATTEMPTS = 4;
const SWITCH_RETRY: RetryPolicy = {
  attempts: SWITCH_ATTEMPTS, baseMs: 5_000, maxMs: 60_000,
  exhausted: (_s, why, n) => rollback("step_failed", `switch could not complete in ${n} attempts (last: ${why})`),
  explain: (_s, n, ms) => `the switch could not complete (attempt ${n} of ${SWITCH_ATTEMPTS}); sending it again in ${seconds(ms)} (a re-sent switch joins the one under way). If it still cannot, the deployment rolls back`,
};

/** A rollback is how held work gets back to a serving runtime: it is never given up by itself. */
const ROLLBACK_RETRY: RetryPolicy = {
  attempts: null, baseMs: 5_000, maxMs: 300_000,
  exhausted: (_s, why) => ({ to: "retry", why }),
  explain: (s, n, ms) => `the rollback has not succeeded yet (attempt ${n}); trying again in ${seconds(ms)}, until it does. `
    + `Until then blue may not be serving and held work waits on the bridge. Check the bridge of cluster ${s.clusterId}; `
    + `POST /rollback tries again now, POST /abort gives up (status failed, rollback_failed)`,
};

/** After the audit green serves and is the instance's version: a blue that will not stop is a leak to report, not a reason to roll back. */
const CLEANUP_ATTEMPTS = 3;
const CLEANUP_RETRY: RetryPolicy = {
  attempts: CLEANUP_ATTEMPTS, baseMs: 5_000, maxMs: 60_000,
  exhausted: (s, why, n) => ({
    to: "finish", status: "completed", error: null,
    detail: `green serves; blue ${s.blue} could not be stopped in ${n} attempts (last: ${why}): stop it by hand`,
  }),
  explain: (s, n, ms) => `blue ${s.blue} did not stop (attempt ${n} of ${CLEANUP_ATTEMPTS}); trying again in ${seconds(ms)}. Green serves either way`,
};

export const STEPS = {
  prepare: commandStep("prepare", {
    phase: { deploy: "DRAIN", switch: "DEPLOY" },
    command: "deployment.prepare",
    // Green's cold start: Node-RED boot + node package install (kubernetes: pod scheduling, greenReadyTimeoutMs 150 s).
    deadlineMs: deadline("prepare", 180_000),
    // Green starts on the target stack: the same as blue's for a flow change, another for a runtime upgrade.
    args: (s) => (s.toStack ? { stack: s.toStack } : {}),
    done(s, { blue, green, stack }) {
      s.blue = blue;
      s.green = green;
      if (stack) s.greenNodeRed = stack.nodeRed;
      // A bridge from before stacks ignores the target stack and starts green on its own runtime: not an upgrade.
      if (!stack && s.toStack && s.fromStack && s.toStack !== s.fromStack) {
        return rollback("stack_unsupported", `the bridge did not say which stack green runs, so it cannot be trusted to run ${s.toStack}; upgrade the bridge (blue keeps ${s.fromStack})`);
      }
      return { to: "next" };
    },
    failed(_s, e) {
      const message = `prepare failed: ${e.message} (${e.code})`;
      // A driver without blue-green never touched blue: there is nothing to roll back.
      if (e.code === "not_implemented") return { to: "finish", status: "failed", error: fail("not_implemented", message) };
      if (e.code === "unsupported") return rollback("stack_unsupported", message);
      // Green never became ready, whether it crashed or just did not answer in time: both are green_failed to an operator.
      return rollback(GREEN_FAILURES.has(e.code) ? "green_failed" : "step_failed", message);
    },
  }),

  drain: commandStep("drain", {
    phase: both("DRAIN"),
    command: "gate.set",
    deadlineMs: (s) => s.drainTimeoutMs + drainMarginMs(s),
    args: (s) => ({ mode: "drain", runtime: runtimes(s).blue, drainTimeoutMs: s.drainTimeoutMs }),
    done(s, r, now) {
      s.holdStartedAt = now;
      s.metrics.inFlightAtDrain = r.inFlight;
      s.metrics.stragglers = r.stragglers;
      s.metrics.drainMs = r.drainedInMs ?? 0;
      s.metrics.messagesHeld = r.heldHttp + r.heldMqtt;
      if (r.holdingSince) s.metrics.holdingSince = r.holdingSince;
      accounting.drained(s, r);
      return { to: "next" };
    },
    missed: (s, ms) => rollback("drain_timeout",
      `the bridge did not finish drain within ${ms / 1000} s (drainTimeoutSeconds ${s.drainTimeoutMs / 1000} s + ${drainMarginMs(s) / 1000} s margin); blue's stragglers stay on blue`),
  }),

  deploy: commandStep("deploy", {
    phase: both("DEPLOY"),
    command: "flows.deploy",
    deadlineMs: deadline("deploy", 90_000),
    args: (s) => ({ flows: s.flows, runtime: runtimes(s).green }),
    done(s, { rev }) {
      s.expectRev = rev;
      return { to: "next" };
    },
  }),

  verify: commandStep("verify", {
    phase: both("VERIFY"),
    command: "smoke.run",
    deadlineMs: deadline("verify", 90_000),
    args: (s) => ({ runtime: runtimes(s).green, kind: "verify", checks: verifyChecks(s.verify, s.flows), ...(s.expectRev ? { expectRev: s.expectRev } : {}) }),
    retry: CHECK_RETRY,
    done(s, result) {
      s.metrics.smoke = result;
      if (result.verdict === "passed") return { to: "next" };
      if (result.verdict === "failed") return rollback("smoke_failed", `smoke tests failed: ${describeChecks(result)}`);
      // A check that could not decide (no answer in time) is tried again; a pause that was asked for (verify.pause) is taken at once.
      const undecided = result.checks.filter((c) => c.outcome === "inconclusive" && c.name !== "pause");
      if (undecided.length) return { to: "retry", why: `inconclusive: ${undecided.map((c) => `${c.name} (${c.detail})`).join("; ")}` };
      return { to: "pause", detail: `inconclusive: ${describeChecks(result)}; POST /promote or /abort` };
    },
    failed: checkCannotComplete("verify"),
    missed: checkMissed,
  }),

  switch: commandStep("switch", {
    phase: both("RESUME"),
    command: "route.switch",
    deadlineMs: deadline("switch", 90_000),
    args: (s) => ({ from: runtimes(s).blue, to: runtimes(s).green }),
    retry: SWITCH_RETRY,
    failed: (_s, e) => (CANNOT_DECIDE.has(e.code) ? { to: "retry", why: `${e.message} (${e.code})` } : rollback("step_failed", `switch failed: ${e.message} (${e.code})`)),
    missed: (_s, ms) => ({ to: "retry", why: `no answer within ${seconds(ms)}` }),
    done(s, r, now) {
      accounting.handedOver(s, r, "switch");
      s.switched = true;
      s.metrics.messagesReplayed = r.replayed + r.bufferedDuringSwitch;
      s.metrics.messagesHeld = Math.max(s.metrics.messagesHeld, r.replayed + r.httpReleased);
      if (r.switchedAt) s.metrics.switchedAt = r.switchedAt;
      // As the bridge saw it (front hold → switch), else as this object saw it.
      s.metrics.holdMs = s.metrics.holdingSince && s.metrics.switchedAt
        ? Date.parse(s.metrics.switchedAt) - Date.parse(s.metrics.holdingSince)
        : s.holdStartedAt ? now - s.holdStartedAt : undefined;
      return { to: "wait", ms: s.analysisMs };
    },
  }),

  analysis: commandStep("analysis", {
    phase: both("RESUME"),
    command: "smoke.run",
    deadlineMs: deadline("analysis", 60_000),
    args: (s) => ({ runtime: runtimes(s).green, kind: "analysis", maxErrorRate: s.maxErrorRate }),
    retry: CHECK_RETRY,
    done(s, result) {
      s.metrics.analysis = result;
      accounting.analysed(s, result);
      if (result.verdict === "failed") {
        return rollback("analysis_failed", `post-switch analysis failed: error rate ${(result.errorRate ?? 0).toFixed(3)} above ${s.maxErrorRate}`);
      }
      if (result.verdict === "inconclusive") return { to: "retry", why: `inconclusive: ${describeChecks(result)}` };
      return { to: "next" };
    },
    // Green serves meanwhile: a timeout here says nothing about green, so it never rolls a healthy version back.
    failed: checkCannotComplete("analysis"),
    missed: checkMissed,
  }),

  audit: {
    kind: "local",
    phase: both("AUDIT"),
    effect: "promote",
    retryMs: 30_000,
    done: (s) => ({ to: "wait", ms: s.rollbackWindowMs }),
  },

  cleanup: commandStep("cleanup", {
    phase: both("CLEANUP"),
    command: "deployment.cleanup",
    deadlineMs: deadline("cleanup", 60_000),
    args: (s) => ({ runtime: runtimes(s).blue }),
    retry: CLEANUP_RETRY,
    done(s, r) {
      accounting.stopped(s, r.stragglers);
      return { to: "finish", status: "completed", error: null, detail: `blue ${s.blue} stopped after the rollback window` };
    },
    failed: (_s, e) => ({ to: "retry", why: `${e.message} (${e.code})` }),
    missed: (_s, ms) => ({ to: "retry", why: `no answer within ${seconds(ms)}` }),
  }),

  rollback: commandStep("rollback", {
    phase: both("ROLLING_BACK"),
    command: "deployment.rollback",
    deadlineMs: deadline("rollback", ROLLBACK_DEADLINE_MS),
    args: (s) => ({ blue: s.blue ?? s.instanceId, ...(s.green ? { green: s.green } : {}), switched: s.switched }),
    done(s, r) {
      accounting.handedOver(s, r, "rollback");
      accounting.stopped(s, r.greenStragglers);
      s.metrics.messagesReplayed += r.replayed;
      return { to: "finish", status: "rolled_back", error: s.error, detail: `blue serves again; ${r.replayed} held message(s) replayed to blue` };
    },
    // Ending `failed` here would leave held work with no one to replay it: a failed or unanswered rollback is tried again.
    retry: ROLLBACK_RETRY,
    failed: (_s, e) => ({ to: "retry", why: `rollback failed: ${e.message} (${e.code})` }),
    missed: (_s, ms) => ({ to: "retry", why: `rollback did not complete within ${seconds(ms)}` }),
    // The bridge said ok: blue serves again; only its counters are unreadable (a bridge of another version).
    invalid(s, message) {
      // Blue's hold was replayed (the bridge said ok): not stranded, but nobody can say how much.
      s.openHold = null;
      accounting.unreadable(s, "the rollback's counters (its result did not parse)");
      return { to: "finish", status: "rolled_back", error: s.error, detail: `blue serves again; ${message}, so what it replayed is not counted` };
    },
  }),
} satisfies Record<Exclude<Step, "done">, CommandStep | LocalStep>;

/** A state stored before hold orders existed has none: it ran the `deploy` order, and keeps it. */
const orderOf = (s: Pick<RunState, "holdDuring">): HoldDuring => s.holdDuring ?? "deploy";

export function phaseOf(s: Pick<RunState, "holdDuring">, step: Step): Phase | null {
  return step === "done" ? null : STEPS[step].phase[orderOf(s)];
}

export function nextStep(s: Pick<RunState, "holdDuring" | "step">): Step {
  const seq = SEQUENCE[orderOf(s)];
  return seq[seq.indexOf(s.step) + 1] ?? "done";
}

/** Share of the deployment done when a step starts: its place in the sequence. */
export function progressOf(s: Pick<RunState, "holdDuring" | "step">): number {
  if (s.step === "done") return 1;
  const seq = SEQUENCE[orderOf(s)];
  const i = seq.indexOf(s.step);
  return i < 0 ? 0.5 : Math.round((i / seq.length) * 100) / 100;
}

/** Each command step's deadline for this deployment, in seconds (the view's `timeouts`). */
export function deadlinesOf(s: RunState): Partial<Record<Step, number>> {
  const out: Partial<Record<Step, number>> = {};
  for (const [name, step] of Object.entries(STEPS) as Array<[Exclude<Step, "done">, CommandStep | LocalStep]>) {
    if (step.kind === "command") out[name] = step.deadlineMs(s) / 1000;
  }
  return out;
}
