/**
 * The bridge against a fake control plane (real HTTP + WebSocket on
 * 127.0.0.1, production signature verification) and a recording driver:
 * signed token, hello, each command run once and answered once, redelivery
 * answered from the ledger (also after a restart), reconnect with backoff,
 * auth failures, garbage frames, not-implemented types, status events.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBridge, type BridgeOptions, type RunningBridge } from "../../bridge/main.ts";
import { lineLogger } from "../../bridge/log.ts";
import { BRIDGE_VERSION } from "../../bridge/version.ts";
import { newCommandId, type Command, type CommandType } from "../../protocol/commands.ts";
import type { Report } from "../../protocol/reports.ts";
import { startFakeControlPlane, type FakeControlPlane } from "../harness/fakeControlPlane.ts";
import { FakeDriver } from "../harness/fakeDriver.ts";
import { until } from "../harness/eventually.ts";

const CLUSTER = crypto.randomUUID();
const SECRET = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
const logs: string[] = [];
const tmpDirs: string[] = [];
let cp: FakeControlPlane;
let stateDir: string;
let driver: FakeDriver;
let bridge: RunningBridge;
let createCmd: Command;

const log = lineLogger((line) => {
  logs.push(line);
  if (process.env.BRIDGE_LOG) console.log(line);
});

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-bridge-"));
  tmpDirs.push(dir);
  return dir;
}

function start(overrides: Partial<BridgeOptions> = {}): Promise<RunningBridge> {
  return startBridge({
    clusterId: CLUSTER, api: cp.url, secret: SECRET, driver, stateDir, log,
    // Pinned jitter makes every backoff delay its ceiling, so the test can check the schedule.
    linkBackoff: { baseMs: 100, capMs: 400, random: () => 1 }, linkStableAfterMs: 0,
    reportRetry: { attempts: 5, baseMs: 20, capMs: 100 }, drainMs: 300,
    ...overrides,
  });
}

/** Waits for the bridge, showing its last log lines on a timeout. */
const untilLogged = <T>(what: string, probe: () => T | undefined | false | null, timeoutMs = 10_000) =>
  until(what, probe, { timeoutMs, intervalMs: 20, explain: () => `last log lines:\n${logs.slice(-15).join("\n")}` });

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function command(type: CommandType, args: Record<string, unknown>, instanceId?: string): Command {
  return { id: newCommandId(), type, ...(instanceId ? { instanceId } : {}), args, issuedAt: new Date().toISOString() };
}

function spec(id: string = crypto.randomUUID()) {
  return { id, name: `inst-${id.slice(0, 8)}`, flows: [], resources: {}, env: { TZ: "UTC" }, credentialSecret: "0123456789abcdef0123" };
}

type ResultReport = Extract<Report, { type: "command.result" }>;
const results = (id: string) => cp.reports.filter((r) => r.report.type === "command.result" && r.report.commandId === id);
const hellos = () => cp.frames.filter((f) => f.kind === "hello");

/** Enqueues a command and waits for its (first) answer. */
async function run(cmd: Command): Promise<ResultReport> {
  const before = results(cmd.id).length;
  cp.enqueue(cmd);
  const hit = await untilLogged(`command.result for ${cmd.type}`, () => results(cmd.id)[before]);
  return hit.report as ResultReport;
}

beforeAll(async () => {
  cp = await startFakeControlPlane({ clusterId: CLUSTER, secret: SECRET });
  stateDir = await tempDir();
  driver = new FakeDriver();
  bridge = await start();
});

afterAll(async () => {
  await bridge?.close();
  await cp?.close();
  for (const dir of tmpDirs) await fs.rm(dir, { recursive: true, force: true });
});

