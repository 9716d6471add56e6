/**
 * The process driver's data plane (bridge/dataplane/): the instances' front
 * doors run in their own process, so the bridge can crash and come back
 * without the traffic noticing, and held MQTT work is spooled to disk before
 * the broker forgets it, so even a crash of the data plane loses nothing it
 * held. Real Node-RED, real broker; the bridge runs as a child process
 * (test/harness/dataplaneBridge.ts) so it can be killed with SIGKILL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { randomUUID } from "node:crypto";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BlueGreen } from "../../bridge/deploy/blueGreen.ts";
import { attachDataPlane } from "../../bridge/dataplane/launcher.ts";
import { DATA_PLANE_PROTOCOL, dataPlaneFiles, dataPlaneInfo, shutdownResult, statusResult, type DataPlaneStatus } from "../../bridge/dataplane/protocol.ts";
import { requestDataPlane } from "../../bridge/dataplane/transport.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { SpoolFile } from "../../bridge/routing/holdSpool.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { until } from "../harness/eventually.ts";
import { LoadGenerator, losses, NO_LOSS, RESULTS_TOPIC, testBroker, zeroLossFlow, type TestBroker } from "../harness/zeroLoss.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BRIDGE_SCRIPT = path.join(ROOT, "test/harness/dataplaneBridge.ts");

let tmp: string;
let broker: TestBroker;
let tarball: string;
const bridges: BridgeProcess[] = [];
const clients: MqttClient[] = [];

const spec = (id: string, name: string) => ({
  id, name, flows: zeroLossFlow({ version: "v1", entry: "gate", broker: broker.address }),
  resources: {}, env: {}, credentialSecret: "dataplane-test-credential-secret",
});
const v2 = () => zeroLossFlow({ version: "v2", entry: "gate", broker: broker.address });

/** A bridge in a child process: each call runs one driver / blue-green step there. */
class BridgeProcess {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private n = 0;
  readonly output: string[] = [];
  readonly exited: Promise<void>;

  constructor(stateDir: string) {
    this.child = spawn(process.execPath, ["--import", "tsx", BRIDGE_SCRIPT, JSON.stringify({ stateDir, mqttUrl: broker.url, tarball })], {
      cwd: ROOT, stdio: ["pipe", "pipe", "pipe"],
    });
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    readline.createInterface({ input: this.child.stderr! }).on("line", (l) => { this.output.push(l); if (process.env.DP_LOG) console.log(l); });
    readline.createInterface({ input: this.child.stdout! }).on("line", (line) => {
      if (!line.startsWith("ANSWER ")) return void this.output.push(line);
      const a = JSON.parse(line.slice(7)) as { n: number; ok: boolean; value?: unknown; error?: string };
      const w = this.waiting.get(a.n);
      this.waiting.delete(a.n);
      if (a.ok) w?.resolve(a.value);
      else w?.reject(new Error(`${a.error}\n${this.output.slice(-20).join("\n")}`));
    });
    void this.exited.then(() => { for (const w of this.waiting.values()) w.reject(new Error(`bridge exited\n${this.output.slice(-20).join("\n")}`)); });
    bridges.push(this);
  }

  ready(): Promise<unknown> {
    return this.wait(0);
  }

  call<T = Record<string, unknown>>(call: string, ...args: unknown[]): Promise<T> {
    const n = ++this.n;
    this.child.stdin!.write(`${JSON.stringify({ n, call, args })}\n`);
    return this.wait(n) as Promise<T>;
  }

  private wait(n: number): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiting.set(n, { resolve, reject }));
  }

  /** A crash: no shutdown code runs. */
  async kill9(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** A shutdown for good: the driver closes (Node-REDs and the data plane stop). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    await this.exited;
  }
}

async function startBridge(stateDir: string): Promise<BridgeProcess> {
  const bridge = new BridgeProcess(stateDir);
  await bridge.ready();
  return bridge;
}

