/**
 * The OpenAPI document as the real Worker (wrangler dev) serves it: it passes
 * the real OpenAPI linter (@redocly/cli lint, recommended rules, redocly.yaml),
 * and the committed copy and client types in protocol/api/ are what
 * `npm run openapi:generate` would write now.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCUMENT_FILE, TYPES_FILE, documentText, schemaTypes } from "../../scripts/openapi-generate.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const STALE = "protocol/api/ is stale: run `npm run openapi:generate` and commit the result";

let stack: TestStack;
let doc: unknown;
let tmp: string;

beforeAll(async () => {
  stack = await startTestStack({ worker: "wrangler" });
  const res = await fetch(`${stack.apiUrl}/api/openapi.json`);
  expect(res.status).toBe(200);
  doc = await res.json();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-openapi-"));
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("the served OpenAPI document", () => {
  it("passes redocly lint with no errors", async () => {
    const file = path.join(tmp, "openapi.json");
    await fs.writeFile(file, documentText(doc));
    const run = await promisify(execFile)(path.join(root, "node_modules/.bin/redocly"), ["lint", file, "--config", path.join(root, "redocly.yaml"), "--format=json"], {
      cwd: root, maxBuffer: 32 * 1024 * 1024,
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
    }).catch((err: { code?: number; stdout?: string; stderr?: string }) => err);
    const report = JSON.parse(run.stdout ?? "{}") as { totals?: { errors: number }; problems?: { severity: string; ruleId: string; message: string; location: { pointer: string }[] }[] };
    const errors = (report.problems ?? []).filter((p) => p.severity === "error").map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`);
    expect(errors, run.stderr).toEqual([]);
    expect(report.totals?.errors, run.stderr).toBe(0);
  }, 60_000);

  it("is the committed protocol/api/openapi.json", async () => {
    expect(await fs.readFile(DOCUMENT_FILE, "utf8"), STALE).toBe(documentText(doc));
  });

  it("generates the committed client types (protocol/api/schema.gen.d.ts)", async () => {
    expect(await fs.readFile(TYPES_FILE, "utf8"), STALE).toBe(await schemaTypes(doc));
  }, 60_000);
});
