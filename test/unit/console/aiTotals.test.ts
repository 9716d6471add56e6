import { describe, expect, it } from "vitest";
import { byTeam, groupLabel, hourlyBuckets, sumTotals, type TotalsRow } from "../../../app/src/ai/aiTotals.ts";
import { grantsOf, tickedOf } from "../../../app/src/governance/permissionTable.ts";

const row = (key: Record<string, string | null>, calls: number, cost: string | null, unpriced = 0): TotalsRow => ({ key, calls, inputTokens: calls * 100, outputTokens: calls * 10, costUsd: cost, unpricedCalls: unpriced });

describe("AI totals for people", () => {
  it("sums groups exactly in micro-dollars (0.1 + 0.2 is 0.3) and counts unpriced calls", () => {
    const s = sumTotals([row({ model: "a" }, 2, "0.1"), row({ model: "b" }, 3, "0.2"), row({ model: "c" }, 1, null, 1)]);
    expect(s).toEqual({ calls: 6, inputTokens: 600, outputTokens: 60, costUsd: 0.3, unpricedCalls: 1 });
  });

  it("regroups instance totals by team, costliest first, deleted instances apart", () => {
    const teams: Record<string, string> = { i1: "red", i2: "blue", i3: "red" };
    const out = byTeam([row({ instanceId: "i1" }, 1, "1.5"), row({ instanceId: "i2" }, 1, "2"), row({ instanceId: "i3" }, 1, "1"), row({ instanceId: "gone" }, 4, null, 4)], (id) => teams[id]);
    expect(out.map((t) => [t.team, t.sum.costUsd, t.sum.calls])).toEqual([["red", 2.5, 2], ["blue", 2, 1], ["(deleted)", 0, 4]]);
  });

  it("labels a group by its key's values", () => {
    expect(groupLabel(row({ provider: "openai", model: "gpt-4o-mini" }, 1, null))).toBe("openai / gpt-4o-mini");
    expect(groupLabel(row({ flowName: null }, 1, null))).toBe("(none)");
    expect(groupLabel(row({ instanceId: "i1" }, 1, null), (_k, v) => `name-of-${v}`)).toBe("name-of-i1");
  });

  it("buckets decisions per hour, oldest first, with the empty hours in between", () => {
    const d = (at: string, tokens: number, cost: string | null) => ({ timestamp: at, inputTokens: tokens, outputTokens: 0, tokensUsed: null, costUsd: cost });
    const b = hourlyBuckets([d("2026-12-02T12:59:00Z", 5, "0.2"), d("2026-12-02T10:10:00Z", 10, "0.1"), d("2026-12-02T10:50:00Z", 1, null)]);
    expect(b.x.map((s) => new Date(s * 1000).toISOString().slice(11, 13))).toEqual(["10", "11", "12"]);
    expect(b.tokens).toEqual([11, 0, 5]);
    expect(b.costUsd).toEqual([0.1, 0, 0.2]);
    expect(b.calls).toEqual([2, 0, 1]);
    expect(hourlyBuckets([])).toEqual({ x: [], tokens: [], costUsd: [], calls: [] });
  });
});

describe("the permission picker's grants", () => {
  it("turns a full row into resource:* and everything into *:*, and back", () => {
    const row = new Set(["instances:create", "instances:read", "instances:update", "instances:delete", "audit:read"]);
    expect(grantsOf(row)).toEqual([{ resource: "instances", action: "*" }, { resource: "audit", action: "read" }]);
    const all = tickedOf([{ resource: "*", action: "*" }]);
    expect(grantsOf(all)).toEqual([{ resource: "*", action: "*" }]);
    expect(tickedOf([{ resource: "deployments", action: "*" }]).size).toBe(5); // with deployments:approve
    expect(tickedOf([{ resource: "*", action: "read" }]).has("reports:read")).toBe(true);
    expect(grantsOf(new Set())).toEqual([]);
  });
});