const dataPlanePid = (stateDir: string) => dataPlaneInfo.parse(JSON.parse(fs.readFileSync(dataPlaneFiles(stateDir).info, "utf8"))).pid;
const dataPlaneStatus = (stateDir: string) => requestDataPlane(dataPlaneFiles(stateDir).socket, "GET", "/status", undefined, statusResult, 5_000);
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** What reaches a runtime's active topic (in order) and which version answered each message. */
async function watch(runtimeId: string): Promise<{ arrived: string[]; answers: Map<string, string[]> }> {
  const arrived: string[] = [];
  const answers = new Map<string, string[]>();
  const c = await connectAsync(broker.url, { protocolVersion: 4, clean: true });
  clients.push(c);
  c.on("message", (topic, payload) => {
    const body = JSON.parse(payload.toString()) as { seq?: string; payload?: { seq: string; version: string } };
    if (topic === RESULTS_TOPIC && body.payload) answers.set(body.payload.seq, [...(answers.get(body.payload.seq) ?? []), body.payload.version]);
    else if (body.seq) arrived.push(body.seq);
  });
  await c.subscribeAsync([`redforge/active/${runtimeId}`, RESULTS_TOPIC], { qos: 1 });
  return { arrived, answers };
}

async function publishNumbered(instanceId: string, prefix: string, count: number): Promise<string[]> {
  const p = await connectAsync(broker.url, { protocolVersion: 4, clean: true });
  clients.push(p);
  const seqs = Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
  // One after another: the order they reach the broker is the order the test expects back.
  for (const seq of seqs) await p.publishAsync(`redforge/ingest/${instanceId}`, JSON.stringify({ seq }), { qos: 1 });
  return seqs;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rf-dp-"));
  broker = await testBroker();
  tarball = await packNodePackage(path.join(tmp, "pkg"));
}, 120_000);

