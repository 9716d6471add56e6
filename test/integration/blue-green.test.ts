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
import { blueGreenSteps, LoadGenerator, losses, NO_LOSS, testBroker, zeroLossFlow, type TestBroker } from "../harness/zeroLoss.ts";

let tmp: string;
let driver: ProcessDriver;
let broker: TestBroker;
let brokerUrl: string;
let bg: BlueGreen;

const spec = (id: string, name: string, brokerAt: { host: string; port: number }) => ({
  id, name, flows: zeroLossFlow({ version: "v1", entry: "gate", broker: brokerAt }),
  resources: {}, env: {}, credentialSecret: "blue-green-test-credential-secret",
});

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-bg-"));
  broker = await testBroker();
  brokerUrl = broker.url;
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

const brokerAddress = () => broker.address;

async function deployUnderLoad(id: string, opts: { smoke: "pass" | "fail" }) {
  const { endpoints } = await driver.create(spec(id, `bg-${opts.smoke}`, brokerAddress()));
  const load = new LoadGenerator({ brokerUrl, mqttTopic: `redforge/ingest/${id}`, httpUrl: `${endpoints.front}/work`, rate: 200 });
  await load.start();
  await new Promise((r) => setTimeout(r, 1500));
  const v2 = zeroLossFlow({ version: "v2", entry: "gate", broker: brokerAddress() });
  const run = await blueGreenSteps({ bg, instanceId: id, v2, smoke: opts.smoke, ...(process.env.BG_LOG ? { log: console.log } : {}) });
  expect(run.green).not.toBe(run.blue);
  expect(run.drained.inFlight).toBe(0);
  await new Promise((r) => setTimeout(r, 1500));
  const report = await load.stop();
  return { report, ...run };
}

describe("blue-green on real Node-RED", () => {
  it("switches to the new flow under load without losing or duplicating anything", async () => {
    const { report, smoke, outcome, switchedAt, green } = await deployUnderLoad(crypto.randomUUID(), { smoke: "pass" });
    expect(smoke.verdict, JSON.stringify(smoke)).toBe("passed");
    expect(report.sent.mqtt).toBeGreaterThan(300);
    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    const after = [...report.answers.values()].filter((a) => a.sent.at > switchedAt);
    expect(after.length).toBeGreaterThan(50);
    expect(after.every((a) => a.answers.length === 1 && a.answers[0]!.version === "v2" && a.answers[0]!.runtime === green)).toBe(true);
    expect(Number(outcome.replayed) + Number(outcome.bufferedDuringSwitch)).toBeGreaterThan(0);
    // The hand-over reports what the hold took in, so the deployment can count losses exactly: nothing here.
    expect(outcome.heldMqtt, JSON.stringify(outcome)).toBe(outcome.replayed);
    expect(outcome.httpHeld).toBe(Number(outcome.httpReleased) + Number(outcome.heldHttpReleasedOnBlue));
    expect(outcome.httpRefused).toBe(0);
  }, 120_000);

  it("rolls back on a failed smoke test and blue answers everything", async () => {
    const { report, smoke, outcome, blue, green } = await deployUnderLoad(crypto.randomUUID(), { smoke: "fail" });
    expect(smoke.verdict).toBe("failed");
    expect(outcome.serving).toBe(blue);
    expect(losses(report), report.httpErrorSamples.join(" | ")).toEqual(NO_LOSS);
    expect(outcome.heldMqtt, JSON.stringify(outcome)).toBe(outcome.replayed);
    const all = [...report.answers.values()];
    expect(all.every((a) => a.answers.every((x) => x.version === "v1" && x.runtime === blue))).toBe(true);
    expect(await driver.runtimeBase(green)).toBeUndefined();
  }, 120_000);
});
