/**
 * Policy `namePattern` globs (issue 12, item 6): matched without a regular
 * expression, in work linear in pattern × name. The proof counts the
 * matcher's steps; nothing here reads a clock. That policy evaluation uses it
 * (and builds no RegExp): test/workers/policies.test.ts.
 */
import { describe, expect, it } from "vitest";
import { globMatches } from "../../core/governance/nameGlob.ts";

describe("namePattern globs", () => {
  it("match like the documented glob: * is any run of characters, everything else literal", () => {
    const cases: [string, string, boolean][] = [
      ["prod-*", "prod-eu-1", true], ["prod-*", "prod-", true], ["prod-*", "staging-1", false],
      ["*-eu-*", "prod-eu-1", true], ["*-eu-*", "prod-us-1", false], ["*", "", true], ["*", "anything", true],
      ["a*b*c", "abc", true], ["a*b*c", "aXbYc", true], ["a*b*c", "acb", false], ["a*b*c", "abcd", false],
      ["exact", "exact", true], ["exact", "exact2", false], ["exact", "exac", false],
      ["**a**", "bab", true], ["*a*a*b", "aaaab", true], ["*a*a*b", "aaaaa", false], ["-*-", "--", true],
    ];
    for (const [pattern, name, want] of cases) expect(globMatches(pattern, name), `${pattern} ~ ${name}`).toBe(want);
  });

  it("the worst 63-character pattern against a long name stays within a linear step budget", () => {
    // `*a*a*…*b` against `aaaa…a`: a backtracking regex explores exponentially many splits.
    const pattern = `${"*a".repeat(31)}*`.slice(0, 62) + "b";
    expect(pattern).toHaveLength(63);
    const name = "a".repeat(10_000);
    const steps = { count: 0 };
    expect(globMatches(pattern, name, steps)).toBe(false);
    // Two-pointer wildcard matching: at most (pattern + 1) × (name + 1) steps.
    expect(steps.count).toBeLessThanOrEqual((pattern.length + 1) * (name.length + 1));
    expect(steps.count).toBeGreaterThan(0);
    // And linear in the name: doubling the name at most doubles the work (plus the pattern).
    const twice = { count: 0 };
    globMatches(pattern, "a".repeat(20_000), twice);
    expect(twice.count).toBeLessThanOrEqual(2 * steps.count + 2 * pattern.length);
  });
});
