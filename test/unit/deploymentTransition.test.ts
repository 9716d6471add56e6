/**
 * The deployment phase machine on its own (durable/deploymentRun/transition.ts
 * over the step table), with no Durable Object, bridge or database: events in,
 * state and effects out, time passed in. Both hold orders end to end, the
 * pause, every operator action, every failure code, every step's deadline, a
 * rollback that fails, answers that do not parse and answers that come late.
 */
import { describe, expect, it } from "vitest";
import { transition, type Effect, type RunEvent, type Transition } from "../../durable/deploymentRun/transition.ts";
import type { RunState } from "../../durable/deploymentRun/state.ts";
import { view } from "../../durable/deploymentRun/projection.ts";
import { resolveTimeouts, roundTripScale, workerTimeoutScale } from "../../core/deployments/timeouts.ts";
import { createDeploymentSchema, FAILURE_CODES, type DeploymentInit, type FailureCode, type HoldDuring } from "../../protocol/deployments.ts";

const T0 = Date.parse("2026-12-01T10:00:00.000Z");
const FLOWS = [{ id: "t1", type: "tab" }, { id: "g1", type: "redforge-gate", z: "t1" }];

function init(over: Partial<DeploymentInit> = {}): DeploymentInit {
  return {
    id: "00000000-0000-4000-8000-00000000d001", instanceId: "00000000-0000-4000-8000-00000000a001",
    clusterId: "00000000-0000-4000-8000-00000000c001", strategy: "blue-green", flows: FLOWS,
    fromVersionId: "00000000-0000-4000-8000-00000000f001", toVersionId: "00000000-0000-4000-8000-00000000f002",
    verify: { mqtt: true, failureLimit: 0, pause: false }, drainTimeoutMs: 30_000, analysisMs: 5_000, maxErrorRate: 0.05,
    rollbackWindowMs: 60_000, holdDuring: "deploy", createdBy: null, createdAt: new Date(T0).toISOString(), ...over,
  };
}

// What a bridge answers, field for field as bridge/deploy/blueGreen.ts returns it.
const PREPARED = { blue: "blue-rt", green: "green-rt", greenAdmin: "http://127.0.0.1:1" };
const DRAINED = {
  runtime: "blue-rt", mode: "drain", inFlight: 2, drainedInMs: 40, holdingSince: "2026-12-01T10:00:01.000Z",
  stragglers: 0, heldHttp: 1, heldMqtt: 4,
};
const DEPLOYED = { runtime: "green-rt", rev: "rev-2" };
const smoke = (verdict: "passed" | "failed" | "inconclusive") => ({
  runtime: "green-rt", verdict, checks: [{ name: "sample POST /work", outcome: verdict, detail: `scripted ${verdict}` }],
});
/** What the bridge answers when the deployment asked to pause after VERIFY (verify.pause): a pause, not an undecided check. */
const PAUSE = { runtime: "green-rt", verdict: "inconclusive", checks: [{ name: "pause", outcome: "inconclusive", detail: "the deployment asked to pause here: promote or abort" }] };
const SWITCHED = {
  from: "blue-rt", to: "green-rt", replayed: 4, bufferedDuringSwitch: 2, httpReleased: 1, heldHttpReleasedOnBlue: 0,
  switchedAt: "2026-12-01T10:00:01.250Z",
};
const analysis = (errorRate: number) => ({
  runtime: "green-rt", verdict: errorRate > 0.05 ? "failed" : "passed", errorRate, maxErrorRate: 0.05,
  entered: 100, expired: Math.round(errorRate * 100), serverErrors: 0, requests: 100,
  checks: [{ name: "error rate", outcome: errorRate > 0.05 ? "failed" : "passed", detail: `${errorRate * 100}%` }],
});
const CLEANED = { stopped: "blue-rt", stragglers: 0 };
const ROLLED_BACK = { from: "blue-rt", to: "blue-rt", replayed: 3, bufferedDuringSwitch: 0, httpReleased: 0, serving: "blue-rt", greenStopped: true, greenStragglers: 0 };

type Send = Extract<Effect, { type: "send" }>;

/** One deployment driven through transition(), the way the Durable Object does: state in, state and effects out. */
class Run {
  state: RunState | null = null;
  now = T0;
  /** Every effect so far, in order. */
  readonly log: Effect[] = [];
  last!: Transition;

  constructor(readonly holdDuring: HoldDuring = "deploy", over: Partial<DeploymentInit> = {}) {
    this.apply({ type: "start", init: init({ holdDuring, ...over }) });
  }

  get s(): RunState {
    return this.state!;
  }

  apply(event: RunEvent, afterMs = 10): Transition {
    this.now += afterMs;
    const before = structuredClone(this.state);
    this.last = transition(this.state, event, this.now);
    expect(this.state, "transition() never changes the state it is given").toEqual(before);
    this.state = this.last.state;
    this.log.push(...this.last.effects);
    return this.last;
  }

  /** Commands sent, in order. */
  get sent(): Send[] {
    return this.log.filter((e): e is Send => e.type === "send");
  }

  /** The command the deployment waits for now. */
  get pending(): Send {
    const id = this.s.awaiting?.commandId;
    const cmd = this.sent.find((c) => c.commandId === id);
    if (!cmd) throw new Error(`nothing awaited at ${this.s.step} (${this.s.status})`);
    return cmd;
  }

  /** The bridge answers the awaited command; `type` guards that it is the command we think. */
  answer(type: string, result: unknown, ok = true): Transition {
    const cmd = this.pending;
    expect(cmd.command).toBe(type);
    return this.apply({ type: "result", commandId: cmd.commandId, ok, result });
  }

  fail(type: string, code: string, message: string): Transition {
    return this.answer(type, { code, message }, false);
  }

  /** The alarm fires at `at` (epoch ms). */
  alarmAt(at: number): Transition {
    this.now = at;
    return this.apply({ type: "alarm" }, 0);
  }

  /** Lets the current wait (analysis or rollback window) end: the alarm fires at its time. */
  endWait(): Transition {
    expect(this.s.waitUntil).not.toBeNull();
    return this.alarmAt(this.s.waitUntil!);
  }

  /** What the Durable Object does after a `promote` effect succeeds. */
  promoted(): Transition {
    expect(this.last.effects.some((e) => e.type === "promote")).toBe(true);
    return this.apply({ type: "promoted" });
  }

  phases(status: string): string[] {
    return this.s.history.filter((h) => h.status === status).map((h) => h.phase);
  }
}

