/**
 * The process driver's supervision on real Node-RED processes: node packages
 * it loads, crashes it repairs, boot loops it gives up on, health it reports
 * for instances that misbehave, and no Node-RED left behind when it goes.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../harness/eventually.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import type { InstanceSpec, InstanceState } from "../../bridge/drivers/driver.ts";

const FIXTURE_PACKAGE = path.resolve("test/fixtures/node-package");
const token = randomBytes(24).toString("base64url");
// Below Linux's ephemeral range (32768+), so the OS does not hand these out to anyone else meanwhile.
const rangeStart = 20_000 + Math.floor(Math.random() * 9_000);
const portRange: [number, number] = [rangeStart, rangeStart + 40];
let tmp: string;
let stateDir: string;
let driver: ProcessDriver;
const events: Array<{ id: string; state: InstanceState; reason?: string; at: number }> = [];

const spec = (flows: unknown[] = []): InstanceSpec => ({
  id: randomUUID(), name: `sv-${randomUUID().slice(0, 6)}`, flows, resources: {}, env: {},
  credentialSecret: "a-credential-secret-of-some-length",
});

const echoFlow = [
  { id: "t1", type: "tab", label: "echo" },
  { id: "in1", type: "http in", z: "t1", url: "/echo", method: "get", wires: [["e1"]] },
  { id: "e1", type: "redforge-test-echo", z: "t1", wires: [["out1"]] },
  { id: "out1", type: "http response", z: "t1", statusCode: "200", wires: [] },
];


const echo = (admin: string) => eventually(async () => {
  const res = await fetch(`${admin}/echo?say=hi`);
  return res.status === 200 ? res.json() : undefined;
});

/**
 * Pids of Node-RED processes working in a directory under `dir`. Node-RED sets
 * process.title to "node-red", which overwrites its argv in /proc (and `ps`):
 * the userDir is no longer on its command line, but it is its cwd.
 */
async function nodeRedPids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    const cwd = await fs.readlink(`/proc/${entry}/cwd`).catch(() => "");
    if (cmd.startsWith("node-red") && cwd.startsWith(dir)) pids.push(Number(entry));
  }
  return pids;
}

async function onlyPid(userDir: string): Promise<number> {
  const pids = await nodeRedPids(userDir);
  expect(pids).toHaveLength(1);
  return pids[0]!;
}

const statesSince = (id: string, t: number) => events.filter((e) => e.id === id && e.at >= t);

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pds-"));
  await fs.chmod(tmp, 0o755);
  stateDir = path.join(tmp, "instances");
  const tarball = await packNodePackage(path.join(tmp, "pkg"), FIXTURE_PACKAGE);
  driver = new ProcessDriver({ stateDir, nodePackages: [tarball], adminToken: token, portRange, restart: { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 100 } });
  driver.onStatus((id, state, reason) => events.push({ id, state, ...(reason ? { reason } : {}), at: Date.now() }));
}, 60_000);

/** Kills what a failed test left running, so one failure does not leak Node-REDs into the next suite. */
async function killLeftovers(dir: string): Promise<number[]> {
  const left = await nodeRedPids(dir);
  for (const pid of left) process.kill(pid, "SIGKILL");
  return left;
}

afterAll(async () => {
  await driver?.close();
  if (!tmp) return;
  const left = await killLeftovers(tmp);
  await fs.rm(tmp, { recursive: true, force: true });
  expect(left, "Node-RED processes still running after close()").toEqual([]);
});

