/**
 * The bridge ships on its own (npm ci --omit=dev, the Docker image, an edge
 * box): nothing under bridge/ may load the dev stand-ins, scripts, tests or the
 * Worker's code. Checked with the project's dependency rules on bridge/ alone,
 * so a violation elsewhere in the tree does not hide or fail this one.
 */
import { createRequire } from "node:module";
import { cruise, type ICruiseOptions } from "dependency-cruiser";
import { describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const config = require("../../.dependency-cruiser.cjs") as { forbidden: unknown[]; options: Record<string, unknown> };

describe("bridge imports", () => {
  it("bridge/ reaches only bridge/, protocol/ and packages (no dev/, no functions/)", async () => {
    const result = await cruise(["bridge"], { ...config.options, ruleSet: { forbidden: config.forbidden }, validate: true, outputType: "json" } as ICruiseOptions);
    const out = typeof result.output === "string" ? JSON.parse(result.output) : result.output;
    const modules = out.modules as Array<{ source: string; dependencies: Array<{ resolved: string; dependencyTypes: string[] }> }>;
    const reached = modules.flatMap((m) => m.dependencies.filter((d) => d.dependencyTypes.some((t) => t.startsWith("local"))).map((d) => `${m.source} → ${d.resolved}`));
    expect(reached.filter((edge) => !/ → (bridge|protocol)\//.test(edge))).toEqual([]);
  });
});
