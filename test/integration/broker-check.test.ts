/**
 * The bridge's start-up broker check (bridge/brokerCheck.ts) against real brokers: the dev stack's
 * broker and Mosquitto keep every message for an offline persistent session when they have no queue
 * limit; Mosquitto with a limit (its default is 1,000) keeps only that many, which the check reports
 * with the setting to change. Mosquitto runs from the machine's binary on a port of its own.
 */
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkBrokerQueue } from "../../bridge/brokerCheck.ts";
import { BrokerWatch } from "../../bridge/brokerWatch.ts";
import { lineLogger } from "../../bridge/log.ts";
import { startBridge } from "../../bridge/main.ts";
import { FakeDriver } from "../harness/fakeDriver.ts";
import { startFakeControlPlane } from "../harness/fakeControlPlane.ts";
import { MOSQUITTO, startMosquitto } from "../harness/mosquitto.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort } from "../../dev/ports.ts";
import { until } from "../harness/eventually.ts";

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c(); });

async function mosquitto(maxQueued: number): Promise<string> {
  const broker = await startMosquitto(maxQueued);
  cleanup.push(broker.close);
  return broker.url;
}

/**
 * A TCP proxy in front of a broker that cuts its `cut`-th connection (both sides) once the client has
 * sent more than `afterBytes` through it: a broker restarted or dropping a client in the middle of a check.
 */