afterEach(async () => {
  for (const b of bridges.splice(0)) await b.stop();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync().catch(() => {})));
  await broker?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("data plane", () => {
  it("the HTTP and MQTT fronts keep answering while the bridge is killed (-9) and restarted", async () => {
    const stateDir = path.join(tmp, "a");
    const id = randomUUID();
    const first = await startBridge(stateDir);
    const endpoints = await first.call<{ front: string }>("create", spec(id, "dp-crash"));
    const load = new LoadGenerator({ brokerUrl: broker.url, mqttTopic: `redforge/ingest/${id}`, httpUrl: `${endpoints.front}/work`, rate: 200 });
    await load.start();
    await new Promise((r) => setTimeout(r, 1_500));
    const pid = dataPlanePid(stateDir);
    const killedAt = Date.now();
    await first.kill9();
    // The bridge stays dead for 2 s, as in the harness; the data plane must not notice.
    await new Promise((r) => setTimeout(r, 2_000));
    const restartedAt = Date.now();
    const second = await startBridge(stateDir);
    const adopted = await second.call<{ front: string }>("adopt", id);
    await new Promise((r) => setTimeout(r, 1_500));
    const report = await load.stop();
    const whileDead = [...report.answers.values()].filter((a) => a.sent.at > killedAt && a.sent.at < restartedAt && a.answers.length === 1);
    console.log(`bridge kill -9 + restart after 2 s: sent ${report.sent.mqtt} MQTT + ${report.sent.http} HTTP; lost ${report.lostMqtt.length}, duplicated ${report.duplicatedMqtt.length}, `
      + `HTTP unanswered ${report.httpUnanswered}, errors ${report.httpErrors}; answered while no bridge ran: ${whileDead.filter((a) => a.sent.via === "mqtt").length} MQTT + ${whileDead.filter((a) => a.sent.via === "http").length} HTTP`);

    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    expect(report.sent.mqtt).toBeGreaterThan(300);
    // Traffic was answered while no bridge ran at all.
    expect(whileDead.filter((a) => a.sent.via === "http").length).toBeGreaterThan(10);
    expect(whileDead.filter((a) => a.sent.via === "mqtt").length).toBeGreaterThan(100);
    // The restarted bridge attached to the same data plane: same process, same front URL.
    expect(dataPlanePid(stateDir)).toBe(pid);
    expect(adopted.front).toBe(endpoints.front);
    // A shutdown for good stops the data plane too.
    await second.stop();
    await until("the data plane to stop", () => !alive(pid), { timeoutMs: 30_000 });
    expect(fs.existsSync(dataPlaneFiles(stateDir).socket)).toBe(false);
  }, 240_000);

  it("held MQTT work in the spool survives a kill -9 of the data plane and reaches green exactly once, in order", async () => {
    const stateDir = path.join(tmp, "b");
    const id = randomUUID();
    const driver = new ProcessDriver({ stateDir, nodePackages: [tarball], mqttUrl: broker.url,
      ...(process.env.DP_LOG ? { log: (i: string, line: string) => console.log(`[${i.slice(0, 8)}] ${line}`) } : {}) });
    try {
      await driver.create(spec(id, "dp-spool"));
      const bg = new BlueGreen(driver, driver.adminApi, true);
      const { blue, green } = await bg.prepare(id);
      await bg.deployFlows(green, v2());
      const seen = await watch(green);
      await bg.setGate(id, { mode: "drain", runtime: blue, drainTimeoutMs: 10_000 });
      const held = await publishNumbered(id, "s", 150);
      await until("every message held in the spool", async () => (await driver.mqttFront(id)!.counters()).held === held.length, { timeoutMs: 60_000 });
      const spool = path.join(stateDir, id, "hold.spool");
      expect(fs.statSync(spool).size).toBeGreaterThan(0);

      const pid = dataPlanePid(stateDir);
      process.kill(pid, "SIGKILL");
      await until("the data plane to die", () => !alive(pid));
      // The switch finds the data plane gone, starts another with this bridge's fronts; it replays the spool.
      const outcome = await bg.switchRoute(id, blue, green);
      expect(dataPlanePid(stateDir)).not.toBe(pid);
      expect(outcome.replayed).toBe(held.length);
      await until("every held message answered", () => held.every((s) => seen.answers.has(s)), { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 500)); // time for a duplicate to show up
      expect(seen.arrived).toEqual(held);
      expect(held.filter((s) => seen.answers.get(s)?.length !== 1 || seen.answers.get(s)![0] !== "v2")).toEqual([]);
      expect(fs.statSync(spool).size).toBe(0);
    } finally {
      await driver.close();
    }
  }, 240_000);

  it("a restarted bridge re-entering a hand-over converges: nothing lost, nothing twice", async () => {
    const stateDir = path.join(tmp, "c");
    const id = randomUUID();
    const first = await startBridge(stateDir);
    await first.call("create", spec(id, "dp-reenter"));
    const { blue, green } = await first.call<{ blue: string; green: string }>("prepare", id);
    await first.call("deployFlows", green, v2());
    const seen = await watch(green);
    await first.call("drain", id, blue);
    const held = await publishNumbered(id, "h", 100);
    await until("every message held", async () => (await dataPlaneStatus(stateDir)).fronts.find((f) => f.instanceId === id)?.mqtt?.held === held.length, { timeoutMs: 60_000 });
    // The switch step begins (new work buffered, hold queue complete), then the bridge dies before it activates green.
    const begun = await first.call<{ held: number }>("beginHandover", id, blue, green);
    expect(begun.held).toBe(held.length);
    const buffered = await publishNumbered(id, "b", 50);
    await until("new work buffered", async () => (await dataPlaneStatus(stateDir)).fronts.find((f) => f.instanceId === id)?.mqtt?.buffered === buffered.length, { timeoutMs: 60_000 });
    await first.kill9();

    // The control plane re-sends the switch to the restarted bridge: it joins the hand-over the data plane kept.
    const second = await startBridge(stateDir);
    const outcome = await second.call<{ replayed: number; bufferedDuringSwitch: number; to: string }>("switchRoute", id, blue, green);
    expect(outcome).toMatchObject({ replayed: held.length, bufferedDuringSwitch: buffered.length, to: green });
    // And once more (a switch sent again after it completed): nothing is replayed again (below: each message arrives
    // once), and the answer says what the switch did, not zeros (zeros would read as held work never replayed).
    const again = await second.call<{ replayed: number; bufferedDuringSwitch: number }>("switchRoute", id, blue, green);
    expect(again).toEqual(outcome);

    const all = [...held, ...buffered];
    await until("every message answered", () => all.every((s) => seen.answers.has(s)), { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.arrived).toEqual(all);
    expect(all.filter((s) => seen.answers.get(s)?.length !== 1 || seen.answers.get(s)![0] !== "v2")).toEqual([]);
  }, 240_000);

  it("a data plane of another protocol version is replaced only while none of its fronts holds work", async () => {
    const stateDir = path.join(tmp, "d");
    fs.mkdirSync(stateDir, { recursive: true });
    const socket = dataPlaneFiles(stateDir).socket;
    // An older data plane as far as the launcher can tell: another protocol on /ping, its fronts on /status.
    const older = spawn("sleep", ["300"]);
    let heldMqtt = 3;
    let stopAsked = false;
    const status = (): DataPlaneStatus => ({
      pid: older.pid!, version: DATA_PLANE_PROTOCOL - 1, protocol: DATA_PLANE_PROTOCOL - 1, startedAt: new Date().toISOString(),
      fronts: [{ instanceId: "busy-instance", mqtt: { forwarded: 10, held: heldMqtt, buffered: 0 } }],
    });
    const fake = http.createServer((req, res) => {
      if (req.url === "/shutdown") {
        stopAsked = true;
        older.kill("SIGKILL");
        res.end(JSON.stringify({ stopping: true }), () => { fake.close(); fake.closeAllConnections(); });
        return;
      }
      res.end(JSON.stringify(status()));
    });
    await new Promise<void>((resolve) => fake.listen(socket, resolve));
    const lines: string[] = [];
    const launch = { stateDir, host: "127.0.0.1", log: (l: string) => lines.push(l) };
    try {
      const mismatch = `speaks control protocol ${DATA_PLANE_PROTOCOL - 1}, this bridge speaks ${DATA_PLANE_PROTOCOL}`;
      await expect(attachDataPlane(launch)).rejects.toThrow(`${mismatch}, and the fronts of busy-instance hold work`);
      expect(stopAsked).toBe(false);
      expect(alive(older.pid!)).toBe(true);

      heldMqtt = 0; // the deployment finished with the older bridge
      const attached = await attachDataPlane(launch);
      expect(stopAsked).toBe(true);
      expect(attached.spawned).toBe(true);
      expect(lines.join("\n")).toContain(`${mismatch}; none of its 1 front(s) holds work, so it is replaced`);
      expect(dataPlanePid(stateDir)).toBe(attached.pid);
      // The new one stops once asked (nothing of it may outlive the test).
      await requestDataPlane(socket, "POST", "/shutdown", { onlyIfIdle: false }, shutdownResult, 5_000).catch(() => undefined);
      await until("the new data plane to stop", () => !alive(attached.pid), { timeoutMs: 30_000 });
    } finally {
      older.kill("SIGKILL");
      fake.close();
      await requestDataPlane(socket, "POST", "/shutdown", { onlyIfIdle: false }, shutdownResult, 5_000).catch(() => undefined);
    }
  }, 120_000);
});

describe("hold spool", () => {
  it("keeps records across a reopen, cuts a torn last record, and consumes only what was replayed", () => {
    const file = path.join(tmp, "spool-unit", "hold.spool");
    const first = new SpoolFile(file);
    for (const m of ["one", "two", "three"]) first.append(Buffer.from(m));
    first.close();
    // A process killed in the middle of a write: a header that promises more bytes than follow.
    fs.appendFileSync(file, Buffer.from([0, 0, 0, 9, 0x61]));
    const reopened = new SpoolFile(file);
    expect(reopened.count).toBe(3);
    expect(reopened.readAll().map(String)).toEqual(["one", "two", "three"]);
    reopened.append(Buffer.from("four")); // lands after "three", not after the torn bytes
    const replayed = reopened.readAll().slice(0, 2);
    reopened.append(Buffer.from("five")); // arrived while the replay ran
    reopened.consume(replayed.length);
    expect(reopened.readAll().map(String)).toEqual(["three", "four", "five"]);
    reopened.consume(3);
    expect(reopened.count).toBe(0);
    expect(fs.statSync(file).size).toBe(0);
    reopened.close();
  });
});
