/**
 * The bridge's start-up broker check (bridge/brokerCheck.ts) against real brokers: the dev stack's
 * broker and Mosquitto keep every message for an offline persistent session when they have no queue
 * limit; Mosquitto with a limit (its default is 1,000) keeps only that many, which the check reports
 * with the setting to change. Mosquitto runs from the machine's binary on a port of its own.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkBrokerQueue } from "../../bridge/brokerCheck.ts";
import { lineLogger } from "../../bridge/log.ts";
import { startBridge } from "../../bridge/main.ts";
import { FakeDriver } from "../harness/fakeDriver.ts";
import { startFakeControlPlane } from "../harness/fakeControlPlane.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort, isReachable } from "../../dev/ports.ts";
import { until } from "../harness/eventually.ts";

const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p));
const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c(); });

async function mosquitto(maxQueued: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-mosquitto-"));
  const port = await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  await fs.writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages ${maxQueued}\n`);
  const child: ChildProcess = spawn(MOSQUITTO!, ["-c", conf], { stdio: "ignore" });
  cleanup.push(async () => { child.kill("SIGTERM"); await fs.rm(dir, { recursive: true, force: true }); });
  await until(`mosquitto on ${port}`, () => isReachable(port, "127.0.0.1"), { timeoutMs: 20_000, failIf: () => (child.exitCode !== null ? `mosquitto exited ${child.exitCode}` : undefined) });
  return `mqtt://127.0.0.1:${port}`;
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

  it.skipIf(!MOSQUITTO)("a bridge starting on such a broker says so in its log (a warning, not a refusal to start)", async () => {
    const url = await mosquitto(100);
    const clusterId = crypto.randomUUID();
    const secret = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
    const cp = await startFakeControlPlane({ clusterId, secret });
    cleanup.push(() => cp.close());
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-broker-check-bridge-"));
    const logs: string[] = [];
    const bridge = await startBridge({ clusterId, api: cp.url, secret, driver: new FakeDriver(), stateDir, mqttUrl: url, log: lineLogger((l) => logs.push(l)), drainMs: 300 });
    cleanup.push(async () => { await bridge.close(); await fs.rm(stateDir, { recursive: true, force: true }); });
    const line = await until("the broker check's warning", () => logs.find((l) => l.includes("broker check:")), { timeoutMs: 60_000, explain: () => logs.slice(-10).join("\n") });
    expect(line).toMatch(/ warn /);
    expect(line).toContain("kept only 100 of 1200");
    expect(line).toContain("max_queued_messages 0");
  }, 120_000);

  it("fails with the broker's address when nothing listens (the bridge logs it and goes on)", async () => {
    const port = await freePort();
    await expect(checkBrokerQueue(`mqtt://127.0.0.1:${port}`)).rejects.toThrow(/ECONNREFUSED|connect/);
  }, 60_000);
});