describe("process driver supervision", () => {
  it("loads the node packages it is given, and health tells a live instance without /healthz apart", async () => {
    const s = spec();
    const t0 = Date.now();
    const { endpoints } = await driver.create(s);
    console.log(`create → running with one node package loaded: ${Date.now() - t0} ms`);

    const editor = await fetch(endpoints.admin);
    expect(editor.headers.get("content-type")).toMatch(/text\/html/);
    expect(await editor.text()).toContain("Node-RED");
    const nodes = await fetch(`${endpoints.admin}/nodes`, { headers: { Accept: "application/json", Authorization: `Bearer ${token}` } });
    const types = ((await nodes.json()) as Array<{ types: string[] }>).flatMap((set) => set.types);
    expect(types).toContain("redforge-test-echo");

    await driver.deployFlows(s.id, echoFlow);
    expect(await echo(endpoints.admin)).toEqual({ echoed: { say: "hi" }, by: "redforge-test-echo" });

    const health = await driver.health(s.id);
    expect(health).toMatchObject({ state: "running", live: true, ready: false, flowsState: "start", missingNodeTypes: [], error: "no /healthz route" });
    expect(health.heapUsedBytes).toBeGreaterThan(1_000_000);
    expect(health.rssBytes).toBeGreaterThan(health.heapUsedBytes!);

    const stopFlows = await fetch(`${endpoints.admin}/flows/state`, {
      method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: JSON.stringify({ state: "stop" }),
    });
    expect(stopFlows.status).toBe(200);
    expect((await driver.health(s.id)).flowsState).toBe("stop");
    await driver.destroy(s.id, { deleteData: true });
  }, 60_000);

  it("a Node-RED killed by hand comes back by itself, flows and all", async () => {
    const s = spec(echoFlow);
    const { endpoints } = await driver.create(s);
    const userDir = path.join(stateDir, s.id);
    const before = await onlyPid(userDir);
    const killedAt = Date.now();
    process.kill(before, "SIGKILL");

    await eventually(async () => (statesSince(s.id, killedAt).some((e) => e.state === "running") ? true : undefined));
    const seen = statesSince(s.id, killedAt);
    expect(seen[0]).toMatchObject({ state: "starting", reason: expect.stringContaining("SIGKILL") });
    expect(seen.at(-1)?.state).toBe("running");
    expect(await onlyPid(userDir)).not.toBe(before);
    expect(await echo(endpoints.admin)).toMatchObject({ by: "redforge-test-echo" });
    await driver.destroy(s.id, { deleteData: true });
  }, 60_000);

  it("a crash into a boot loop is retried N times in a row, then reported failed with its cause", async () => {
    const s = spec();
    await driver.create(s);
    const userDir = path.join(stateDir, s.id);
    // A good run first: longer than quickExitMs, so the crash itself is not a quick exit. The run
    // counts from the spawn (its "starting"), not from the create call: create writes the userDir
    // and claims ports before it spawns, which took more than the margin on a loaded machine (the
    // crash then counted as quick, and the loop gave up after 2 boots, not 3).
    const spawnedAt = events.find((e) => e.id === s.id && e.state === "starting")!.at;
    await new Promise((r) => setTimeout(r, Math.max(0, spawnedAt + 5_200 - Date.now())));
    // What an operator's bad edit or a damaged disk looks like at the next boot.
    await fs.writeFile(path.join(userDir, "settings.js"), `throw new Error("settings corrupted on disk");\n`);
    const crashedAt = Date.now();
    process.kill(await onlyPid(userDir), "SIGKILL");

    const failed = await eventually(async () => statesSince(s.id, crashedAt).find((e) => e.state === "failed"));
    // One restart for the crash after a good run, then three quick exits in a row.
    const boots = statesSince(s.id, crashedAt).filter((e) => e.state === "starting");
    expect(boots).toHaveLength(3);
    expect(failed.reason).toMatch(/3 times within 5 s of starting/);
    expect(failed.reason).toContain("settings corrupted on disk");
    expect(await driver.health(s.id)).toMatchObject({ state: "failed", live: false, error: failed.reason });
    expect(await nodeRedPids(userDir)).toEqual([]);
    await driver.destroy(s.id, { deleteData: true });
  }, 60_000);

  it("health never throws: a frozen Node-RED is reported not live, with why", async () => {
    const s = spec();
    await driver.create(s);
    const pid = await onlyPid(path.join(stateDir, s.id));
    process.kill(pid, "SIGSTOP");
    try {
      const frozen = await driver.health(s.id);
      expect(frozen).toMatchObject({ live: false, ready: false, state: "unknown" });
      expect(frozen.error).toMatch(/admin API/);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    expect(await driver.health(s.id)).toMatchObject({ live: true, state: "running" });
    await driver.destroy(s.id, { deleteData: true });
  }, 60_000);

  it("instances created at once get their own ports, all from the configured range", async () => {
    const specs = [spec(), spec()];
    const created = await Promise.all(specs.map((s) => driver.create(s)));
    const ports = created.flatMap(({ endpoints }) => [endpoints.admin, endpoints.front!].map((url) => Number(new URL(url).port)));
    expect(new Set(ports).size).toBe(4);
    for (const port of ports) expect(port).toBeGreaterThanOrEqual(portRange[0]), expect(port).toBeLessThanOrEqual(portRange[1]);
    for (const { endpoints } of created) expect((await fetch(endpoints.admin)).status).toBe(200);
    await Promise.all(specs.map((s) => driver.destroy(s.id, { deleteData: true })));
  }, 60_000);

  it("destroy ends the process and keeps the userDir, unless asked to delete the data", async () => {
    const s = spec(echoFlow);
    const { endpoints } = await driver.create(s);
    const userDir = path.join(stateDir, s.id);
    const pid = await onlyPid(userDir);
    await driver.destroy(s.id);
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    await expect(fetch(endpoints.admin)).rejects.toThrow();
    expect((await driver.health(s.id)).state).toBe("unknown");
    expect(JSON.parse(await fs.readFile(path.join(userDir, "flows.json"), "utf8"))).toHaveLength(4);
    await driver.destroy(s.id, { deleteData: true });
    await expect(fs.access(userDir)).rejects.toThrow();
  }, 60_000);

  it("leaves no Node-RED behind when the bridge process exits without closing the driver", async () => {
    const dir = path.join(tmp, "exiting-bridge");
    // The fixture creates an instance, then calls process.exit(0) with the child still running.
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "test/fixtures/bridge-exits.ts", dir], { timeout: 60_000 });
    expect(stdout).toMatch(/running at http:\/\/127\.0\.0\.1:\d+/);
    const admin = stdout.match(/http:\/\/127\.0\.0\.1:\d+/)![0];
    try {
      await eventually(async () => ((await nodeRedPids(dir)).length === 0 ? true : undefined), 5_000);
      await expect(fetch(admin)).rejects.toThrow();
    } finally {
      await killLeftovers(dir);
    }
  }, 60_000);
});
