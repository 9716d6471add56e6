/** The console's rollout view: socket frames onto the view, the buttons each status allows, the waves field. */
import { describe, expect, it } from "vitest";
import { applyRolloutEvent, parseWaves, planInWords, rolloutActions, type Rollout } from "../../../app/src/rollouts/rolloutView.ts";

const ID = "00000000-0000-4000-8000-000000000001";
const A = "00000000-0000-4000-8000-0000000000a1";
const B = "00000000-0000-4000-8000-0000000000b1";
const C = "00000000-0000-4000-8000-0000000000c1";

function view(): Rollout {
  const at = "2026-12-02T10:00:00.000Z";
  return {
    id: ID, status: "running", selector: "env=staging", createdBy: null, createdAt: at, updatedAt: at, completedAt: null,
    description: null, flowsDigest: "f".repeat(64), versionId: null,
    plan: { waves: [1, "100%"], parallelism: 5, pause: { kind: "approval" }, failureBudget: { maxFailedInstances: 0 }, onFailure: "rollback_wave", lateJoiners: "after_completion" },
    currentWave: 0, nextWaveAt: null,
    waves: [
      { index: 0, target: 1, status: "running", startedAt: at, completedAt: null, instances: [{ instanceId: A, deploymentId: null, status: "pending" }] },
      { index: 1, target: 3, status: "pending", startedAt: null, completedAt: null, instances: [{ instanceId: B, deploymentId: null, status: "pending" }, { instanceId: C, deploymentId: null, status: "pending" }] },
    ],
    summary: { total: 3, completed: 0, failed: 0, pending: 3 },
    failure: null,
  };
}
const ts = "2026-12-02T10:00:01.000Z";

describe("rollout view", () => {
  it("an instance frame changes that instance and the counts, and nothing else", () => {
    const dep = "00000000-0000-4000-8000-0000000000d1";
    const v1 = applyRolloutEvent(view(), { event: "rollout:instance", data: { rolloutId: ID, wave: 0, instanceId: A, deploymentId: dep, status: "deploying", timestamp: ts } })!;
    expect(v1.waves[0]!.instances[0]).toEqual({ instanceId: A, deploymentId: dep, status: "deploying" });
    expect(v1.summary).toEqual({ total: 3, completed: 0, failed: 0, pending: 3 });
    const v2 = applyRolloutEvent(v1, { event: "rollout:instance", data: { rolloutId: ID, wave: 0, instanceId: A, deploymentId: dep, status: "failed", code: "SMOKE_FAILED", reason: "smoke check answered 500", timestamp: ts } })!;
    expect(v2.waves[0]!.instances[0]).toMatchObject({ status: "failed", code: "SMOKE_FAILED", reason: "smoke check answered 500", deploymentId: dep });
    expect(v2.summary).toEqual({ total: 3, completed: 0, failed: 1, pending: 2 });
    expect(v2.waves[1]).toBe(v1.waves[1]);
  });

  it("a wave frame moves the wave and the rollout's status; a frame for another rollout or before the first state changes nothing", () => {
    const v = applyRolloutEvent(view(), { event: "rollout:wave", data: { rolloutId: ID, index: 0, status: "completed", rolloutStatus: "awaiting_approval", timestamp: ts } })!;
    expect([v.status, v.waves[0]!.status, v.waves[1]!.status]).toEqual(["awaiting_approval", "completed", "pending"]);
    const other = { event: "rollout:wave", data: { rolloutId: A, index: 0, status: "failed", rolloutStatus: "failed", timestamp: ts } };
    const before = view();
    expect(applyRolloutEvent(before, other)).toBe(before);
    expect(applyRolloutEvent(null, other)).toBeNull();
    expect(applyRolloutEvent(before, "pong")).toBe(before);
  });

  it("a state frame replaces the view (every reconnect starts with one)", () => {
    const fresh = { ...view(), status: "completed" as const };
    expect(applyRolloutEvent(view(), { event: "rollout:state", data: fresh })).toEqual(fresh);
  });

  it("offers only the actions the API accepts in each status", () => {
    expect(rolloutActions("running")).toEqual({ pause: true, resume: false, approve: false, abort: true });
    expect(rolloutActions("awaiting_approval")).toEqual({ pause: true, resume: false, approve: true, abort: true });
    expect(rolloutActions("paused")).toEqual({ pause: false, resume: true, approve: false, abort: true });
    for (const ended of ["completed", "failed", "aborted", "rolling_back"] as const) {
      expect(rolloutActions(ended)).toEqual({ pause: false, resume: false, approve: false, abort: false });
    }
  });

  it("reads the waves field as counts and shares, and names what is neither", () => {
    expect(parseWaves("1, 10%, 50% ,100%")).toEqual({ waves: [1, "10%", "50%", "100%"] });
    expect(parseWaves("3")).toEqual({ waves: [3] });
    expect(parseWaves("1, ten")).toEqual({ error: '"ten" is neither a count (1, 5) nor a share (10%, 100%)' });
    expect(parseWaves("0")).toMatchObject({ error: expect.stringContaining('"0"') });
    expect(parseWaves(" , ")).toMatchObject({ error: expect.stringContaining("at least one wave") });
  });

  it("says the plan in one line", () => {
    expect(planInWords(view().plan)).toBe("waves 1 → 100% · 5 at once · approval between waves · budget 0 failed per wave · on failure: roll the wave back");
  });
});

describe("the role picker and four-eyes", () => {
  it("four ticked deployment boxes grant those four, not deployments:* (which would include approve)", async () => {
    const { grantsOf, tickedOf } = await import("../../../app/src/governance/permissionTable.ts");
    const four = new Set(["deployments:create", "deployments:read", "deployments:update", "deployments:delete"]);
    expect(grantsOf(four)).toEqual(["create", "read", "update", "delete"].map((action) => ({ resource: "deployments", action })));
    expect(grantsOf(new Set([...four, "deployments:approve"]))).toEqual([{ resource: "deployments", action: "*" }]);
    expect(grantsOf(new Set(["deployments:read", "deployments:approve"]))).toEqual([{ resource: "deployments", action: "read" }, { resource: "deployments", action: "approve" }]);
    expect(tickedOf([{ resource: "deployments", action: "approve" }])).toEqual(new Set(["deployments:approve"]));
  });
});