/** Answers every step up to (not including) `stop`, in the run's hold order. */
function runUntil(run: Run, stop: "drain" | "deploy" | "verify" | "switch" | "analysis" | "cleanup" | "end"): void {
  const order = run.holdDuring === "deploy"
    ? ["prepare", "drain", "deploy", "verify", "switch", "analysis", "cleanup"]
    : ["prepare", "deploy", "verify", "drain", "switch", "analysis", "cleanup"];
  for (const step of order) {
    if (step === stop) return;
    switch (step) {
      case "prepare": run.answer("deployment.prepare", PREPARED); break;
      case "drain": run.answer("gate.set", DRAINED); break;
      case "deploy": run.answer("flows.deploy", DEPLOYED); break;
      case "verify": run.answer("smoke.run", smoke("passed")); break;
      case "switch": run.answer("route.switch", SWITCHED); run.endWait(); break;
      case "analysis": run.answer("smoke.run", analysis(0)); run.promoted(); run.endWait(); break;
      case "cleanup": run.answer("deployment.cleanup", CLEANED); break;
    }
  }
}

const ORDERS: Array<{ holdDuring: HoldDuring; commands: string[]; phases: string[] }> = [
  {
    holdDuring: "deploy",
    commands: ["deployment.prepare", "gate.set", "flows.deploy", "smoke.run", "route.switch", "smoke.run", "deployment.cleanup"],
    phases: ["DRAIN", "DEPLOY", "VERIFY", "RESUME", "AUDIT", "CLEANUP"],
  },
  {
    holdDuring: "switch",
    commands: ["deployment.prepare", "flows.deploy", "smoke.run", "gate.set", "route.switch", "smoke.run", "deployment.cleanup"],
    phases: ["DEPLOY", "VERIFY", "DRAIN", "RESUME", "AUDIT", "CLEANUP"],
  },
];

describe.each(ORDERS)("holdDuring \"$holdDuring\"", ({ holdDuring, commands, phases }) => {
  it("runs every step in order to completed, sending each command with its arguments", () => {
    const run = new Run(holdDuring);
    expect(run.s).toMatchObject({ status: "in_progress", step: "prepare" });
    expect(run.last.effects.map((e) => e.type)).toContain("send");
    runUntil(run, "end");

    expect(run.s).toMatchObject({ status: "completed", error: null, step: "done", switched: true, blue: "blue-rt", green: "green-rt" });
    expect(run.sent.map((c) => c.command)).toEqual(commands);
    const byType = (t: string, n = 0) => run.sent.filter((c) => c.command === t)[n]!.args;
    // deploymentId: for bridges built before replyTo (test/unit/olderBridgeArgs.test.ts).
    const deploymentId = run.s.id;
    expect(byType("deployment.prepare")).toEqual({ deploymentId });
    expect(byType("gate.set")).toEqual({ mode: "drain", runtime: "blue-rt", drainTimeoutMs: 30_000, deploymentId });
    expect(byType("flows.deploy")).toEqual({ flows: FLOWS, runtime: "green-rt", deploymentId });
    expect(byType("smoke.run", 0)).toMatchObject({ runtime: "green-rt", kind: "verify", expectRev: "rev-2", deploymentId });
    expect(byType("route.switch")).toEqual({ from: "blue-rt", to: "green-rt", deploymentId });
    expect(byType("smoke.run", 1)).toEqual({ runtime: "green-rt", kind: "analysis", maxErrorRate: 0.05, deploymentId });
    expect(byType("deployment.cleanup")).toEqual({ runtime: "blue-rt", deploymentId });
    expect(run.sent.map((c) => c.commandId)).toContain(`d_${run.s.id}_drain_0`);

    expect(run.phases("started")).toEqual(phases);
    expect(run.phases("completed")).toEqual(phases);
    expect(run.s.metrics).toMatchObject({
      inFlightAtDrain: 2, stragglers: 0, drainMs: 40, messagesHeld: 5, messagesReplayed: 6, messagesLost: 0,
      holdingSince: DRAINED.holdingSince, switchedAt: SWITCHED.switchedAt, holdMs: 250,
      smoke: { verdict: "passed" }, analysis: { verdict: "passed", errorRate: 0 },
    });
    // The end: the row first (flushed), no failure in the audit log, no alarm left.
    const end = run.last.effects.map((e) => e.type);
    expect(end).toContain("clearAlarm");
    expect(run.last.effects).toContainEqual({ type: "project", flush: true });
    expect(run.log.some((e) => e.type === "audit")).toBe(false);
    expect(run.last.effects).toContainEqual({ type: "emit", event: { event: "deployment:phase", data: expect.objectContaining({ phase: "CLEANUP", status: "completed", deploymentStatus: "completed" }) } });
  });

  it("waits analysisSeconds after the switch and rollbackWindowSeconds after the audit, by alarm", () => {
    const run = new Run(holdDuring);
    runUntil(run, "switch");
    const switchedAt = run.now + 10;
    run.answer("route.switch", SWITCHED);
    expect(run.last.effects).toContainEqual({ type: "setAlarm", at: switchedAt + 5_000 });
    expect(run.last.effects.some((e) => e.type === "send")).toBe(false);
    // An early alarm only re-arms.
    run.alarmAt(switchedAt + 1_000);
    expect(run.last.effects).toEqual([{ type: "setAlarm", at: switchedAt + 5_000 }]);
    run.endWait();
    expect(run.pending.args).toMatchObject({ kind: "analysis" });
    run.answer("smoke.run", analysis(0.01));
    expect(run.s.step).toBe("audit");
    run.promoted();
    expect(run.s.waitUntil).toBe(run.now + 60_000);
    expect(run.last.effects.some((e) => e.type === "send")).toBe(false);
    run.endWait();
    expect(run.pending.command).toBe("deployment.cleanup");
  });

  it("an undecided smoke check is retried under new command ids, then pauses for a person; promote goes on with the next step", () => {
    const run = new Run(holdDuring);
    runUntil(run, "verify");
    run.answer("smoke.run", smoke("inconclusive"));
    // Not a verdict: tried again after a backoff, as d_{deployment}_verify_1, with the same arguments.
    expect(run.s).toMatchObject({ status: "in_progress", step: "verify", attempt: 1, awaiting: null, waitUntil: run.now + 5_000 });
    expect(run.s.attention).toMatchObject({ state: "retrying", step: "verify", attempts: 1, maxAttempts: 3, lastError: expect.stringMatching(/^inconclusive: sample POST \/work/) });
    run.endWait();
    expect(run.pending.commandId).toBe(`d_${run.s.id}_verify_1`);
    expect(run.pending.args).toEqual(run.sent.filter((c) => c.command === "smoke.run")[0]!.args);
    run.answer("smoke.run", smoke("inconclusive"));
    expect(run.s.waitUntil).toBe(run.now + 10_000); // backoff doubles
    run.endWait();
    expect(run.pending.commandId).toBe(`d_${run.s.id}_verify_2`);
    run.answer("smoke.run", smoke("inconclusive"));
    expect(run.s).toMatchObject({ status: "paused", awaiting: null });
    expect(run.sent.some((c) => c.command === "deployment.rollback")).toBe(false);
    expect(run.s.attention).toMatchObject({ state: "waiting", step: "verify", attempts: 3, nextAttemptAt: null });
    expect(run.s.history.at(-1)).toMatchObject({ phase: "VERIFY", status: "paused", detail: expect.stringMatching(/inconclusive.*3 attempts.*never shown to be bad.*POST \/promote or \/abort/) });
    expect(run.last.effects.some((e) => e.type === "send")).toBe(false);
    // Alarms change nothing while paused.
    expect(run.alarmAt(run.now + 600_000).effects).toEqual([]);

    run.apply({ type: "promote", by: "u1" });
    expect(run.s.status).toBe("in_progress");
    expect(run.pending.command).toBe(holdDuring === "deploy" ? "route.switch" : "gate.set");
    expect(run.s.history.filter((h) => h.phase === "VERIFY" && h.status === "completed")).toEqual([
      expect.objectContaining({ detail: "promoted by an operator" }),
    ]);
    if (holdDuring === "switch") run.answer("gate.set", DRAINED);
    run.answer("route.switch", SWITCHED);
    run.endWait();
    run.answer("smoke.run", analysis(0));
    run.promoted();
    run.endWait();
    run.answer("deployment.cleanup", CLEANED);
    expect(run.s.status).toBe("completed");
  });

  it("a deployment asked to pause (verify.pause) pauses at once, with nothing to retry", () => {
    const run = new Run(holdDuring, { verify: { mqtt: true, failureLimit: 0, pause: true } });
    runUntil(run, "verify");
    expect(run.pending.args).toMatchObject({ checks: { pause: true } });
    run.answer("smoke.run", PAUSE);
    expect(run.s).toMatchObject({ status: "paused", attempt: 0 });
    expect(run.s.attention).toMatchObject({ state: "waiting", step: "verify", attempts: 1, lastError: null });
    expect(run.s.history.at(-1)).toMatchObject({ phase: "VERIFY", status: "paused", detail: expect.stringMatching(/inconclusive: pause inconclusive.*POST \/promote or \/abort/) });
    run.apply({ type: "promote", by: "u1" });
    expect(run.s.attention).toBeNull();
  });

  it("abort while paused rolls back to blue (operator_abort), replaying blue's hold queue into blue", () => {
    const run = new Run(holdDuring);
    runUntil(run, "verify");
    run.answer("smoke.run", PAUSE);
    run.apply({ type: "abort", by: "u1" });
    expect(run.pending).toMatchObject({ command: "deployment.rollback", args: { blue: "blue-rt", green: "green-rt", switched: false } });
    expect(run.s.history.at(-1)).toMatchObject({ phase: "ROLLING_BACK", status: "started" });
    run.answer("deployment.rollback", ROLLED_BACK);
    expect(run.s).toMatchObject({ status: "rolled_back", error: { code: "operator_abort", message: "aborted by an operator (user u1)" } });
    expect(run.s.metrics.messagesReplayed).toBe(3);
    expect(run.log).toContainEqual({ type: "audit", action: "DEPLOYMENT_ROLLED_BACK", reason: run.s.error });
  });

  it("operator rollback before the switch (paused at VERIFY) moves nothing: switched false", () => {
    const run = new Run(holdDuring);
    runUntil(run, "verify");
    run.answer("smoke.run", PAUSE);
    run.apply({ type: "rollback", by: null });
    expect(run.pending.args).toMatchObject({ switched: false });
    run.answer("deployment.rollback", ROLLED_BACK);
    expect(run.s).toMatchObject({ status: "rolled_back", error: { code: "operator_rollback", message: "rolled back by an operator" } });
  });

  it("operator rollback after the switch brings blue back (switched true), during the analysis or in the rollback window", () => {
    const during = new Run(holdDuring);
    runUntil(during, "analysis");
    expect(during.pending.args).toMatchObject({ kind: "analysis" });
    during.apply({ type: "rollback", by: "u2" });
    expect(during.pending).toMatchObject({ command: "deployment.rollback", args: { blue: "blue-rt", green: "green-rt", switched: true } });
    // The analysis answer that comes after is stale: the rollback owns the deployment now.
    const analysisId = during.sent.filter((c) => c.command === "smoke.run")[1]!.commandId;
    expect(during.apply({ type: "result", commandId: analysisId, ok: true, result: analysis(0) }).effects).toEqual([]);
    during.answer("deployment.rollback", { ...ROLLED_BACK, from: "green-rt", replayed: 9 });
    expect(during.s).toMatchObject({ status: "rolled_back", error: { code: "operator_rollback" } });
    expect(during.s.metrics.messagesReplayed).toBe(6 + 9);

    const window = new Run(holdDuring);
    runUntil(window, "analysis");
    window.answer("smoke.run", analysis(0));
    window.promoted();
    expect(window.s).toMatchObject({ step: "cleanup", status: "in_progress" });
    expect(window.s.history.at(-1)).toMatchObject({ phase: "CLEANUP", status: "started" });
    window.apply({ type: "rollback", by: null });
    expect(window.s.waitUntil).toBeNull();
    expect(window.pending.args).toMatchObject({ switched: true });
    expect(window.s.history.map((h) => `${h.phase}:${h.status}`)).toEqual(expect.arrayContaining(["CLEANUP:failed", "ROLLING_BACK:started"]));
  });
});

