/**
 * Diagnosis of fault (g) without the control plane (tsx test/harness/reproHostRestart.ts):
 * the blue-green steps driven directly on a bridge child (dataplaneBridge.ts), numbered
 * load through the fronts with an MQTT tap, and everything under the state dir killed
 * (-9) while blue drains; then a new bridge resumes and the steps go on (re-drain,
 * deploy, switch). Prints where each lost message was last seen.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { killEverythingUnder } from "./faultProcesses.ts";
import { MqttTap } from "./mqttTap.ts";
import { LoadGenerator, testBroker, zeroLossFlow } from "./zeroLoss.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const RATE = Number(process.env.RATE ?? 500);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Bridge {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private n = 0;
  constructor(stateDir: string, mqttUrl: string, tarball: string, logFile: string) {
    this.child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "test/harness/dataplaneBridge.ts"), JSON.stringify({ stateDir, mqttUrl, tarball })], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], detached: true });
    const out = fs.createWriteStream(logFile, { flags: "a" });
    readline.createInterface({ input: this.child.stderr! }).on("line", (l) => out.write(`${new Date().toISOString()} ${l}\n`));
    readline.createInterface({ input: this.child.stdout! }).on("line", (line) => {
      if (!line.startsWith("ANSWER ")) return void out.write(`${line}\n`);
      const a = JSON.parse(line.slice(7)) as { n: number; ok: boolean; value?: unknown; error?: string };
      const w = this.waiting.get(a.n);
      this.waiting.delete(a.n);
      if (a.ok) w?.resolve(a.value); else w?.reject(new Error(a.error));
    });
  }
  ready() { return this.wait(0); }
  call<T = any>(call: string, ...args: unknown[]): Promise<T> {
    const n = ++this.n;
    this.child.stdin!.write(`${JSON.stringify({ n, call, args })}\n`);
    return this.wait(n) as Promise<T>;
  }
  private wait(n: number) { return new Promise((resolve, reject) => this.waiting.set(n, { resolve, reject })); }
  stop() { try { this.child.kill("SIGTERM"); } catch { /* gone */ } }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rf-repro-g-"));
const broker = await testBroker();
const tarball = await packNodePackage(path.join(tmp, "pkg"));
const stateDir = path.join(tmp, "state");
const logFile = path.join(tmp, "bridge.log");
const id = randomUUID();
const blue = id;
const green = `${id}.b`;
const flows = (v: string) => zeroLossFlow({ version: v, entry: "gate", broker: broker.address });
let bridge = new Bridge(stateDir, broker.url, tarball, logFile);
await bridge.ready();
const t = () => `${((Date.now() - T0) / 1000).toFixed(1)}s`;
const T0 = Date.now();
const endpoints = await bridge.call("create", { id, name: "repro-g", flows: flows("v1"), resources: {}, env: {}, credentialSecret: "repro-credential-secret" });
console.log(t(), "created", endpoints.front);
await sleep(1500);
const tap = new MqttTap();
await tap.start(broker.url);
const load = new LoadGenerator({ brokerUrl: broker.url, mqttTopic: `redforge/ingest/${id}`, httpUrl: `${endpoints.front}/work`, rate: RATE, httpTimeoutMs: 60_000 });
await load.start();
await sleep(2000);
console.log(t(), "prepare", JSON.stringify(await bridge.call("prepare", id)));
const draining = bridge.call("drain", id, blue).catch((e) => `drain cut off: ${(e as Error).message}`);
await sleep(Number(process.env.KILL_AFTER_MS ?? 200));
const killedAt = Date.now();
const killed = await killEverythingUnder(stateDir);
console.log(t(), `killed ${killed.length}`);
await sleep(2000);
bridge = new Bridge(stateDir, broker.url, tarball, logFile);
await bridge.ready();
console.log(t(), "resume", JSON.stringify(await bridge.call("resume")));
await bridge.call("adopt", id);
console.log(t(), "drain again", JSON.stringify(await bridge.call("drain", id, blue)));
console.log(t(), "deploy", JSON.stringify(await bridge.call("deployFlows", green, flows("v2"))));
console.log(t(), "switch", JSON.stringify(await bridge.call("switchRoute", id, blue, green)));
void draining;
await sleep(3000);
const report = await load.stop(20_000);
await sleep(1000);
await tap.stop();
console.log(t(), `sent ${report.sent.mqtt} MQTT + ${report.sent.http} HTTP; lost ${report.lostMqtt.length}, dup ${report.duplicatedMqtt.length}, HTTP unanswered ${report.httpUnanswered}, errors ${report.httpErrors}`);
console.log(JSON.stringify(report.httpFailures, null, 1));
console.log(tap.explain(report.lostMqtt.map((s) => `m${s}`), killedAt).join("\n"));
console.log(tap.explain(report.duplicatedMqtt.map((s) => `m${s}`), killedAt).join("\n"));
console.log("bridge log:", logFile);
bridge.stop();
await sleep(3000);
await killEverythingUnder(stateDir);
await broker.close();
process.exit(0);