describe("bridge ↔ control plane", () => {
  it("fetches a signed cluster token, opens the link with it and says hello", async () => {
    const hello = await untilLogged("hello", () => hellos()[0]);
    expect(hello).toMatchObject({ kind: "hello", bridgeVersion: BRIDGE_VERSION, driver: "process" });
    // The fake records a token request only when its signature verified.
    expect(cp.tokenRequests).toHaveLength(1);
    expect(cp.tokenRequests[0]!.bridgeVersion).toBe(BRIDGE_VERSION);
    expect(cp.refused).toEqual([]);
    expect(cp.upgrades).toEqual([expect.objectContaining({ status: 101 })]);
    expect(logs.join("\n")).toMatch(/link: connected to .* as cluster/);
  });

  it("runs a command once and answers it with exactly one signed command.result", async () => {
    const s = spec();
    createCmd = command("instance.create", { spec: s });
    const result = await run(createCmd);
    expect(result).toMatchObject({ status: "ok", result: { state: "running", endpoints: { admin: `http://127.0.0.1:1880/${s.name}` } } });
    expect(driver.calls).toEqual([{ method: "create", args: [s] }]);
    expect(cp.frames).toContainEqual(expect.objectContaining({ kind: "received", commandId: createCmd.id }));
    await bridge.idle();
    await pause(200);
    expect(results(createCmd.id)).toHaveLength(1);
    expect(cp.outbox()).toEqual([]);
  });

  it("answers a redelivered command again from its ledger, without running it twice", async () => {
    cp.deliver(createCmd);
    await untilLogged("second answer", () => results(createCmd.id)[1]);
    expect(driver.count("create")).toBe(1);
    const [first, second] = results(createCmd.id);
    expect(second!.report).toEqual(first!.report);
    expect(second!.webhookId).not.toBe(first!.webhookId);
    expect(logs.join("\n")).toContain(`command ${createCmd.id} (instance.create) was already executed`);
  });

  it("still knows the command after a restart with the same state dir", async () => {
    await bridge.close();
    expect(driver.closed).toBe(true);
    driver = new FakeDriver();
    const hellosBefore = hellos().length;
    bridge = await start();
    await untilLogged("hello after restart", () => hellos().length > hellosBefore);
    cp.deliver(createCmd);
    await untilLogged("answer after restart", () => results(createCmd.id)[2]);
    expect(results(createCmd.id)[2]!.report).toEqual(results(createCmd.id)[0]!.report);
    expect(driver.calls).toEqual([]);
  });

  it("answers a command cut off by a shutdown with 'interrupted' after restart, instead of running it again", async () => {
    const id = crypto.randomUUID();
    driver.behaviour.set("start", "hang");
    const cmd = command("instance.start", {}, id);
    cp.enqueue(cmd);
    await untilLogged("driver.start called", () => driver.count("start") === 1);
    await bridge.close();
    expect(results(cmd.id)).toEqual([]);

    driver = new FakeDriver();
    bridge = await start(); // the control plane redelivers the unanswered command on connect
    const answer = await untilLogged("interrupted answer", () => results(cmd.id)[0]);
    expect(answer.report).toMatchObject({ status: "error", error: { code: "interrupted" } });
    expect(driver.count("start")).toBe(0);
  });

  it("reconnects with exponential backoff after the server drops the link", async () => {
    await untilLogged("connected", () => bridge.link.connected);
    const tokensBefore = cp.tokenRequests.length;
    const upgradesBefore = cp.upgrades.length;
    const hellosBefore = hellos().length;
    cp.knobs.refuseUpgrades = 3;
    const dropped = Date.now();
    cp.dropConnections();
    await untilLogged("hello after drop", () => hellos().length > hellosBefore);

    const attempts = cp.upgrades.slice(upgradesBefore);
    expect(attempts.map((a) => a.status)).toEqual([503, 503, 503, 101]);
    const gaps = [attempts[0]!.at - dropped, ...attempts.slice(1).map((a, i) => a.at - attempts[i]!.at)];
    // base 100 ms doubling to the 400 ms cap (jitter pinned to its ceiling); small slack for timer granularity.
    [100, 200, 400, 400].forEach((min, i) => expect(gaps[i]).toBeGreaterThanOrEqual(min - 15));
    expect(cp.tokenRequests.length).toBe(tokensBefore); // the token still had minutes to live
    expect(logs.join("\n")).toMatch(/link: connection closed \(code 1006\); reconnecting in 0\.1 s \(attempt 1\)/);
    expect(logs.join("\n")).toMatch(/link upgrade refused: HTTP 503; reconnecting in 0\.4 s \(attempt 3\)/);
  });

  it("fetches a new token when the link refuses the old one (401) and before a token expires", async () => {
    cp.knobs.tokenTtlMs = 30_000; // under the bridge's 60 s refresh margin
    const tokensBefore = cp.tokenRequests.length;
    const hellosBefore = hellos().length;
    cp.revokeTokens();
    cp.dropConnections();
    await untilLogged("hello with a new token", () => hellos().length > hellosBefore);
    expect(cp.upgrades.some((u) => u.status === 401)).toBe(true);
    expect(cp.tokenRequests.length).toBe(tokensBefore + 1);
    expect(logs.join("\n")).toMatch(/AUTH FAILED: control plane refused the link upgrade \(401\)/);

    const upgradesBefore = cp.upgrades.length;
    cp.dropConnections();
    await untilLogged("hello after refresh", () => hellos().length > hellosBefore + 1);
    expect(cp.tokenRequests.length).toBe(tokensBefore + 2);
    expect(cp.upgrades.slice(upgradesBefore).map((u) => u.status)).toEqual([101]);
    cp.knobs.tokenTtlMs = 600_000;
  });

  it("keeps retrying, with a clear log, while the control plane refuses its secret", async () => {
    const wrongSecret = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
    const impostorLogs: string[] = [];
    const impostor = await start({
      secret: wrongSecret, driver: new FakeDriver(), stateDir: await tempDir(),
      log: lineLogger((line) => impostorLogs.push(line)),
    });
    try {
      await untilLogged("three refusals", () => impostorLogs.filter((l) => l.includes("AUTH FAILED")).length >= 3);
      expect(impostorLogs.join("\n")).toMatch(/control plane refused the token request \(401 invalid_signature\): check the cluster id and the cluster secret/);
      expect(cp.refused.filter((r) => r.reason === "bad_signature").length).toBeGreaterThanOrEqual(3);
      expect(impostor.link.connected).toBe(false);
    } finally {
      await impostor.close();
    }
  });

  it("ignores frames that are not JSON or not in the protocol, stays connected, and answers a malformed command with an error", async () => {
    await untilLogged("connected", () => bridge.link.connected);
    const upgradesBefore = cp.upgrades.length;
    cp.sendRaw("this is not json {");
    cp.sendRaw({ kind: "shutdown", now: true });
    cp.sendRaw({ kind: "command" });
    cp.sendRaw({ kind: "command", command: { id: "cmd_malformed", type: "instance.explode", args: {}, issuedAt: new Date().toISOString() } });
    const bad = await untilLogged("malformed command answer", () => results("cmd_malformed")[0]);
    expect(bad.report).toMatchObject({ status: "error", error: { code: "invalid_command" } });

    const ok = await run(command("instance.stop", {}, crypto.randomUUID()));
    expect(ok).toMatchObject({ status: "ok", result: { state: "stopped" } });
    expect(cp.upgrades.length).toBe(upgradesBefore);
    const text = logs.join("\n");
    expect(text).toContain("link: ignored a frame that is not JSON: this is not json {");
    expect(text).toMatch(/link: ignored an invalid frame \(.*\): \{"kind":"shutdown"/);
  });

  it("a driver without blue-green answers the deployment commands with not_implemented, touching nothing", async () => {
    const id = crypto.randomUUID();
    const deploymentId = crypto.randomUUID();
    const callsBefore = driver.calls.length;
    const cases: [CommandType, Record<string, unknown>][] = [
      ["deployment.prepare", { deploymentId }], ["gate.set", { mode: "drain" }], ["gate.replay", {}],
      ["smoke.run", { runtime: "green" }], ["route.switch", { from: "blue", to: "green" }],
      ["deployment.rollback", { deploymentId, blue: "blue", switched: false }], ["deployment.cleanup", { deploymentId, runtime: "blue" }],
    ];
    for (const [type, args] of cases) {
      const res = await run(command(type, args, id));
      expect(res, type).toMatchObject({ status: "error", error: { code: "not_implemented", message: expect.stringContaining(type) } });
    }
    expect(driver.calls.length).toBe(callsBefore);
  });

  it("maps instance commands to driver calls and reports bad args and driver failures as errors", async () => {
    const id = crypto.randomUUID();
    expect(await run(command("instance.start", {}, id))).toMatchObject({ status: "ok", result: { state: "running" } });
    expect(await run(command("instance.scale", { replicas: 0 }, id))).toMatchObject({ status: "ok", result: { replicas: 0, state: "stopped" } });
    expect(await run(command("flows.deploy", { flows: [{ id: "f1", type: "tab" }], rev: "r1" }, id))).toMatchObject({ status: "ok", result: { rev: "rev-1" } });
    expect(await run(command("instance.destroy", { deleteData: true }, id))).toMatchObject({ status: "ok", result: { state: "destroyed" } });
    expect(driver.calls.filter((c) => c.args[0] === id)).toEqual([
      { method: "start", args: [id] }, { method: "scale", args: [id, 0] },
      { method: "deployFlows", args: [id, [{ id: "f1", type: "tab" }], { rev: "r1" }] }, { method: "destroy", args: [id, { deleteData: true }] },
    ]);

    const callsBefore = driver.calls.length;
    expect(await run(command("instance.scale", { replicas: -1 }, id))).toMatchObject({ status: "error", error: { code: "invalid_args" } });
    expect(await run(command("instance.stop", {}))).toMatchObject({ status: "error", error: { code: "invalid_args", message: "instance.stop needs an instanceId" } });
    expect(driver.calls.length).toBe(callsBefore);

    driver.behaviour.set("start", new Error("port 1880 is already in use"));
    expect(await run(command("instance.start", {}, id))).toMatchObject({ status: "error", error: { code: "internal", message: "port 1880 is already in use" } });
    driver.behaviour.delete("start");
  });

  it("answers health.report with a health report of the known instances, then a command.result", async () => {
    const s = spec();
    await run(command("instance.create", { spec: s }));
    const sweep = command("health.report", {});
    const result = await run(sweep);
    const health = cp.reports.find((r) => r.report.type === "health.report" && r.report.commandId === sweep.id)!.report as Extract<Report, { type: "health.report" }>;
    // Known: the instance created before the restart, and this one; the destroyed one is gone.
    expect(health.instances.map((h) => h.instanceId).sort()).toEqual([s.id, (createCmd.args.spec as { id: string }).id].sort());
    expect(health.instances[0]).toMatchObject({ state: "running", live: true, ready: true, flowsState: "start" });
    expect(result).toMatchObject({ status: "ok", result: { instances: 2 } });

    const only = command("health.report", { instanceIds: [s.id] });
    await run(only);
    const onlyHealth = cp.reports.find((r) => r.report.type === "health.report" && r.report.commandId === only.id)!.report as Extract<Report, { type: "health.report" }>;
    expect(onlyHealth.instances.map((h) => h.instanceId)).toEqual([s.id]);
  });

  it("turns driver status events into instance.status reports, in order, retrying failed deliveries with new webhook ids", async () => {
    const id = crypto.randomUUID();
    const refusedBefore = cp.refused.length;
    cp.knobs.failReports = 2;
    driver.emit(id, "failed", "node-red exited with code 1");
    driver.emit(id, "starting");
    driver.emit(id, "running");
    const mine = () => cp.reports.filter((r) => r.report.type === "instance.status" && r.report.instanceId === id);
    await untilLogged("three status reports", () => mine().length === 3);
    expect(mine().map((r) => r.report)).toEqual([
      { type: "instance.status", instanceId: id, state: "failed", reason: "node-red exited with code 1" },
      { type: "instance.status", instanceId: id, state: "starting" },
      { type: "instance.status", instanceId: id, state: "running" },
    ]);
    // The fake refuses a seen webhook-id: acceptance after two 503s proves every retry had a fresh id.
    expect(cp.refused.slice(refusedBefore).map((r) => r.status)).toEqual([503, 503]);
  });
});