describe("VERIFY's default checks", () => {
  it("with no verify.http, the smoke.run sent lists every gated http in entry of the new flows (verify.entries false: none)", () => {
    const flows = [
      { id: "t1", type: "tab" }, { id: "in", type: "http in", z: "t1", url: "/work", method: "post", wires: [["g"]] },
      { id: "g", type: "redforge-gate", z: "t1", wires: [["out"]] }, { id: "out", type: "http response", z: "t1", wires: [] },
    ];
    const run = new Run("switch", { flows });
    runUntil(run, "verify");
    expect(run.pending.args).toMatchObject({ kind: "verify", checks: { entries: [{ method: "POST", path: "/work" }], mqtt: true } });
    const optedOut = new Run("switch", { flows, verify: { mqtt: true, failureLimit: 0, pause: false, entries: false } });
    runUntil(optedOut, "verify");
    expect(optedOut.pending.args.checks).toEqual({ mqtt: true, failureLimit: 0, pause: false });
  });
});

describe("the default hold order", () => {
  it("the API defaults holdDuring to \"switch\" (DESIGN §3); \"deploy\" is opt-in", () => {
    const body = { instanceId: init().instanceId, flows: FLOWS };
    expect(createDeploymentSchema.parse(body).holdDuring).toBe("switch");
    expect(createDeploymentSchema.parse({ ...body, holdDuring: "deploy" }).holdDuring).toBe("deploy");
  });

  it("a start without a hold order runs DEPLOY → VERIFY → DRAIN, and the stored state says so", () => {
    const { holdDuring: _omitted, ...rest } = init();
    const t = transition(null, { type: "start", init: rest }, T0);
    expect(t.state).toMatchObject({ holdDuring: "switch", step: "prepare" });
    expect(t.state!.history[0]).toMatchObject({ phase: "DEPLOY", status: "started" });
  });

  it("a state stored before hold orders existed (none in it) keeps the deploy order it started with", () => {
    const run = new Run("deploy");
    const { holdDuring: _omitted, ...stored } = run.s;
    run.state = stored as RunState;
    run.answer("deployment.prepare", PREPARED);
    expect(run.pending.command).toBe("gate.set");
  });
});

