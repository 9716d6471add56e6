import { describe, expect, it } from "vitest";
import { applyDeploymentEvent, failureInWords, operatorActions, timeline, type Deployment } from "../../../app/src/deployments/timeline.ts";

const t = (s: number) => new Date(Date.UTC(2026, 11, 2, 8, 0, s)).toISOString();

function deployment(over: Partial<Deployment> = {}): Deployment {
  return {
    id: "d1", instanceId: "i1", strategy: "blue-green", status: "in_progress", phase: "DRAIN", progress: 0, switched: false,
    history: [], metrics: { messagesHeld: 0, messagesReplayed: 0, messagesLost: 0, messagesDuplicated: 0, inFlightAtDrain: 0, stragglers: 0, phaseMs: {} },
    error: null, attention: null, timeouts: null, fromVersionId: null, toVersionId: "v2", fromStack: "5.0", toStack: "5.0", toNodeRed: null, createdAt: t(0), completedAt: null,
    ...over,
  };
}

describe("a deployment's timeline", () => {
  it("folds live phase frames in: finished phases show their measured duration, the running one its time so far", () => {
    let d: Deployment | null = deployment();
    d = applyDeploymentEvent(d, { event: "deployment:phase", data: { deploymentId: "d1", phase: "DRAIN", status: "started", deploymentStatus: "in_progress", timestamp: t(0) } });
    d = applyDeploymentEvent(d, { event: "deployment:phase", data: { deploymentId: "d1", phase: "DRAIN", status: "completed", deploymentStatus: "in_progress", timestamp: t(2) } });
    d = applyDeploymentEvent(d, { event: "deployment:phase", data: { deploymentId: "d1", phase: "DEPLOY", status: "started", deploymentStatus: "in_progress", timestamp: t(2) } });
    d = applyDeploymentEvent(d, { event: "deployment:progress", data: { deploymentId: "d1", messagesHeld: 12, inFlightCount: 3, progress: 0.3, timestamp: t(3) } });
    d = applyDeploymentEvent(d, { event: "deployment:phase", data: { deploymentId: "other", phase: "CLEANUP", status: "started", deploymentStatus: "completed", timestamp: t(3) } });
    const rows = timeline(d!, Date.parse(t(7)));
    expect(rows.map((r) => [r.phase, r.state, r.durationMs])).toEqual([
      ["DRAIN", "done", 2000], ["DEPLOY", "running", 5000], ["VERIFY", "waiting", null],
      ["RESUME", "waiting", null], ["AUDIT", "waiting", null], ["CLEANUP", "waiting", null],
    ]);
    expect(d!.metrics.messagesHeld).toBe(12);
    expect(d!.progress).toBe(0.3);
  });

  it("a rollback adds ROLLING_BACK, skips what never ran, and says the code in plain words", () => {
    const d = deployment({
      status: "rolled_back", phase: "ROLLING_BACK",
      history: [
        { phase: "DRAIN", status: "started", at: t(0) }, { phase: "DRAIN", status: "completed", at: t(1) },
        { phase: "VERIFY", status: "started", at: t(1) }, { phase: "VERIFY", status: "failed", at: t(4), detail: "1 of 2 checks failed" },
        { phase: "ROLLING_BACK", status: "started", at: t(4) }, { phase: "ROLLING_BACK", status: "completed", at: t(6) },
      ],
      metrics: { messagesHeld: 5, messagesReplayed: 5, messagesLost: 0, messagesDuplicated: 0, inFlightAtDrain: 0, stragglers: 0, phaseMs: { VERIFY: 3100 } },
      error: { code: "smoke_failed", message: "smoke tests failed: 1 of 2" },
    });
    expect(timeline(d).map((r) => [r.phase, r.state, r.durationMs, r.detail])).toEqual([
      ["DRAIN", "done", 1000, undefined], ["DEPLOY", "skipped", null, undefined], ["VERIFY", "failed", 3100, "1 of 2 checks failed"],
      ["RESUME", "skipped", null, undefined], ["AUDIT", "skipped", null, undefined], ["CLEANUP", "skipped", null, undefined],
      ["ROLLING_BACK", "done", 2000, undefined],
    ]);
    expect(failureInWords(d.error)).toMatch(/smoke tests/);
    expect(operatorActions(d)).toMatchObject({ promote: false, abort: false, rollback: false });
  });

  it("holding only for the switch: green is deployed and verified before the drain, and the rows say so", () => {
    const d = deployment({ history: [{ phase: "DEPLOY", status: "started", at: t(0) }], phase: "DEPLOY" });
    expect(timeline(d, Date.parse(t(1))).map((r) => r.phase)).toEqual(["DEPLOY", "VERIFY", "DRAIN", "RESUME", "AUDIT", "CLEANUP"]);
  });

  it("offers promote and abort only when paused, rollback until it is rolling back or finished", () => {
    expect(operatorActions(deployment({ status: "paused", phase: "VERIFY" }))).toMatchObject({ promote: true, abort: true, rollback: true });
    expect(operatorActions(deployment({ status: "in_progress", phase: "AUDIT" }))).toMatchObject({ promote: false, abort: false, rollback: true });
    expect(operatorActions(deployment({ status: "in_progress", phase: "ROLLING_BACK" }))).toMatchObject({ promote: false, abort: false, rollback: false });
    expect(operatorActions(deployment({ status: "completed", phase: "CLEANUP" }))).toMatchObject({ promote: false, abort: false, rollback: false });
  });
});
