/**
 * The folder layering of .dependency-cruiser.cjs holds for the whole tree,
 * and the rule set really catches what issue 10 forbids (a bridge/ →
 * functions/ import, a cycle), proven on a small tree written for the test.
 */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { cruise, type ICruiseOptions } from "dependency-cruiser";
import { afterAll, describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const config = require("../../.dependency-cruiser.cjs") as { forbidden: unknown[]; options: Record<string, unknown> };
const SHIPPED = ["protocol", "core", "db", "durable", "queues", "functions", "bridge", "flows", "cli"];

async function violations(dirs: string[], baseDir?: string): Promise<string[]> {
  const { tsConfig: _ts, ...options } = config.options;
  const cruiseOptions = {
    ...options, ...(baseDir ? { baseDir } : { tsConfig: _ts }),
    ruleSet: { forbidden: config.forbidden }, validate: true, outputType: "json",
  } as ICruiseOptions;
  const result = await cruise(dirs, cruiseOptions);
  const out = typeof result.output === "string" ? JSON.parse(result.output) : result.output;
  return (out.summary.violations as Array<{ rule: { name: string }; from: string; to: string; cycle?: unknown[] }>)
    .map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
}

describe("dependency rules", () => {
  it("no shipped folder imports across its layer and no file cycle exists", async () => {
    expect(await violations(SHIPPED)).toEqual([]);
  });

  const scratch = mkdtemp(path.join(tmpdir(), "redforge-depcruise-"));
  afterAll(async () => rm(await scratch, { recursive: true, force: true }));

  it("a bridge/ → functions/ import and a cycle between two files are both reported", async () => {
    const dir = await scratch;
    const files: Record<string, string> = {
      "functions/secret.ts": "export const secret = 1;\n",
      "bridge/main.ts": 'import { secret } from "../functions/secret.ts";\nexport const x = secret;\n',
      "core/a.ts": 'import { b } from "./b.ts";\nexport const a = () => b;\n',
      "core/b.ts": 'import { a } from "./a.ts";\nexport const b = () => a;\n',
      "protocol/ok.ts": "export const ok = true;\n",
      "core/ok.ts": 'import { ok } from "../protocol/ok.ts";\nexport const fine = ok;\n',
    };
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.join(dir, path.dirname(name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
    const found = await violations(["functions", "bridge", "core", "protocol"], dir);
    expect(found).toContain("bridge-only-protocol: bridge/main.ts → functions/secret.ts");
    expect(found.some((v) => v.startsWith("no-circular: core/a.ts"))).toBe(true);
    expect(found.some((v) => v.includes("core/ok.ts"))).toBe(false);
  });
});