describe("operator actions that do not apply", () => {
  it("rollback while a step runs on the bridge is step_in_progress; promote or abort when not paused is not_paused", () => {
    const run = new Run();
    run.answer("deployment.prepare", PREPARED);
    const state = run.state;
    const refused = run.apply({ type: "rollback", by: null });
    expect(refused.refused).toMatchObject({ status: 409, code: "step_in_progress" });
    expect(refused.effects).toEqual([]);
    expect(run.state).toBe(state);
    expect(run.apply({ type: "promote", by: null }).refused).toMatchObject({ status: 409, code: "not_paused" });
    expect(run.apply({ type: "abort", by: null }).refused).toMatchObject({ status: 409, code: "not_paused", message: expect.stringMatching(/use rollback after the switch/) });
  });

  it("rollback once it is over (or already rolling back) is not_rollbackable; an unknown deployment is not_found", () => {
    const done = new Run();
    runUntil(done, "end");
    expect(done.apply({ type: "rollback", by: null }).refused).toMatchObject({ status: 409, code: "not_rollbackable" });

    const rolling = new Run();
    runUntil(rolling, "verify");
    rolling.answer("smoke.run", smoke("failed"));
    expect(rolling.apply({ type: "rollback", by: null }).refused).toMatchObject({ code: "not_rollbackable", message: expect.stringMatching(/already rolling back/) });

    expect(transition(null, { type: "promote", by: null }, T0).refused).toMatchObject({ status: 404, code: "not_found" });
    expect(transition(null, { type: "alarm" }, T0)).toEqual({ state: null, effects: [] });
  });

  it("start is idempotent: a second start changes nothing and sends nothing", () => {
    const run = new Run();
    const state = run.state;
    expect(run.apply({ type: "start", init: init() })).toEqual({ state, effects: [] });
  });
});

/** One scenario per failure code the machine can reach, and what the operator then sees. */
const FAILURES: Array<{ code: FailureCode; status: "rolled_back" | "failed"; message: RegExp; rollsBack: boolean; switched?: boolean; scenario(run: Run): void }> = [
  {
    code: "smoke_failed", status: "rolled_back", rollsBack: true, switched: false, message: /^smoke tests failed: sample POST \/work failed \(scripted failed\)$/,
    scenario: (run) => { runUntil(run, "verify"); run.answer("smoke.run", smoke("failed")); },
  },
  {
    code: "green_failed", status: "rolled_back", rollsBack: true, switched: false, message: /^prepare failed: green pod CrashLoopBackOff \(green_failed\)$/,
    scenario: (run) => run.fail("deployment.prepare", "green_failed", "green pod CrashLoopBackOff"),
  },
  {
    code: "stack_unsupported", status: "rolled_back", rollsBack: true, switched: false, message: /^prepare failed: stack 5\.0 is not installed on this bridge .* \(unsupported\)$/,
    scenario: (run) => run.fail("deployment.prepare", "unsupported", "stack 5.0 is not installed on this bridge (installed: 4.1)"),
  },
  {
    code: "not_implemented", status: "failed", rollsBack: false, message: /not implemented by the kubernetes driver/,
    scenario: (run) => run.fail("deployment.prepare", "not_implemented", "deployment.prepare: blue-green deployments are not implemented by the kubernetes driver yet"),
  },
  {
    code: "step_failed", status: "rolled_back", rollsBack: true, switched: false, message: /^deploy failed: rev mismatch \(flows_conflict\)$/,
    scenario: (run) => { runUntil(run, "deploy"); run.fail("flows.deploy", "flows_conflict", "rev mismatch"); },
  },
  {
    code: "analysis_failed", status: "rolled_back", rollsBack: true, switched: true, message: /^post-switch analysis failed: error rate 0\.200 above 0\.05$/,
    scenario: (run) => { runUntil(run, "analysis"); run.answer("smoke.run", analysis(0.2)); },
  },
  {
    code: "invalid_result", status: "rolled_back", rollsBack: true, switched: false, message: /drain answered with a result that does not parse \(inFlight: .*\)/,
    scenario: (run) => { runUntil(run, "drain"); run.answer("gate.set", { ...DRAINED, inFlight: "lots" }); },
  },
  {
    code: "deadline_exceeded", status: "rolled_back", rollsBack: true, switched: false, message: /^the bridge did not finish deploy within 90 s$/,
    scenario: (run) => { runUntil(run, "deploy"); run.alarmAt(run.s.awaiting!.deadline); },
  },
  {
    code: "drain_timeout", status: "rolled_back", rollsBack: true, switched: false,
    message: /^the bridge did not finish drain within 35 s \(drainTimeoutSeconds 5 s \+ 30 s margin\)/,
    scenario: (run) => { runUntil(run, "drain"); run.alarmAt(run.s.awaiting!.deadline); },
  },
  {
    code: "operator_abort", status: "rolled_back", rollsBack: true, switched: false, message: /^aborted by an operator \(user u9\)$/,
    scenario: (run) => { runUntil(run, "verify"); run.answer("smoke.run", PAUSE); run.apply({ type: "abort", by: "u9" }); },
  },
  {
    code: "operator_rollback", status: "rolled_back", rollsBack: true, switched: true, message: /^rolled back by an operator$/,
    scenario: (run) => { runUntil(run, "analysis"); run.apply({ type: "rollback", by: null }); },
  },
  {
    code: "rollback_failed", status: "failed", rollsBack: true, switched: false,
    message: /^the rollback was given up by an operator \(user u3\) after 1 attempt\(s\), the last: rollback failed: blue is not running \(not_running\); blue may not be serving; it was rolling back because smoke tests failed/,
    scenario: (run) => {
      runUntil(run, "verify");
      run.answer("smoke.run", smoke("failed"));
      run.fail("deployment.rollback", "not_running", "blue is not running");
      run.apply({ type: "abort", by: "u3" });
    },
  },
];

