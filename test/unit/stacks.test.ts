import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { installedStacks, reportedStacks, resolveStack, satisfiesMinimum } from "../../bridge/drivers/process/stacks.ts";

describe("Node-RED stacks installed side by side", () => {
  it("finds 5.0 and 4.1 under their npm aliases, each with its own red.js", () => {
    const stacks = installedStacks();
    expect(stacks.map((s) => s.id)).toEqual(["5.0", "4.1"]);
    for (const s of stacks) expect(fs.existsSync(s.cli), s.cli).toBe(true);
    expect(new Set(stacks.map((s) => s.cli)).size).toBe(2);
    expect(stacks[0]).toMatchObject({ version: expect.stringMatching(/^5\.0\.\d+$/), nodeEngines: ">=22.9", usable: true });
    expect(stacks[1]!.version).toMatch(/^4\.1\.\d+$/);
  });

  it("defaults new instances to the newest stack this Node can run, and refuses one it cannot", () => {
    expect(resolveStack(installedStacks("22.23.3")).id).toBe("5.0");
    expect(resolveStack(installedStacks("22.23.3"), "4").id).toBe("4.1");
    const onNode20 = installedStacks("20.20.2");
    expect(resolveStack(onNode20).id).toBe("4.1");
    expect(() => resolveStack(onNode20, "5.0")).toThrow(/needs Node >=22\.9/);
    expect(() => resolveStack(onNode20, "3.1")).toThrow(/not installed/);
  });

  it("reports only the stacks this Node can run, with their exact release", () => {
    expect(reportedStacks(installedStacks("22.23.3"))).toEqual([
      { id: "5.0", nodeRed: expect.stringMatching(/^5\.0\.\d+$/) }, { id: "4.1", nodeRed: expect.stringMatching(/^4\.1\.\d+$/) },
    ]);
    expect(reportedStacks(installedStacks("20.20.2")).map((s) => s.id)).toEqual(["4.1"]);
  });

  it("compares versions against a >= minimum", () => {
    expect(satisfiesMinimum("22.9.0", ">=22.9")).toBe(true);
    expect(satisfiesMinimum("22.8.9", ">=22.9")).toBe(false);
    expect(satisfiesMinimum("v24.0.0", ">=22.9")).toBe(true);
    expect(satisfiesMinimum("18.5.0", ">=18.5")).toBe(true);
    expect(satisfiesMinimum("20.0.0", "^18 || ^20")).toBe(true); // not checked
  });
});
