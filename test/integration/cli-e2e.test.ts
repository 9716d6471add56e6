/**
 * The redforge CLI as CI runs it: a child process (bin/redforge.mjs) against
 * the local stack under wrangler dev, a real bridge and a real Node-RED
 * instance, with an API key in REDFORGE_API_KEY. `instances ls`, `deploy
 * --wait` and `rollout --wait` end in exit 0 with their progress printed;
 * a rollout whose instance cannot take the flows ends in 1; a promotion that
 * waits for an approver runs into --timeout (3); usage and auth errors are 2
 * and 4.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { ApiBody } from "../../protocol/api/client.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";
import { zeroLossFlow } from "../harness/zeroLoss.ts";

const BIN = fileURLToPath(new URL("../../bin/redforge.mjs", import.meta.url));
const WAIT = { timeout: 120_000, interval: 250 };

let fleet: FleetStack;
let apiKey: string;
let dir: string;
let instance: { id: string; name: string };

interface Run { code: number | null; stdout: string; stderr: string }

function redforge(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", REDFORGE_URL: fleet.stack.apiUrl, REDFORGE_API_KEY: apiKey, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function flowFile(name: string, version: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(zeroLossFlow({ version, entry: "gate", broker: fleet.broker })));
  return file;
}

beforeAll(async () => {
  fleet = await startFleetStack("cli-e2e");
  dir = await mkdtemp(path.join(tmpdir(), "redforge-cli-e2e-"));
  const key = await fleet.api.POST("/api/api-keys", { body: { name: "ci" } });
  apiKey = key.data!.key;
  const created = await fleet.api.POST("/api/instances", {
    body: { name: "cli-edge-1", clusterId: fleet.clusterId, labels: { env: "cli" }, flows: zeroLossFlow({ version: "v1", entry: "gate", broker: fleet.broker }) as ApiBody<"/api/instances", "post">["flows"] },
  });
  expect(created.response.status, JSON.stringify(created.error)).toBe(201);
  instance = created.data!;
  await vi.waitFor(async () => {
    const { data } = await fleet.api.GET("/api/instances/{id}", { params: { path: { id: instance.id } } });
    expect(data?.status).toBe("running");
  }, WAIT);
}, 240_000);

afterAll(async () => {
  await fleet?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("redforge against a running control plane", () => {
  it("login checks the API key; instances ls lists by selector, as text and as JSON", async () => {
    const login = await redforge(["login"]);
    expect(login.code, login.stdout + login.stderr).toBe(0);
    expect(login.stdout).toMatch(/API key works: admin/);
    const ls = await redforge(["instances", "ls", "--selector", "env=cli"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain(instance.id);
    expect(ls.stdout).toContain("env=cli");
    const json = await redforge(["instances", "ls", "--selector", "env=none", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({ items: [] });
  }, 60_000);

  it("deploy --wait follows the phases and exits 0 once the deployment completed", async () => {
    const run = await redforge(["deploy", instance.name, "--flows", await flowFile("v2.json", "v2"), "--analysis", "1", "--rollback-window", "1", "--wait", "--interval", "500ms", "--timeout", "5m"]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/deployment \S+: in_progress \(phase DEPLOY\)/);
    expect(run.stdout).toMatch(/deployment \S+: completed/);
    // Each state line once.
    const lines = run.stdout.trim().split("\n");
    expect(new Set(lines).size).toBe(lines.length);
  }, 360_000);

  it("rollout --wait goes wave by wave and exits 0; status of the rollout then says completed", async () => {
    const run = await redforge(["rollout", "--selector", "env=cli", "--flows", await flowFile("v3.json", "v3"), "--waves", "1,100%", "--rollback-window", "1", "--analysis", "1", "--wait", "--interval", "500ms", "--json"]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const final = JSON.parse(run.stdout);
    expect(final).toMatchObject({ status: "completed", summary: { total: 1, completed: 1, failed: 0 } });
    expect(run.stderr).toMatch(/rollout \S+: wave 1\/1 \(1 instance\) running/);
    expect(run.stderr).toMatch(/rollout \S+: wave 1\/1 \(1 instance\) completed/);
    const status = await redforge(["status", final.id, "--json"]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ kind: "rollout", id: final.id, status: "completed" });
    await vi.waitFor(async () => {
      const answer = await fetch(`${(await fleet.api.GET("/api/instances/{id}", { params: { path: { id: instance.id } } })).data!.endpoints!.front}/work`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seq: "cli" }),
      });
      expect(((await answer.json()) as any).payload.version).toBe("v3");
    }, WAIT);
  }, 360_000);

  it("a rollout whose wave fails exits 1", async () => {
    const file = path.join(dir, "broken.json");
    await writeFile(file, JSON.stringify([{ id: "t", type: "tab" }, { id: "n", type: "no-such-node-type", z: "t", wires: [] }]));
    const run = await redforge(["rollout", "--selector", "env=cli", "--flows", file, "--waves", "100%", "--wait", "--interval", "500ms"]);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toMatch(/rollout \S+: failed/);
  }, 360_000);

  it("a promotion that waits for an approver times out with 3; usage errors are 2, a bad key 4", async () => {
    const pipeline = await fleet.api.POST("/api/pipelines", { body: { name: "cli-pipeline", stages: [{ name: "prod", selector: "env=cli", requiresApproval: true }] } });
    expect(pipeline.response.status).toBe(201);
    const run = await redforge(["promote", "cli-pipeline", "prod", "--flows", await flowFile("v4.json", "v4"), "--wait", "--timeout", "2s", "--interval", "500ms"]);
    expect(run.code, run.stdout + run.stderr).toBe(3);
    expect(run.stdout).toMatch(/awaiting_approval/);
    expect(run.stdout).toMatch(/timed out/);
    expect((await redforge(["rollout", "--selector", "env=cli"])).code).toBe(2);
    const bad = await redforge(["instances", "ls"], { REDFORGE_API_KEY: "rf_not_a_key" });
    expect(bad.code).toBe(4);
    expect(bad.stdout).toMatch(/invalid_api_key|401/);
  }, 60_000);
});