describe("failure codes", () => {
  it("every code the phase machine can reach has a scenario here (start_failed and start_interrupted are the API's, before the machine runs)", () => {
    expect(new Set(FAILURES.map((f) => f.code))).toEqual(new Set(FAILURE_CODES.filter((c) => c !== "start_failed" && c !== "start_interrupted")));
  });

  it.each(FAILURES)("$code: status $status, error.code and message for the operator", ({ code, status, message, rollsBack, switched, scenario }) => {
    const run = new Run("deploy", { drainTimeoutMs: 5_000 });
    scenario(run);
    const rollback = run.sent.find((c) => c.command === "deployment.rollback");
    expect(Boolean(rollback)).toBe(rollsBack);
    if (rollback && switched !== undefined) expect(rollback.args).toMatchObject({ switched });
    // A rollback that is still running finishes as rolled_back with the reason it started with.
    if (run.s.step === "rollback") run.answer("deployment.rollback", ROLLED_BACK);
    expect(run.s.status).toBe(status);
    expect(run.s.error).toEqual({ code, message: expect.stringMatching(message) });
    expect(run.s.completedAt).not.toBeNull();
    expect(run.log).toContainEqual({ type: "audit", action: status === "failed" ? "DEPLOYMENT_FAILED" : "DEPLOYMENT_ROLLED_BACK", reason: run.s.error });
    // The history says where it failed, with the same words.
    expect(run.s.history.some((h) => h.status === "failed" && h.detail === run.s.error!.message)).toBe(true);
  });

  it("a runtime upgrade sends the target stack with prepare; a bridge that does not say which stack green runs is not trusted with it", () => {
    const upgrade = { fromStack: "4.1", toStack: "5.0" };
    const ok = new Run("deploy", upgrade);
    expect(ok.sent.find((c) => c.command === "deployment.prepare")!.args).toMatchObject({ stack: "5.0" });
    ok.answer("deployment.prepare", { ...PREPARED, stack: { id: "5.0", nodeRed: "5.0.7" } });
    expect(ok.s).toMatchObject({ step: "drain", greenNodeRed: "5.0.7" });

    const older = new Run("deploy", upgrade);
    older.answer("deployment.prepare", PREPARED);
    older.answer("deployment.rollback", ROLLED_BACK);
    expect(older.s.status).toBe("rolled_back");
    expect(older.s.error).toMatchObject({ code: "stack_unsupported", message: expect.stringMatching(/cannot be trusted to run 5\.0.*blue keeps 4\.1/) });
  });

  it.each(["green_timeout", "start_failed", "no_free_port"])("a green that never came up (bridge code %s) reads green_failed, not step_failed", (bridgeCode) => {
    const run = new Run("switch");
    run.fail("deployment.prepare", bridgeCode, "green did not answer /healthz in time");
    run.answer("deployment.rollback", ROLLED_BACK);
    expect(run.s.status).toBe("rolled_back");
    expect(run.s.error).toEqual({ code: "green_failed", message: `prepare failed: green did not answer /healthz in time (${bridgeCode})` });
  });
});

describe("a switch that cannot complete is sent again, not rolled back (issue 12 (j): a replay of thousands of held messages)", () => {
  it("unanswered for 90 s or answered with an error that is not a verdict: sent again under a new id, then completes", () => {
    const run = new Run();
    runUntil(run, "switch");
    expect(run.pending).toMatchObject({ command: "route.switch", timeoutMs: 90_000 });
    run.alarmAt(run.s.awaiting!.deadline);
    expect(run.s).toMatchObject({ step: "switch", error: null, attention: { state: "retrying", step: "switch", attempts: 1 } });
    run.endWait();
    expect(run.pending.commandId).toMatch(/_switch_1$/);
    run.fail("route.switch", "internal", "data plane did not answer /call within 30000 ms");
    expect(run.s).toMatchObject({ step: "switch", error: null, attention: { state: "retrying", attempts: 2 } });
    run.endWait();
    run.answer("route.switch", SWITCHED);
    expect(run.s).toMatchObject({ switched: true, step: "analysis", attention: null, error: null });
  });

  it("rolls back once its attempts run out, and at once on a real failure", () => {
    const run = new Run();
    runUntil(run, "switch");
    for (let i = 0; i < 3; i++) {
      run.fail("route.switch", "timeout", "slow");
      run.endWait();
    }
    run.fail("route.switch", "timeout", "slow");
    expect(run.s.step).toBe("rollback");
    expect(run.s.error).toEqual({ code: "step_failed", message: "switch could not complete in 4 attempts (last: slow (timeout))" });
    const real = new Run();
    runUntil(real, "switch");
    real.fail("route.switch", "not_running", "green is gone");
    expect(real.s.error).toEqual({ code: "step_failed", message: "switch failed: green is gone (not_running)" });
  });
});

