/**
 * The settings.js the kubernetes driver ships in each instance's ConfigMap,
 * run by a real Node-RED 4.1.15 process (the version the default image
 * carries), laid out as in the pod: settings.js inside the userDir, the seed
 * flows in a separate read-only directory, secrets in the environment.
 * Also drives the driver's Admin API client against that real Node-RED.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { freePort } from "../../dev/ports.ts";
import { AdminApi, FlowsConflictError, MissingNodeTypesError } from "../../bridge/drivers/nodeRedAdmin.ts";
import { renderSettings } from "../../bridge/drivers/kubernetes/settings.ts";

const TOKEN = "k8s-settings-test-token";
const redJs = createRequire(import.meta.url).resolve("node-red/red.js");
const seedFlows = [
  { id: "t1", type: "tab", label: "probe" },
  { id: "h1", type: "http in", z: "t1", url: "/healthz", method: "get", wires: [["r1"]] },
  { id: "r1", type: "http response", z: "t1", statusCode: "200", wires: [] },
];

interface Running { child: ChildProcess; output: () => string }

/** As the image does it: `red.js --userDir /data flows.json`, plus a loopback-only listener for the test. */
function startNodeRed(userDir: string, port: number, env: Record<string, string>): Running {
  let out = "";
  const child = spawn(process.execPath, [redJs, "--userDir", userDir, "--port", String(port), "-D", "uiHost=127.0.0.1", "flows.json"], {
    env: { PATH: process.env.PATH ?? "", HOME: userDir, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (c) => (out += c));
  child.stderr!.on("data", (c) => (out += c));
  return { child, output: () => out };
}

async function waitForEditor(base: string, run: Running): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (run.child.exitCode !== null) throw new Error(`Node-RED exited ${run.child.exitCode}:\n${run.output()}`);
    const status = await fetch(`${base}/`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Node-RED did not answer on / in time:\n${run.output()}`);
}

async function stop(run: Running): Promise<void> {
  if (run.child.exitCode !== null) return;
  const exited = new Promise((r) => run.child.once("exit", r));
  run.child.kill("SIGTERM");
  await exited;
}

describe("kubernetes instance settings.js under real Node-RED", () => {
  let dir: string;
  let userDir: string;
  let seedDir: string;
  let port: number;
  let base: string;
  let run: Running | undefined;
  const admin = new AdminApi(TOKEN, { deployMs: 10_000, probeMs: 3_000 });
  const env = { REDFORGE_ADMIN_TOKEN: TOKEN, NODE_RED_CREDENTIAL_SECRET: "cred-secret" };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-k8s-settings-"));
    userDir = path.join(dir, "data");
    seedDir = path.join(dir, "seed");
    await fs.mkdir(userDir);
    await fs.mkdir(seedDir);
    await fs.writeFile(path.join(userDir, "settings.js"), renderSettings({ userDir, seedDir, port: 1880 }));
    await fs.writeFile(path.join(seedDir, "flows.json"), JSON.stringify(seedFlows));
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    run = startNodeRed(userDir, port, env);
    await waitForEditor(base, run);
  });

  afterAll(async () => {
    if (run) await stop(run);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("seeds flows.json from the seed directory and serves / without auth (the probe path)", async () => {
    expect(JSON.parse(await fs.readFile(path.join(userDir, "flows.json"), "utf8"))).toEqual(seedFlows);
    expect((await fetch(`${base}/`)).status).toBe(200);
  });

  it("guards the Admin API with the static token from the env", async () => {
    expect((await fetch(`${base}/flows`)).status).toBe(401);
    expect((await fetch(`${base}/flows`, { headers: { Authorization: "Bearer wrong-token-of-other-len" } })).status).toBe(401);
    const ok = await fetch(`${base}/flows`, { headers: { Authorization: `Bearer ${TOKEN}`, "Node-RED-API-Version": "v2" } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { flows: unknown[] }).flows).toEqual(seedFlows);
  });

  it("the driver's probe sees live, ready (/healthz from the seeded flow), flows state and memory", async () => {
    const probe = await admin.probe(base);
    expect(probe).toMatchObject({ live: true, ready: true, flowsState: "start", missingNodeTypes: [] });
    expect(probe.rssBytes).toBeGreaterThan(10_000_000);
  });

  it("deploys through the driver's client, refuses a stale rev, and a restart keeps the deployed flows", async () => {
    const flows = [...seedFlows, { id: "x1", type: "some-missing-type", z: "t1", wires: [] }];
    await expect(admin.deployFlows(base, "test", flows)).rejects.toBeInstanceOf(MissingNodeTypesError);
    // Deployed behind the client's back, the probe still names the missing type.
    const raw = await fetch(`${base}/flows`, {
      method: "POST", body: JSON.stringify({ flows }),
      headers: { Authorization: `Bearer ${TOKEN}`, "Node-RED-API-Version": "v2", "Content-Type": "application/json" },
    });
    expect(raw.status).toBe(200);
    await expect(admin.deployFlows(base, "test", seedFlows, { rev: "stale" })).rejects.toBeInstanceOf(FlowsConflictError);
    expect((await admin.probe(base)).missingNodeTypes).toEqual(["some-missing-type"]);

    await stop(run!);
    run = startNodeRed(userDir, port, env);
    await waitForEditor(base, run);
    const res = await fetch(`${base}/flows`, { headers: { Authorization: `Bearer ${TOKEN}`, "Node-RED-API-Version": "v2" } });
    expect(((await res.json()) as { flows: Array<{ id: string }> }).flows.map((f) => f.id)).toEqual(["t1", "h1", "r1", "x1"]);
  });

  it("refuses to start without an admin token rather than run an open Admin API", async () => {
    const other = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-k8s-settings-"));
    await fs.writeFile(path.join(other, "settings.js"), renderSettings({ userDir: other, seedDir, port: 1880 }));
    const bare = startNodeRed(other, await freePort(), { NODE_RED_CREDENTIAL_SECRET: "x" });
    const code = await new Promise((r) => bare.child.once("exit", r));
    await fs.rm(other, { recursive: true, force: true });
    expect(code).toBe(1);
    expect(bare.output()).toContain("REDFORGE_ADMIN_TOKEN is not set");
  });
});
