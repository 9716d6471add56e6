/**
 * The bridge as an operator installs it: the package as `npm pack` makes it
 * (its `files`), with the project's lockfile, installed by
 * `npm ci --omit=dev` into a temporary folder — no devDependencies, nothing
 * from this checkout. From there `npx redforge-bridge --help` works, and a
 * bridge with the process driver connects to a control plane (a stand-in
 * that verifies the signed requests), creates a real Node-RED instance and
 * answers the command.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { newCommandId, type Command } from "../../protocol/commands.ts";
import type { Report } from "../../protocol/reports.ts";
import { startFakeControlPlane, type FakeControlPlane } from "../harness/fakeControlPlane.ts";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const CLUSTER = crypto.randomUUID();
const SECRET = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;

let tmp: string;
let pkg: string;
let cp: FakeControlPlane;
let bridge: ChildProcess | undefined;
const output: string[] = [];

/** The environment without npm_* settings of the `npm run`/`npx` that started vitest (workspaces, dry-run, …). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-install-"));
  const { stdout } = await run("npm", ["pack", ROOT, "--pack-destination", tmp, "--json", "--ignore-scripts", "--loglevel=error"], { cwd: tmp, env: cleanEnv(), maxBuffer: 8 * 1024 * 1024 });
  const tarball = path.join(tmp, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  await run("tar", ["xzf", tarball, "-C", tmp]);
  pkg = path.join(tmp, "package");
  // npm pack leaves the lockfile out; `npm ci` needs it, and an operator's copy comes from the same commit.
  await fs.copyFile(path.join(ROOT, "package-lock.json"), path.join(pkg, "package-lock.json"));
  await run("npm", ["ci", "--omit=dev", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: pkg, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024, timeout: 540_000 });
  cp = await startFakeControlPlane({ clusterId: CLUSTER, secret: SECRET });
}, 600_000);

afterAll(async () => {
  if (bridge && bridge.exitCode === null) {
    bridge.kill("SIGKILL");
  }
  await cp?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("the bridge installed with npm ci --omit=dev", () => {
  it("ships only what it needs: the bridge, the protocol, the node package; no devDependencies installed", async () => {
    const has = (p: string) => fs.access(path.join(pkg, p)).then(() => true, () => false);
    for (const p of ["bridge/bin.mjs", "bridge/main.ts", "protocol/commands.ts", "flows/node-package/package.json", "node_modules/tsx", "node_modules/mqtt", "node_modules/ws", "node_modules/node-red", "node_modules/p-retry"]) {
      expect(await has(p), p).toBe(true);
    }
    for (const p of ["functions", "durable", "dev", "test", "node_modules/vitest", "node_modules/aedes", "node_modules/wrangler"]) {
      expect(await has(p), p).toBe(false);
    }
  });

  it("npx redforge-bridge --help prints the usage", async () => {
    const { stdout } = await run("npx", ["--no-install", "redforge-bridge", "--help"], { cwd: pkg, env: cleanEnv(), timeout: 60_000 });
    expect(stdout).toMatch(/^Usage: redforge-bridge --cluster <id> --api <url>/);
    expect(stdout).toContain("--driver <kind>");
  }, 90_000);

  it("connects to the control plane with signed requests and answers instance.create with a running Node-RED", async () => {
    const stateDir = path.join(tmp, "state");
    bridge = spawn(process.execPath, [path.join(pkg, "bridge/bin.mjs"), "--cluster", CLUSTER, "--api", cp.url, "--driver", "process", "--state-dir", stateDir], {
      cwd: pkg, env: cleanEnv({ REDFORGE_CLUSTER_SECRET: SECRET }), stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [bridge.stdout!, bridge.stderr!]) stream.on("data", (d: Buffer) => output.push(d.toString()));
    const log = () => output.join("").slice(-3000);

    await vi.waitFor(() => expect(cp.frames.some((f) => f.kind === "hello"), log()).toBe(true), { timeout: 60_000, interval: 100 });
    expect(cp.tokenRequests).toHaveLength(1);

    const id = crypto.randomUUID();
    const create: Command = {
      id: newCommandId(), type: "instance.create", instanceId: id, issuedAt: new Date().toISOString(),
      args: { spec: { id, name: `inst-${id.slice(0, 8)}`, flows: [], resources: {}, env: {}, credentialSecret: "0123456789abcdef0123" } },
    };
    cp.enqueue(create);
    const answer = await vi.waitFor(() => {
      const hit = cp.reports.find((r) => r.report.type === "command.result" && r.report.commandId === create.id);
      expect(hit, log()).toBeDefined();
      return hit!.report as Extract<Report, { type: "command.result" }>;
    }, { timeout: 90_000, interval: 100 });
    expect(answer, log()).toMatchObject({ status: "ok", result: { state: "running" } });
    // The Node-RED it started answers (the installed node-red, with its admin token).
    const admin = (answer.result as { endpoints: { admin: string } }).endpoints.admin;
    expect((await fetch(admin)).status).toBe(200);
    expect(cp.refused).toEqual([]);

    const destroy: Command = { id: newCommandId(), type: "instance.destroy", instanceId: id, issuedAt: new Date().toISOString(), args: { deleteData: true } };
    cp.enqueue(destroy);
    await vi.waitFor(() => expect(cp.reports.some((r) => r.report.type === "command.result" && r.report.commandId === destroy.id)).toBe(true), { timeout: 60_000, interval: 100 });

    const exited = new Promise<number | null>((resolve) => bridge!.once("exit", (code) => resolve(code)));
    bridge.kill("SIGTERM");
    expect(await exited, log()).toBe(0);
    await expect(fetch(admin)).rejects.toThrow();
  }, 240_000);
});