describe("deadlines", () => {
  const STEPS: Array<{ stop: Parameters<typeof runUntil>[1]; command: string; ms: number }> = [
    { stop: "drain", command: "gate.set", ms: 30_000 + 30_000 },
    { stop: "deploy", command: "flows.deploy", ms: 90_000 },
  ];

  it("prepare's deadline (180 s) is in the command sent to the cluster link and in the alarm", () => {
    const run = new Run();
    expect(run.pending).toMatchObject({ command: "deployment.prepare", timeoutMs: 180_000 });
    expect(run.last.effects).toContainEqual({ type: "setAlarm", at: run.s.awaiting!.deadline });
    run.alarmAt(run.s.awaiting!.deadline);
    expect(run.s.error).toEqual({ code: "deadline_exceeded", message: "the bridge did not finish prepare within 180 s" });
    expect(run.pending.args).toEqual({ blue: run.s.instanceId, switched: false, deploymentId: run.s.id });
  });

  it.each(STEPS)("$command ($stop) unanswered for $ms ms rolls back; one alarm earlier only re-arms", ({ stop, command, ms }) => {
    const run = new Run();
    runUntil(run, stop);
    expect(run.pending).toMatchObject({ command, timeoutMs: ms });
    const deadline = run.s.awaiting!.deadline;
    expect(run.last.effects).toContainEqual({ type: "setAlarm", at: deadline });
    expect(run.alarmAt(deadline - 1).effects).toEqual([{ type: "setAlarm", at: deadline }]);
    run.alarmAt(deadline);
    expect(run.s.error!.code).toBe(stop === "drain" ? "drain_timeout" : "deadline_exceeded");
    expect(run.pending.args).toMatchObject({ switched: false });
  });

  it("a rollback the bridge never answers is tried again, with capped backoff, for as long as it takes: never failed with work held", () => {
    const run = new Run();
    runUntil(run, "verify");
    run.answer("smoke.run", smoke("failed"));
    expect(run.pending.timeoutMs).toBe(180_000);
    const waits: number[] = [];
    for (let n = 1; n <= 9; n++) {
      run.alarmAt(run.s.awaiting!.deadline);
      expect(run.s).toMatchObject({ status: "in_progress", step: "rollback", attempt: n, error: { code: "smoke_failed" } });
      expect(run.s.attention).toMatchObject({
        state: "retrying", step: "rollback", attempts: n, maxAttempts: null, lastError: "rollback did not complete within 180 s",
        nextAttemptAt: new Date(run.s.waitUntil!).toISOString(), message: expect.stringMatching(/POST \/rollback tries again now, POST \/abort gives up/),
      });
      waits.push(run.s.waitUntil! - run.now);
      run.endWait();
      expect(run.pending).toMatchObject({ command: "deployment.rollback", commandId: `d_${run.s.id}_rollback_${n}` });
    }
    expect(waits).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    expect(run.s.history.filter((h) => h.phase === "ROLLING_BACK").map((h) => h.status)).toEqual(["started"]);
    // The bridge comes back: the next attempt settles it.
    run.answer("deployment.rollback", ROLLED_BACK);
    expect(run.s).toMatchObject({ status: "rolled_back", attention: null, error: { code: "smoke_failed" } });
  });

  it("a rollback the bridge fails is retried the same way; POST /rollback between attempts tries at once, during one is step_in_progress", () => {
    const run = new Run("switch");
    runUntil(run, "verify");
    run.answer("smoke.run", smoke("failed"));
    run.fail("deployment.rollback", "internal", "end-of-hold marker not back within 30000 ms");
    expect(run.s.attention).toMatchObject({ state: "retrying", attempts: 1, lastError: "rollback failed: end-of-hold marker not back within 30000 ms (internal)" });
    expect(run.s.awaiting).toBeNull(); // nothing in flight until the backoff ends
    run.apply({ type: "rollback", by: "u1" });
    expect(run.pending.commandId).toBe(`d_${run.s.id}_rollback_1`);
    expect(run.s.waitUntil).toBeNull();
    expect(run.apply({ type: "rollback", by: "u1" }).refused).toMatchObject({ status: 409, code: "step_in_progress" });
    run.answer("deployment.rollback", ROLLED_BACK);
    expect(run.s.status).toBe("rolled_back");
  });

  it("abort is refused during a rollback's first attempt (nothing has failed yet), and gives the rollback up once it retries", () => {
    const run = new Run("switch");
    runUntil(run, "verify");
    run.answer("smoke.run", smoke("failed"));
    expect(run.apply({ type: "abort", by: null }).refused).toMatchObject({ status: 409, code: "not_paused" });
    run.alarmAt(run.s.awaiting!.deadline);
    run.apply({ type: "abort", by: null });
    expect(run.s).toMatchObject({ status: "failed", step: "done", attention: null, error: { code: "rollback_failed" } });
    expect(run.log).toContainEqual({ type: "audit", action: "DEPLOYMENT_FAILED", reason: run.s.error });
    expect(run.last.effects).toContainEqual({ type: "clearAlarm" });
  });

  it.each([
    { stop: "verify" as const, timeoutMs: 90_000 },
    { stop: "analysis" as const, timeoutMs: 60_000 },
  ])("a $stop check the bridge does not answer in time is inconclusive: retried, then paused, never rolled back", ({ stop, timeoutMs }) => {
    const run = new Run("switch");
    runUntil(run, stop);
    for (let n = 1; n <= 3; n++) {
      expect(run.pending).toMatchObject({ command: "smoke.run", timeoutMs, commandId: `d_${run.s.id}_${stop}_${n - 1}` });
      run.alarmAt(run.s.awaiting!.deadline);
      if (n < 3) {
        expect(run.s.attention).toMatchObject({ state: "retrying", step: stop, attempts: n, lastError: `no answer within ${timeoutMs / 1000} s` });
        run.endWait();
      }
    }
    expect(run.s).toMatchObject({ status: "paused", step: stop, error: null });
    expect(run.sent.some((c) => c.command === "deployment.rollback")).toBe(false);
    expect(run.s.attention).toMatchObject({ state: "waiting", step: stop, attempts: 3, lastError: `no answer within ${timeoutMs / 1000} s` });
    // A person decides: promote goes on (after the analysis: AUDIT), abort rolls back.
    const promoted = transition(run.s, { type: "promote", by: "u1" }, run.now + 10);
    expect(promoted.state!.step).toBe(stop === "verify" ? "drain" : "audit");
    run.apply({ type: "abort", by: "u1" });
    expect(run.pending.args).toMatchObject({ switched: stop === "analysis" });
    expect(run.s.error).toMatchObject({ code: "operator_abort" });
  });

  it.each([
    { code: "driver_error", message: "The operation was aborted due to timeout" },
    { code: "internal", message: "fetch failed" },
    { code: "node_red_error", message: "GET /redforge/gate: 503" },
  ])("an analysis the bridge could not run ($code) is retried, and the next verdict decides", ({ code, message }) => {
    const run = new Run("switch");
    runUntil(run, "analysis");
    run.fail("smoke.run", code, message);
    expect(run.s).toMatchObject({ status: "in_progress", step: "analysis", attempt: 1 });
    expect(run.s.attention).toMatchObject({ state: "retrying", lastError: `${message} (${code})` });
    run.endWait();
    run.answer("smoke.run", analysis(0));
    expect(run.s).toMatchObject({ step: "audit", attention: null });
  });

  it("a check error that says green is broken (not_running) is a failure: it rolls back", () => {
    const run = new Run("switch");
    runUntil(run, "analysis");
    run.fail("smoke.run", "not_running", "runtime green-rt is not running on this bridge");
    expect(run.s.error).toEqual({ code: "step_failed", message: "analysis failed: runtime green-rt is not running on this bridge (not_running)" });
    expect(run.pending.args).toMatchObject({ switched: true });
  });

  it("a cleanup that does not stop blue is retried, then the deployment completes and says blue is still running (green is never rolled back)", () => {
    const run = new Run("switch");
    runUntil(run, "cleanup");
    expect(run.pending).toMatchObject({ command: "deployment.cleanup", timeoutMs: 60_000 });
    run.alarmAt(run.s.awaiting!.deadline);
    expect(run.s.attention).toMatchObject({ state: "retrying", step: "cleanup", attempts: 1 });
    run.endWait();
    run.fail("deployment.cleanup", "node_red_error", "blue would not stop");
    run.endWait();
    run.fail("deployment.cleanup", "node_red_error", "blue would not stop");
    expect(run.s).toMatchObject({ status: "completed", error: null, attention: null });
    expect(run.sent.some((c) => c.command === "deployment.rollback")).toBe(false);
    expect(run.s.history.at(-1)).toMatchObject({ phase: "CLEANUP", status: "completed", detail: expect.stringMatching(/blue blue-rt could not be stopped in 3 attempts.*stop it by hand/) });
  });

  it("a deployment's timeouts scale every deadline (and the drain's margin); a step given its own seconds gets exactly those", () => {
    const run = new Run("deploy", { drainTimeoutMs: 5_000, timeouts: { scale: 2.5, roundTripMs: 400, stepMs: { verify: 200_000 } } });
    expect(run.pending).toMatchObject({ command: "deployment.prepare", timeoutMs: 450_000 });
    run.answer("deployment.prepare", PREPARED);
    expect(run.pending).toMatchObject({ command: "gate.set", timeoutMs: 5_000 + 75_000 });
    run.answer("gate.set", DRAINED);
    expect(run.pending).toMatchObject({ command: "flows.deploy", timeoutMs: 225_000 });
    run.answer("flows.deploy", DEPLOYED);
    expect(run.pending).toMatchObject({ command: "smoke.run", timeoutMs: 200_000 });
    expect(run.last.effects).toContainEqual({ type: "setAlarm", at: run.s.awaiting!.deadline });
    expect(view(run.s).timeouts).toEqual({
      scale: 2.5, roundTripMs: 400,
      stepSeconds: { prepare: 450, drain: 80, deploy: 225, verify: 200, switch: 225, analysis: 150, cleanup: 150, rollback: 450 },
    });
    run.alarmAt(run.s.awaiting!.deadline);
    expect(run.s.attention).toMatchObject({ lastError: "no answer within 200 s" });
  });

  it("a deployment stored before timeouts existed runs with the table's deadlines", () => {
    const run = new Run("deploy");
    const { timeouts: _none, ...stored } = run.s;
    run.state = stored as RunState;
    expect(view(run.s).timeouts).toMatchObject({ scale: 1, roundTripMs: null, stepSeconds: { prepare: 180, drain: 60, rollback: 180 } });
  });

  it("the deadlines are resolved once at the start: the request's scale or the Worker's, times the cluster's round trip", () => {
    expect(roundTripScale(null)).toBe(1);
    expect(roundTripScale(20)).toBe(1);
    expect(roundTripScale(300)).toBe(2);
    expect(roundTripScale(5_000)).toBe(4);
    expect(resolveTimeouts(undefined, 1, null)).toEqual({ scale: 1, roundTripMs: null, stepMs: {} });
    expect(resolveTimeouts(undefined, 3, 10)).toEqual({ scale: 3, roundTripMs: 10, stepMs: {} });
    expect(resolveTimeouts({ scale: 2, rollback: 600 }, 3, 300)).toEqual({ scale: 4, roundTripMs: 300, stepMs: { rollback: 600_000 } });
    expect(workerTimeoutScale({})).toBe(1);
    expect(workerTimeoutScale({ REDFORGE_DEPLOY_TIMEOUT_SCALE: " 2.5 " })).toBe(2.5);
    for (const bad of ["0", "abc", "100", "-1"]) {
      expect(() => workerTimeoutScale({ REDFORGE_DEPLOY_TIMEOUT_SCALE: bad })).toThrow(expect.objectContaining({ status: 503, code: "misconfigured" }));
    }
    expect(createDeploymentSchema.safeParse({ instanceId: init().instanceId, flows: FLOWS, timeouts: { scale: 50 } }).success).toBe(false);
    expect(createDeploymentSchema.safeParse({ instanceId: init().instanceId, flows: FLOWS, timeouts: { drain: 60 } }).success).toBe(false);
  });

  it("the local AUDIT step is retried by the alarm until its record is written", () => {
    const run = new Run();
    runUntil(run, "analysis");
    run.answer("smoke.run", analysis(0));
    expect(run.last.effects.filter((e) => e.type === "promote")).toHaveLength(1);
    run.alarmAt(run.now + 30_000); // the write failed: no `promoted` came
    expect(run.last.effects.filter((e) => e.type === "promote")).toHaveLength(1);
    run.promoted();
    expect(run.s.step).toBe("cleanup");
  });
});

