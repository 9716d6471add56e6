/**
 * Label selectors: Kubernetes' grammar and meaning, errors with their
 * position, bounded input, and the wave plan a rollout resolves over its
 * selection. (The SQL form is exercised against Postgres in
 * test/workers/rollouts.test.ts, with the same cases as `matches` here.)
 */
import { describe, expect, it } from "vitest";
import { formatSelector, MAX_SELECTOR_LENGTH, matches, parseSelector, SelectorError } from "../../core/fleet/labelSelector.ts";
import { budgetExceeded, resolveWaves, splitWaves } from "../../core/rollouts/plan.ts";
import { labelKeyProblem, labelsSchema, labelValueProblem } from "../../protocol/labels.ts";

const error = (input: string): SelectorError => {
  try {
    parseSelector(input);
  } catch (err) {
    if (err instanceof SelectorError) return err;
    throw err;
  }
  throw new Error(`"${input}" parsed`);
};

describe("label selector grammar", () => {
  it("parses every Kubernetes requirement form, with spaces anywhere between tokens", () => {
    expect(parseSelector("env=prod, tier == web ,region in (eu, us),zone notin (z1),gpu,!legacy, app!=old, k=")).toEqual([
      { op: "eq", key: "env", value: "prod" },
      { op: "eq", key: "tier", value: "web" },
      { op: "in", key: "region", values: ["eu", "us"] },
      { op: "notin", key: "zone", values: ["z1"] },
      { op: "exists", key: "gpu" },
      { op: "notexists", key: "legacy" },
      { op: "neq", key: "app", value: "old" },
      { op: "eq", key: "k", value: "" },
    ]);
    expect(parseSelector("redforge.io/team=core")).toEqual([{ op: "eq", key: "redforge.io/team", value: "core" }]);
    expect(formatSelector(parseSelector(" env = prod , region in ( eu , us ) , !x"))).toBe("env=prod,region in (eu,us),!x");
  });

  it("reports the position of what is wrong", () => {
    expect(error("").position).toBe(0);
    expect(error("env=prod,").position).toBe(9);
    expect(error("env=prod region=eu").position).toBe(9);
    expect(error("region in eu").position).toBe(10);
    expect(error("region in (eu").position).toBe(13);
    expect(error("region in ()").position).toBe(11);
    expect(error("env=pr*d").position).toBe(6);
    expect(error("-env=prod").position).toBe(0);
    expect(error("env=-prod").position).toBe(4);
    expect(error("UPPER.example/x=1").message).toMatch(/prefix/);
    expect(error(`${"a".repeat(64)}=1`).message).toMatch(/1-63/);
    expect(error("!env=prod").position).toBe(4);
  });

  it("is bounded: a selector longer than the limit is refused before it is read, and a long valid one parses in one pass", () => {
    expect(error("a".repeat(MAX_SELECTOR_LENGTH + 1)).position).toBe(MAX_SELECTOR_LENGTH);
    const many = Array.from({ length: 64 }, (_, i) => `k${i}`).join(",");
    expect(parseSelector(many)).toHaveLength(64);
    expect(error(`${many},k64`).message).toMatch(/more than 64/);
    // Adversarial input (a value list that never closes) is linear: well under a millisecond per character.
    const nasty = `k in (${"a,".repeat(300)}`;
    const t0 = performance.now();
    expect(() => parseSelector(nasty)).toThrow(SelectorError);
    expect(performance.now() - t0).toBeLessThan(200);
  });
});

describe("label selector meaning (Kubernetes semantics)", () => {
  const eu = { env: "prod", region: "eu" };
  const bare = {};
  const cases: [string, Record<string, string>, boolean][] = [
    ["env=prod", eu, true],
    ["env=dev", eu, false],
    ["env!=dev", eu, true],
    ["env!=dev", bare, true], // absent counts as "not dev"
    ["region in (eu,us)", eu, true],
    ["region in (us)", eu, false],
    ["region in (eu)", bare, false],
    ["region notin (us)", eu, true],
    ["region notin (eu)", eu, false],
    ["region notin (eu)", bare, true],
    ["env", eu, true],
    ["env", bare, false],
    ["!env", bare, true],
    ["!env", eu, false],
    ["env=prod,region in (us,eu),!legacy", eu, true],
    ["env=prod,region=us", eu, false],
    ["k=", { k: "" }, true],
    ["k=", bare, false],
  ];
  it.each(cases)("%s on %j → %s", (selector, labels, expected) => {
    expect(matches(parseSelector(selector), labels)).toBe(expected);
  });
});

describe("labels", () => {
  it("validates keys and values as Kubernetes does", () => {
    expect(labelKeyProblem("env")).toBeNull();
    expect(labelKeyProblem("app.kubernetes.io/name")).toBeNull();
    expect(labelKeyProblem("a_b.c-d")).toBeNull();
    expect(labelKeyProblem("/name")).not.toBeNull();
    expect(labelKeyProblem("Example.com/name")).not.toBeNull();
    expect(labelKeyProblem("name-")).not.toBeNull();
    expect(labelKeyProblem("x".repeat(64))).not.toBeNull();
    expect(labelValueProblem("")).toBeNull();
    expect(labelValueProblem("v1.2_3")).toBeNull();
    expect(labelValueProblem("has space")).not.toBeNull();
    expect(labelsSchema.safeParse(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]))).success).toBe(false);
    expect(labelsSchema.safeParse(Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "v"]))).success).toBe(true);
  });
});

describe("wave plan", () => {
  it("resolves cumulative targets over the selection, rounding percentages up and dropping waves that add nobody", () => {
    expect(resolveWaves([1, "10%", "50%", "100%"], 1000)).toEqual([1, 100, 500, 1000]);
    expect(resolveWaves([1, "10%", "50%", "100%"], 3)).toEqual([1, 2, 3]);
    expect(resolveWaves([1, "100%"], 1)).toEqual([1]);
    expect(resolveWaves([2, 5], 5)).toEqual([2, 5]);
    expect(resolveWaves([2, 50], 5)).toEqual([2, 5]);
  });

  it("refuses waves that do not cover the selection or go backwards", () => {
    expect(resolveWaves([1, "50%"], 10)).toMatchObject({ code: "waves_incomplete" });
    expect(resolveWaves([5, "10%", "100%"], 10)).toMatchObject({ code: "waves_not_cumulative" });
  });

  it("cuts the sorted selection at the targets", () => {
    expect(splitWaves(["a", "b", "c", "d", "e"], [1, 3, 5])).toEqual([["a"], ["b", "c"], ["d", "e"]]);
  });

  it("stops a wave only when failures are more than the budget", () => {
    expect(budgetExceeded({ maxFailedInstances: 0 }, 0, 10)).toBe(false);
    expect(budgetExceeded({ maxFailedInstances: 0 }, 1, 10)).toBe(true);
    expect(budgetExceeded({ maxFailedInstances: 2 }, 2, 10)).toBe(false);
    expect(budgetExceeded({ maxFailedPercent: 20 }, 2, 10)).toBe(false);
    expect(budgetExceeded({ maxFailedPercent: 20 }, 3, 10)).toBe(true);
    expect(budgetExceeded({ maxFailedInstances: 5, maxFailedPercent: 10 }, 2, 10)).toBe(true);
  });
});
