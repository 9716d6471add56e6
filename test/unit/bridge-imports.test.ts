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

describe("bridge packages", () => {
  it("every package the bridge loads (bin.mjs's tsx included) is a dependency, so npm ci --omit=dev installs it", async () => {
    const { readdir, readFile } = await import("node:fs/promises");
    const path = await import("node:path");
    const pkg = JSON.parse(await readFile("package.json", "utf8")) as { dependencies: Record<string, string> };
    // bridge/ and every file it reaches through relative imports (the protocol/ files it uses).
    const queue = (await readdir("bridge", { recursive: true })).map((f) => path.join("bridge", f)).filter((f) => /\.(ts|mts|mjs|js)$/.test(f) && !f.startsWith("bridge/ship/"));
    const seen = new Set<string>();
    const missing = new Set<string>();
    while (queue.length) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = await readFile(file, "utf8");
      // Static imports and re-exports, and dynamic import(): their specifiers.
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^;'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith(".")) { queue.push(path.join(path.dirname(file), spec)); continue; }
        if (spec.startsWith("node:")) continue;
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        if (!(name in pkg.dependencies)) missing.add(`${name} (${file})`);
      }
    }
    expect([...missing]).toEqual([]);
    expect(pkg.dependencies).toHaveProperty("tsx");
    expect(seen.has("bridge/bin.mjs")).toBe(true);
  });
});
