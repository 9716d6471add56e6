import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";

// `npm test` and `npm start` run on the Node from the `node` devDependency
// (node_modules/.bin comes first on an npm script's PATH), whatever the machine has.
describe("Node toolchain", () => {
  it("runs the Node tests on Node 22 or later, as package.json's engines asks", () => {
    const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
    expect(major).toBeGreaterThanOrEqual(22);
    const engines = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).engines.node as string;
    const [, wantMajor, wantMinor] = /^>=(\d+)\.(\d+)/.exec(engines) ?? [];
    expect(major > Number(wantMajor) || (major === Number(wantMajor) && minor >= Number(wantMinor)), `Node ${process.version} vs engines ${engines}`).toBe(true);
  });
});
