/**
 * The bridge's blue-green steps on real Node-RED processes and a real MQTT
 * broker, driven in the order the control plane's DeploymentRun sends them,
 * under a steady numbered load over MQTT (QoS 1) and HTTP through the
 * instance's front door: nothing lost, nothing processed twice, every HTTP
 * request answered, and every message sent after the switch answered by the
 * new version. The same with a failed smoke test: rollback loses nothing.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlueGreen } from "../../bridge/deploy/blueGreen.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort } from "../../dev/ports.ts";
import type { RunningService } from "../../dev/config.ts";
import { LoadGenerator, zeroLossFlow } from "../harness/zeroLoss.ts";

let tmp: string;
let driver: ProcessDriver;
let broker: RunningService | undefined;
let brokerUrl: string;
let bg: BlueGreen;

const spec = (id: string, name: string, brokerAt: { host: string; port: number }) => ({
  id, name, flows: zeroLossFlow({ version: "v1", entry: "gate", broker: brokerAt }),
  resources: {}, env: {}, credentialSecret: "blue-green-test-credential-secret",
});

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-bg-"));
  if (process.env.MQTT_URL) brokerUrl = process.env.MQTT_URL;
  else {
    broker = await startMqttBroker({ port: await freePort(), host: "127.0.0.1" });
    brokerUrl = broker.url!;
  }
  const tarball = await packNodePackage(path.join(tmp, "pkg"));
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball], mqttUrl: brokerUrl,
    ...(process.env.BG_LOG ? { log: (id: string, line: string) => console.log(`[${id.slice(0, 8)}] ${line}`) } : {}) });
  bg = new BlueGreen(driver, driver.adminApi, true);
}, 120_000);

afterAll(async () => {
  await driver?.close();
  await broker?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

function brokerAddress() {
  const u = new URL(brokerUrl);
  return { host: u.hostname, port: Number(u.port || 1883) };
}

async function deployUnderLoad(id: string, opts: { smoke: "pass" | "fail" }) {
  const { endpoints } = await driver.create(spec(id, `bg-${opts.smoke}`, brokerAddress()));
  const load = new LoadGenerator({ brokerUrl, mqttTopic: `redforge/ingest/${id}`, httpUrl: `${endpoints.front}/work`, rate: 200 });
  const step = (s: string) => { if (process.env.BG_LOG) console.log(`--- ${new Date().toISOString().slice(11, 23)} ${s}`); };
  step("create done");
  await load.start();
  await new Promise((r) => setTimeout(r, 1500));

  step("prepare");
  const prepared = await bg.prepare(id);
  step("drain");
  const blue = prepared.blue as string;
  const green = prepared.green as string;
  expect(green).not.toBe(blue);
  const drained = await bg.setGate(id, { mode: "drain", runtime: blue, drainTimeoutMs: 10_000 });
  expect(drained.inFlight).toBe(0);
  const v2 = zeroLossFlow({ version: "v2", entry: "gate", broker: brokerAddress() });
  step(`deploy; drained=${JSON.stringify(drained)} blue gate=${JSON.stringify(await driver.adminApi.gate((await driver.runtimeBase(blue))!))} forwarded=${driver.mqttFront(id)?.forwarded} held=${driver.mqttFront(id)?.heldCount}`);
  const deployed = await bg.deployFlows(green, v2);
  step("smoke");
  const smoke = await bg.smoke(id, {
    runtime: green, kind: "verify", expectRev: deployed.rev as string, maxErrorRate: 0.05,
    checks: {
      http: { path: "/work", method: "POST", body: { seq: "smoke" }, expectStatus: 200, contract: true, timeoutMs: 5_000,
        expectJson: { payload: { version: opts.smoke === "pass" ? "v2" : "v3" } } },
      mqtt: true, failureLimit: 0, pause: false,
    },
  });
  step(`switch after smoke ${smoke.verdict}`);
  let switchedAt = Number.POSITIVE_INFINITY;
  let outcome: Record<string, unknown>;
  if (smoke.verdict === "passed") {
    outcome = await bg.switchRoute(id, blue, green);
    switchedAt = Date.now();
  } else {
    outcome = await bg.rollback(id, { deploymentId: crypto.randomUUID(), blue, green, switched: false });
  }
  step("settle");
  await new Promise((r) => setTimeout(r, 1500));
  const report = await load.stop();
  return { report, smoke, outcome, switchedAt, blue, green };
}

describe("blue-green on real Node-RED", () => {
  it("switches to the new flow under load without losing or duplicating anything", async () => {
    const { report, smoke, outcome, switchedAt, green } = await deployUnderLoad(crypto.randomUUID(), { smoke: "pass" });
    expect(smoke.verdict, JSON.stringify(smoke)).toBe("passed");
    expect(report.sent.mqtt).toBeGreaterThan(300);
    expect(report.lostMqtt).toEqual([]);
    expect(report.duplicatedMqtt).toEqual([]);
    expect(report.httpUnanswered, report.httpErrorSamples.join(" | ")).toBe(0);
    expect(report.httpErrors, report.httpErrorSamples.join(" | ")).toBe(0);
    const after = [...report.answers.values()].filter((a) => a.sent.at > switchedAt);
    expect(after.length).toBeGreaterThan(50);
    expect(after.every((a) => a.answers.length === 1 && a.answers[0]!.version === "v2" && a.answers[0]!.runtime === green)).toBe(true);
    expect(Number(outcome.replayed) + Number(outcome.bufferedDuringSwitch)).toBeGreaterThan(0);
  }, 120_000);

  it("rolls back on a failed smoke test and blue answers everything", async () => {
    const { report, smoke, outcome, blue, green } = await deployUnderLoad(crypto.randomUUID(), { smoke: "fail" });
    expect(smoke.verdict).toBe("failed");
    expect(outcome.serving).toBe(blue);
    expect(report.lostMqtt).toEqual([]);
    expect(report.duplicatedMqtt).toEqual([]);
    expect(report.httpUnanswered, report.httpErrorSamples.join(" | ")).toBe(0);
    expect(report.httpErrors, report.httpErrorSamples.join(" | ")).toBe(0);
    const all = [...report.answers.values()];
    expect(all.every((a) => a.answers.every((x) => x.version === "v1" && x.runtime === blue))).toBe(true);
    expect(await driver.runtimeBase(green)).toBeUndefined();
  }, 120_000);
});