async function cuttingProxy(brokerPort: number, cut: number, afterBytes: number): Promise<string> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const index = ++accepted;
    const upstream = net.connect(brokerPort, "127.0.0.1");
    for (const s of [client, upstream]) { sockets.add(s); s.on("error", () => {}); s.on("close", () => { sockets.delete(s); client.destroy(); upstream.destroy(); }); }
    let bytes = 0;
    client.on("data", (chunk) => {
      bytes += chunk.length;
      if (index === cut && bytes > afterBytes) { client.destroy(); upstream.destroy(); }
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(async () => { for (const s of sockets) s.destroy(); await new Promise((r) => server.close(r)); });
  return `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function devBroker(): Promise<number> {
  const port = await freePort();
  const broker = await startMqttBroker({ port, host: "127.0.0.1" });
  cleanup.push(() => broker.close());
  return port;
}

/** A bridge (fake driver) on `mqttUrl`, reporting to a fake control plane; its log lines collected. */
async function bridgeOn(mqttUrl: string, opts: { brokerCheckEveryMs?: number } = {}) {
  const clusterId = crypto.randomUUID();
  const secret = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
  const cp = await startFakeControlPlane({ clusterId, secret });
  cleanup.push(() => cp.close());
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-broker-check-bridge-"));
  const logs: string[] = [];
  const bridge = await startBridge({ clusterId, api: cp.url, secret, driver: new FakeDriver(), stateDir, mqttUrl, ...opts, log: lineLogger((l) => logs.push(l)), drainMs: 300 });
  cleanup.push(async () => { await bridge.close(); await fs.rm(stateDir, { recursive: true, force: true }); });
  return { cp, logs };
}

describe("the broker check", () => {
  it("passes on the dev stack's broker: every message queued for an offline session comes back", async () => {
    const port = await freePort();
    const broker = await startMqttBroker({ port, host: "127.0.0.1" });
    cleanup.push(() => broker.close());
    const r = await checkBrokerQueue(broker.url, { messages: 1_200 });
    expect(r).toEqual({ sent: 1_200, queued: 1_200, ok: true });
  }, 120_000);

  it.skipIf(!MOSQUITTO)("names Mosquitto's queue limit when it would drop a restarting data plane's backlog, and passes once it is off", async () => {
    const limited = await checkBrokerQueue(await mosquitto(100), { messages: 300 });
    expect(limited.ok).toBe(false);
    expect(limited.queued).toBe(100);
    expect(limited.advice).toContain("kept only 100 of 300");
    expect(limited.advice).toContain("max_queued_messages 0");

    const unlimited = await checkBrokerQueue(await mosquitto(0), { messages: 1_200 });
    expect(unlimited).toEqual({ sent: 1_200, queued: 1_200, ok: true });
  }, 120_000);

  it.skipIf(!MOSQUITTO)("a bridge starting on such a broker says so in its log and in a signed cluster.warnings report (a warning, not a refusal to start)", async () => {
    const url = await mosquitto(100);
    const { cp, logs } = await bridgeOn(url);
    const line = await until("the broker check's warning", () => logs.find((l) => l.includes("broker check:")), { timeoutMs: 60_000, explain: () => logs.slice(-10).join("\n") });
    expect(line).toMatch(/ warn /);
    expect(line).toContain("kept only 100 of 1200");
    expect(line).toContain("max_queued_messages 0");
    // The control plane gets it too (the console and the API show it; test/workers/clusterWarnings.test.ts).
    const sent = await until("the cluster.warnings report", () => cp.reports.find((r) => r.report.type === "cluster.warnings"), { timeoutMs: 60_000, explain: () => logs.slice(-10).join("\n") });
    expect(sent.report).toMatchObject({ type: "cluster.warnings", warnings: [{ code: "broker_queue_limit", message: expect.stringContaining("kept only 100 of 1200") }] });
  }, 120_000);

  it.skipIf(!MOSQUITTO)("a running bridge checks again: a broker restarted with a queue limit is reported, and a fixed one clears it", async () => {
    const port = await freePort();
    let broker = await startMosquitto(0, { port });
    cleanup.push(() => broker.close());
    const { cp, logs } = await bridgeOn(broker.url, { brokerCheckEveryMs: 500 });
    const warningReports = () => cp.reports.filter((r) => r.report.type === "cluster.warnings").map((r) => r.report as { warnings: Array<{ code: string; detectedAt: string }> });
    const explain = () => logs.slice(-10).join("\n");

    // 1. At start, a clean check: an empty list (clears what an earlier start may have left).
    await until("the start-up report", () => warningReports().length === 1, { timeoutMs: 60_000, explain });
    expect(warningReports()[0]!.warnings).toEqual([]);
    // Later clean checks say nothing new to the control plane.
    await until("two more clean checks", () => logs.filter((l) => l.includes("broker check: an offline session got all")).length >= 3, { timeoutMs: 60_000, explain });
    expect(warningReports()).toHaveLength(1);

    // 2. The broker comes back on the same address with Mosquitto's kind of limit: the next check reports it.
    await broker.close();
    broker = await startMosquitto(100, { port });
    const limited = await until("the queue-limit warning", () => warningReports().find((r) => r.warnings.length > 0), { timeoutMs: 60_000, explain });
    expect(limited.warnings).toEqual([expect.objectContaining({ code: "broker_queue_limit", message: expect.stringContaining("kept only 100 of 1200") })]);
    // Checked again and still limited: not reported again (its detectedAt stays when it was first seen).
    const warnedChecks = () => logs.filter((l) => l.includes("broker check: ") && l.includes("kept only 100")).length;
    await until("two more limited checks", () => warnedChecks() >= 3, { timeoutMs: 60_000, explain });
    expect(warningReports().filter((r) => r.warnings.length > 0)).toHaveLength(1);

    // 3. Fixed again: an empty list clears it.
    await broker.close();
    broker = await startMosquitto(0, { port });
    await until("the clearing report", () => warningReports().length === 3, { timeoutMs: 60_000, explain });
    expect(warningReports()[2]!.warnings).toEqual([]);
  }, 240_000);

  // mqtt.js (reconnectPeriod 0) settles neither a CONNACK wait nor a QoS 1 publish whose connection the
  // broker closed: the check used to stay pending for good, and a running bridge never checked again.
  it("a connection the broker drops mid-check fails the check at once, saying what it was doing", async () => {
    // The publisher's connection (the check's second) cut after a few dozen publishes.
    const cutPublisher = await cuttingProxy(await devBroker(), 2, 3_000);
    await expect(checkBrokerQueue(cutPublisher)).rejects.toThrow(/publisher's connection (failed )?while publishing \(\d+ of 1200 acknowledged\)|closed the publisher's connection while publishing \(\d+ of 1200 acknowledged\)/);
    // A broker that closes the connection before its CONNACK.
    const closer = net.createServer((s) => s.once("data", () => s.end()));
    await new Promise<void>((resolve) => closer.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => new Promise((r) => closer.close(() => r())));
    await expect(checkBrokerQueue(`mqtt://127.0.0.1:${(closer.address() as net.AddressInfo).port}`)).rejects.toThrow(/connect/i);
  }, 60_000);

  it("a running bridge whose check was cut off by the broker logs it and checks again", async () => {
    const url = await cuttingProxy(await devBroker(), 2, 3_000);
    const logs: string[] = [];
    const reports: unknown[] = [];
    const watch = new BrokerWatch({ mqttUrl: url, everyMs: 200, log: lineLogger((l) => logs.push(l)), reporter: { send: async (r) => { reports.push(r); return true; } } });
    watch.start();
    cleanup.push(async () => { watch.close(); await watch.current; });
    await until("a clean check after the cut one", () => logs.some((l) => l.includes("broker check: an offline session got all 1200")), { timeoutMs: 60_000, explain: () => logs.join("\n") });
    expect(logs[0]).toMatch(/ warn .*broker check could not run \(the bridge goes on\): .*publisher's connection/);
    expect(reports).toEqual([{ type: "cluster.warnings", warnings: [] }]);
  }, 90_000);

  it("fails with the broker's address when nothing listens (the bridge logs it and goes on)", async () => {
    const port = await freePort();
    await expect(checkBrokerQueue(`mqtt://127.0.0.1:${port}`)).rejects.toThrow(/ECONNREFUSED|connect/);
  }, 60_000);
});