describe("answers that do not fit", () => {
  it("duplicate, stale and unknown answers change nothing and send nothing", () => {
    const run = new Run();
    const prepare = run.pending;
    run.answer("deployment.prepare", PREPARED);
    const state = run.state;
    expect(run.apply({ type: "result", commandId: prepare.commandId, ok: true, result: PREPARED })).toEqual({ state, effects: [] });
    expect(run.apply({ type: "result", commandId: "d_someone-else_drain_0", ok: true, result: DRAINED })).toEqual({ state, effects: [] });
    // The drain times out and the rollback starts; the drain's late answer is ignored.
    const drain = run.pending;
    run.alarmAt(run.s.awaiting!.deadline);
    const rolling = run.state;
    expect(run.apply({ type: "result", commandId: drain.commandId, ok: true, result: DRAINED })).toEqual({ state: rolling, effects: [] });
    expect(run.s.step).toBe("rollback");
  });

  it("an error answer without code or message still fails the step by name", () => {
    const run = new Run();
    runUntil(run, "deploy");
    run.answer("flows.deploy", null, false);
    expect(run.s.error).toEqual({ code: "step_failed", message: "deploy failed: no reason given (internal)" });
  });

  it("a result that does not parse fails the step as invalid_result; a rollback the bridge said was done still counts as done", () => {
    const run = new Run();
    run.answer("deployment.prepare", { blue: 7 });
    expect(run.s.error).toMatchObject({ code: "invalid_result", message: expect.stringMatching(/^prepare answered with a result that does not parse \(blue: .*green: /) });
    run.answer("deployment.rollback", { replayed: -1 });
    expect(run.s).toMatchObject({ status: "rolled_back", error: { code: "invalid_result" } });
    expect(run.s.history.at(-1)).toMatchObject({ phase: "ROLLING_BACK", status: "completed", detail: expect.stringMatching(/^blue serves again; rollback answered with a result that does not parse.*not counted$/) });
  });

  it("counters a bridge leaves out count as 0, so an older bridge's answer still parses", () => {
    const run = new Run();
    run.answer("deployment.prepare", PREPARED);
    run.answer("gate.set", { inFlight: 0 });
    expect(run.s.metrics).toMatchObject({ messagesHeld: 0, stragglers: 0 });
    expect(run.s.step).toBe("deploy");
  });
});

describe("what a deployment cost, from the bridge's counters", () => {
  it("counts per hand-over: held against replayed and released, refused, stopped in flight, expired; exact when the bridge counts at the switch", () => {
    const run = new Run("switch");
    runUntil(run, "drain");
    run.answer("gate.set", { ...DRAINED, httpRefused: 0 });
    // Blue's gate held 6 (4 by the drain's answer), the bridge replayed 5; 3 requests held, 2 released; 2 refused 503.
    run.answer("route.switch", { ...SWITCHED, heldMqtt: 6, replayed: 5, httpHeld: 3, httpReleased: 2, heldHttpReleasedOnBlue: 0, httpRefused: 2 });
    expect(run.s.metrics).toMatchObject({ messagesLost: 2, messagesDuplicated: 0 });
    run.endWait();
    run.answer("smoke.run", { ...analysis(0.02), expired: 2 });
    run.promoted();
    run.endWait();
    run.answer("deployment.cleanup", { stopped: "blue-rt", stragglers: 1 });
    expect(run.s.status).toBe("completed");
    expect(run.s.metrics.accounting).toEqual({
      mqttHeld: 6, mqttReplayed: 5, mqttLost: 1, mqttDuplicated: 0, httpHeld: 3, httpReleased: 2, httpLost: 1,
      httpRefused: 2, stoppedInFlight: 1, expired: 2, stranded: 0, exact: true, unseen: [],
    });
    expect(run.s.metrics).toMatchObject({ messagesLost: 1 + 1 + 1 + 2, messagesDuplicated: 0 });
  });

  it("an HTTP request the front saw during the hold and never answered (its client gave up) counts as lost", () => {
    const run = new Run("switch");
    runUntil(run, "switch");
    run.answer("route.switch", { ...SWITCHED, heldMqtt: 4, replayed: 4, httpHeld: 3, httpReleased: 3, heldHttpReleasedOnBlue: 0, httpUnanswered: 2 });
    expect(run.s.metrics.accounting).toMatchObject({ httpHeld: 3, httpReleased: 3, httpLost: 2 });
    expect(run.s.metrics).toMatchObject({ messagesLost: 2 });
  });

  it("a request held past the bound and refused 503 is refused, not also lost (its client was told)", () => {
    const run = new Run("switch");
    runUntil(run, "switch");
    // 5 held: 2 released, 3 refused after the hold bound (also in httpRefused, with 1 refused because the hold was full).
    run.answer("route.switch", { ...SWITCHED, heldMqtt: 0, replayed: 0, httpHeld: 5, httpReleased: 2, heldHttpReleasedOnBlue: 0, httpRefused: 4, httpHeldRefused: 3 });
    expect(run.s.metrics.accounting).toMatchObject({ httpHeld: 5, httpReleased: 2, httpRefused: 4, httpLost: 0 });
    expect(run.s.metrics).toMatchObject({ messagesLost: 0 });
    // A bridge from before httpHeldRefused: the same answer counts them lost too (a lower bound of nothing; as before).
    const older = new Run("switch");
    runUntil(older, "switch");
    older.answer("route.switch", { ...SWITCHED, heldMqtt: 0, replayed: 0, httpHeld: 5, httpReleased: 2, heldHttpReleasedOnBlue: 0, httpRefused: 4 });
    expect(older.s.metrics.accounting).toMatchObject({ httpLost: 3 });
  });

  it("replayed above what the gate held is duplicated; a hand-over's duplicates never hide another's loss", () => {
    const run = new Run("switch");
    runUntil(run, "switch");
    run.answer("route.switch", { ...SWITCHED, heldMqtt: 4, replayed: 6, httpHeld: 1 });
    expect(run.s.metrics).toMatchObject({ messagesDuplicated: 2, messagesLost: 0 });
    run.apply({ type: "rollback", by: null });
    run.answer("deployment.rollback", { ...ROLLED_BACK, heldMqtt: 9, replayed: 7, httpHeld: 0, greenStragglers: 1 });
    expect(run.s).toMatchObject({ status: "rolled_back" });
    expect(run.s.metrics).toMatchObject({ messagesDuplicated: 2, messagesLost: 2 + 1 });
    expect(run.s.metrics.accounting).toMatchObject({ mqttHeld: 13, mqttReplayed: 13, mqttLost: 2, mqttDuplicated: 2, stoppedInFlight: 1, exact: false });
  });

  it("a bridge that does not count at the hand-over gives a lower bound, and the accounting says what it could not see", () => {
    const run = new Run("switch");
    runUntil(run, "switch");
    run.answer("route.switch", { ...SWITCHED, replayed: 3, httpReleased: 0 });
    const a = run.s.metrics.accounting!;
    expect(a).toMatchObject({ mqttHeld: 4, mqttReplayed: 3, mqttLost: 1, httpHeld: 1, httpLost: 1, exact: false });
    expect(a.unseen).toEqual(expect.arrayContaining([
      expect.stringMatching(/^HTTP requests refused during the drain/),
      expect.stringMatching(/^MQTT work held at the switch .*lower bound.*duplicates cannot be seen/),
      expect.stringMatching(/^HTTP requests held until the switch/),
    ]));
    expect(run.s.metrics).toMatchObject({ messagesLost: 2, messagesDuplicated: 0 });
  });

  it("a rollback given up with a hold open counts everything held as lost (stranded), and the DEPLOYMENT_FAILED record carries it", () => {
    const run = new Run("deploy");
    runUntil(run, "verify");
    run.answer("smoke.run", smoke("failed"));
    expect(run.s.metrics.messagesLost).toBe(0); // held, not lost, while the rollback may still replay it
    run.fail("deployment.rollback", "internal", "end-of-hold marker not back within 30000 ms");
    expect(run.s.metrics.messagesLost).toBe(0);
    run.apply({ type: "abort", by: "u1" });
    expect(run.s).toMatchObject({ status: "failed", error: { code: "rollback_failed" } });
    expect(run.s.metrics.accounting).toMatchObject({ stranded: DRAINED.heldMqtt + DRAINED.heldHttp, exact: false });
    expect(run.s.metrics.messagesLost).toBe(5);
    const audit = run.log.find((e) => e.type === "audit");
    expect(audit).toMatchObject({ action: "DEPLOYMENT_FAILED" });
  });

  it("a rolled-back deployment shows its cost too: blue's hold replayed into blue, green's stragglers stopped", () => {
    const run = new Run("deploy");
    runUntil(run, "verify");
    run.answer("smoke.run", smoke("failed"));
    run.answer("deployment.rollback", { ...ROLLED_BACK, replayed: 3, httpReleased: 1, greenStragglers: 2 });
    expect(run.s).toMatchObject({ status: "rolled_back" });
    expect(run.s.metrics.accounting).toMatchObject({ mqttHeld: 4, mqttReplayed: 3, mqttLost: 1, httpHeld: 1, httpReleased: 1, stoppedInFlight: 2 });
    expect(run.s.metrics.messagesLost).toBe(3);
  });
});

describe("watchers and the row", () => {
  it("every transition emits its phase events and one progress event before it writes the row and acts", () => {
    const run = new Run();
    run.answer("deployment.prepare", PREPARED);
    const t = run.answer("gate.set", DRAINED);
    const kinds = t.effects.map((e) => (e.type === "emit" ? e.event.event : e.type));
    expect(kinds).toEqual(["deployment:phase", "deployment:phase", "deployment:progress", "project", "setAlarm", "send"]);
    const progress = t.effects.find((e) => e.type === "emit" && e.event.event === "deployment:progress");
    expect(progress).toMatchObject({ event: { data: { messagesHeld: 5, inFlightCount: 2, progress: 0.25 } } });
    expect(t.effects).toContainEqual({ type: "project", flush: false });
  });
});
