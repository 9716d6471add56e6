/**
 * bench/zero-loss: the same numbered load (MQTT QoS 1 + HTTP, RATE msg/s in
 * total) through one flow change, done two ways in one run:
 *   (a) Node-RED's own `full` deploy of the new flow (the baseline users have today);
 *   (b) a RedForge blue-green deployment (POST /api/deployments: DeploymentRun,
 *       bridge, gate, front door), on the full local stack, holding work
 *       through DEPLOY and VERIFY (the default, holdDuring "deploy");
 *   (c) the same with holdDuring "switch" (green deployed and verified first);
 *   (d) the kubernetes driver's steps (holdDuring "switch" order, driven at the
 *       bridge level: no control plane), with every pod a real Node-RED behind
 *       the fake API server, a fake kubelet and a per-connection Service proxy;
 *       HTTP goes through the front Service, the switch is its selector;
 *   (e) a runtime upgrade: the same flows moved from Node-RED 4.1 to 5.0
 *       (POST /api/deployments {stack: "5.0"}, holdDuring "switch"), full local stack.
 *   (f)-(i) faults during a RedForge deployment (issue 12), the bridge running as
 *       its own CLI process: (f) bridge process group kill -9 while blue drains, (g) bridge, its
 *       Node-REDs and any data plane kill -9, (h) a CPU hog on both cores, (i) the
 *       Worker kill -9 mid-drain; see test/harness/faultStack.ts. Not in the default
 *       set: BENCH_ROWS=f,g,h,i (BENCH_FAULT_HOLD=deploy|switch, default deploy).
 * Prints for each: messages sent, lost, duplicated, HTTP requests unanswered or
 * failed, p50/p99 latency of messages sent during the switch, and total
 * deployment time; fault rows also the deployment's final status and
 * error.code, and the loss it reported (metrics.messagesLost) beside the measured one.
 *   npm run bench:zero-loss           (BENCH_RATE=500 BENCH_BEFORE_MS=3000 BENCH_AFTER_MS=3000)
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startBridge, type RunningBridge } from "../../bridge/main.ts";
import { lineLogger } from "../../bridge/log.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { BlueGreen } from "../../bridge/deploy/blueGreen.ts";
import { KubernetesDriver } from "../../bridge/drivers/kubernetes/index.ts";
import type { ApiBody } from "../../protocol/api/client.ts";
import { adminClient } from "../../test/harness/adminClient.ts";
import { eventually } from "../../test/harness/eventually.ts";
import { FakeKubeApi } from "../../test/harness/fakeKubeApi.ts";
import { startFakeKubelet } from "../../test/harness/fakeKubelet.ts";
import { FAULTS, runFault, SHORT_HOLD_SECONDS, startFaultCluster, type FaultKey, type FaultRun } from "../../test/harness/faultStack.ts";
import { startTestStack, type TestStack } from "../../test/harness/testStack.ts";
import { blueGreenSteps, LoadGenerator, percentile, zeroLossFlow, type LoadReport } from "../../test/harness/zeroLoss.ts";

const RATE = Number(process.env.BENCH_RATE ?? 500);
const BEFORE_MS = Number(process.env.BENCH_BEFORE_MS ?? 3000);
const AFTER_MS = Number(process.env.BENCH_AFTER_MS ?? 3000);

interface Row {
  name: string;
  report: LoadReport;
  switchFrom: number;
  switchTo: number;
  deployMs: number;
  note: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function baseline(stack: TestStack, tmp: string): Promise<Row> {
  const broker = brokerOf(stack.mqttUrl);
  const driver = new ProcessDriver({ stateDir: path.join(tmp, "baseline"), nodePackages: [await packNodePackage(path.join(tmp, "pkg"))] });
  try {
    const id = crypto.randomUUID();
    const topic = `zeroloss/in/${id}`;
    const { endpoints } = await driver.create({
      id, name: "baseline", resources: {}, env: {}, credentialSecret: "zero-loss-bench-credential-secret",
      flows: zeroLossFlow({ version: "v1", entry: "plain", plainTopic: topic, broker }),
    });
    await sleep(1000);
    const load = new LoadGenerator({ brokerUrl: stack.mqttUrl, mqttTopic: topic, httpUrl: `${endpoints.front}/work`, rate: RATE });
    await load.start();
    await sleep(BEFORE_MS);
    const t0 = Date.now();
    await driver.deployFlows(id, zeroLossFlow({ version: "v2", entry: "plain", plainTopic: topic, broker }), { type: "full" });
    const t1 = Date.now();
    await sleep(AFTER_MS);
    const report = await load.stop(15_000);
    return { name: "(a) Node-RED full deploy", report, switchFrom: t0, switchTo: t1 + 1000, deployMs: t1 - t0, note: "POST /flows, Node-RED-Deployment-Type: full" };
  } finally {
    await driver.close();
  }
}

/** A runtime upgrade instead of a flow change: the instance starts on 4.1 and moves to 5.0 with the same flows. */
const UPGRADE = { from: "4.1", to: "5.0" } as const;

async function redforge(stack: TestStack, tmp: string, holdDuring: "deploy" | "switch", upgrade?: typeof UPGRADE): Promise<Row> {
  const broker = brokerOf(stack.mqttUrl);
  const { api } = await adminClient(stack);
  const label = upgrade ? "upgrade" : holdDuring;
  const cluster = (await api.POST("/api/clusters", { body: { name: `zero-loss-bench-${label}` } })).data!;
  let bridge: RunningBridge | undefined;
  try {
    bridge = await startBridge({ clusterId: cluster.id, api: stack.apiUrl, secret: cluster.webhookSecret, driver: "process", mqttUrl: stack.mqttUrl, stateDir: path.join(tmp, `bridge-${label}`), log: lineLogger(process.env.BENCH_LOG ? (l) => console.log(`${new Date().toISOString().slice(11, 23)} [bridge] ${l}`) : () => {}) });
    const created = (await api.POST("/api/instances", { body: {
      name: `zero-loss-${label}`, clusterId: cluster.id, flows: zeroLossFlow({ version: "v1", entry: "gate", broker }) as ApiBody<"/api/instances", "post">["flows"],
      ...(upgrade ? { stack: upgrade.from } : {}),
    } })).data!;
    let instance: any;
    for (let i = 0; i < 300 && !(instance?.status === "running" && instance.endpoints?.front); i++) {
      await sleep(200);
      instance = (await api.GET("/api/instances/{id}", { params: { path: { id: created.id } } })).data;
    }
    if (!instance?.endpoints?.front) throw new Error(`instance did not start: ${JSON.stringify(instance)}`);
    await sleep(1000);
    const load = new LoadGenerator({ brokerUrl: stack.mqttUrl, mqttTopic: `redforge/ingest/${instance.id}`, httpUrl: `${instance.endpoints.front}/work`, rate: RATE });
    await load.start();
    await sleep(BEFORE_MS);
    const t0 = Date.now();
    const next = upgrade ? "v1" : "v2";
    const dep = (await api.POST("/api/deployments", { body: {
      instanceId: instance.id, analysisSeconds: 0, rollbackWindowSeconds: 0, holdDuring,
      // An upgrade keeps the flows (none sent: the instance's current ones) and names the stack.
      ...(upgrade ? { stack: upgrade.to } : { flows: zeroLossFlow({ version: "v2", entry: "gate", broker }) as ApiBody<"/api/deployments", "post">["flows"] }),
      verify: { http: { path: "/work", body: { seq: "smoke" }, contract: true, expectJson: { payload: { version: next } } } },
    } })).data!;
    let d: any;
    for (let i = 0; i < 600 && !["completed", "rolled_back", "failed"].includes(d?.status); i++) {
      await sleep(100);
      d = (await api.GET("/api/deployments/{id}", { params: { path: { id: dep.id } } })).data;
    }
    const t1 = Date.now();
    await sleep(AFTER_MS);
    const report = await load.stop(15_000);
    const runtimeNote = upgrade
      ? `; stack ${d.fromStack} → ${d.toStack} (Node-RED ${instance.nodeRedVersion} → ${d.toNodeRed}); the front's /healthz after: ${await fetch(`${instance.endpoints.front}/healthz`).then(async (r) => ((await r.json()) as { nodeRed?: string }).nodeRed).catch(() => "no answer")}`
      : "";
    // The switch window: from the moment new work was held (blue drains) to the switch (+1 s), as the bridge recorded them.
    return {
      name: upgrade ? `(e) runtime upgrade ${upgrade.from} → ${upgrade.to}` : holdDuring === "deploy" ? "(b) RedForge, hold through deploy" : "(c) RedForge, hold for the switch", report, switchFrom: Date.parse(d.metrics.holdingSince), switchTo: Date.parse(d.metrics.switchedAt) + 1000, deployMs: t1 - t0,
      note: `status ${d.status}; held ${d.metrics.messagesHeld}, replayed ${d.metrics.messagesReplayed}; hold ${d.metrics.holdMs} ms; phases ${JSON.stringify(d.metrics.phaseMs)}${runtimeNote}`,
    };
  } finally {
    await bridge?.close();
  }
}

async function kubernetes(stack: TestStack, tmp: string): Promise<Row> {
  const broker = brokerOf(stack.mqttUrl);
  const ns = "redforge";
  const api = await FakeKubeApi.start();
  const kubelet = await startFakeKubelet(api, { namespace: ns, dir: path.join(tmp, "kubelet") });
  const driver = new KubernetesDriver({
    kubeConfig: api.kubeConfig(ns), namespace: ns, clusterId: "zero-loss-bench", adminToken: "zero-loss-bench-admin-token",
    adminUrl: kubelet.adminUrl, nodePackage: await packNodePackage(path.join(tmp, "pkg-k8s")), mqttUrl: stack.mqttUrl,
    statusPollMs: 200, switchSettleMs: Number(process.env.BENCH_SWITCH_SETTLE_MS ?? 1000), greenReadyTimeoutMs: 120_000,
  });
  driver.onStatus(() => {});
  try {
    const id = crypto.randomUUID();
    await driver.create({ id, name: "zero-loss-k8s", resources: {}, env: {}, credentialSecret: "zero-loss-bench-credential-secret", flows: zeroLossFlow({ version: "v1", entry: "gate", broker }) });
    await eventually(async () => {
      const gate = await driver.adminApi.gate((await driver.servingOf(id)).base);
      return gate.gates >= 2 && gate.mqtt === "connected" ? true : undefined;
    }, 120_000);
    const load = new LoadGenerator({ brokerUrl: stack.mqttUrl, mqttTopic: `redforge/ingest/${id}`, httpUrl: `${await kubelet.serviceUrl("zero-loss-k8s")}/work`, rate: RATE });
    await load.start();
    await sleep(BEFORE_MS);
    const t0 = Date.now();
    const run = await blueGreenSteps({ bg: new BlueGreen(driver, driver.adminApi, true), instanceId: id, v2: zeroLossFlow({ version: "v2", entry: "gate", broker }), smoke: "pass", holdDuring: "switch" });
    const t1 = Date.now();
    await sleep(AFTER_MS);
    const report = await load.stop(15_000);
    const onBlue = [...report.answers.values()].filter((a) => a.sent.at > run.switchedAt && a.answers.some((x) => x.version !== "v2")).length;
    return {
      name: "(d) kubernetes driver, hold for the switch", report, switchFrom: run.holdingSince, switchTo: run.switchedAt + 1000, deployMs: t1 - t0,
      note: `smoke ${String(run.smoke.verdict)}; replayed ${String(run.outcome.replayed)}, buffered ${String(run.outcome.bufferedDuringSwitch)}, HTTP held in blue's gate ${String(run.outcome.heldHttpReleasedOnBlue)}; settle ${process.env.BENCH_SWITCH_SETTLE_MS ?? 1000} ms; ${onBlue} sent after the switch answered by blue (keep-alive connections, closed after that answer); bridge steps only, no control plane`,
    };
  } finally {
    await driver.close();
    await kubelet.close();
    await api.close();
  }
}

/** One fault row on its own cluster and bridge (a CLI child), so a broken bridge does not spill into the next row. */
async function fault(stack: TestStack, key: FaultKey, logDir: string): Promise<FaultRun> {
  const cluster = await startFaultCluster(stack, `zero-loss-fault-${key}`, path.join(logDir, `row-${key}`), key === "j" ? { maxHoldSeconds: SHORT_HOLD_SECONDS } : {});
  try {
    const holdDuring = process.env.BENCH_FAULT_HOLD === "switch" ? "switch" : "deploy";
    return await runFault(cluster, key, { rate: RATE, beforeMs: BEFORE_MS, afterMs: AFTER_MS, holdDuring });
  } finally {
    await cluster.close();
  }
}

function brokerOf(url: string) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 1883) };
}

function printFaults(runs: FaultRun[]): void {
  if (!runs.length) return;
  console.log(`\nfaults (load: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}); switch window: from holding new work to the switch (or the deployment's end) + 1 s; measured lost = MQTT never answered + HTTP never answered\n`);
  const header = ["", "sent mqtt", "sent http", "lost", "duplicated", "http unanswered", "http errors", "p50 switch ms", "p99 switch ms", "deploy ms", "status", "error.code", "reported lost", "measured lost"];
  const lines = runs.map((r) => {
    const lat = r.report.latenciesMs(r.switchFrom, r.switchTo);
    return [FAULTS[r.key].title.slice(0, 3), r.report.sent.mqtt, r.report.sent.http, r.report.lostMqtt.length, r.report.duplicatedMqtt.length, r.report.httpUnanswered, r.report.httpErrors,
      // No answer at all inside the window (everything in it lost) is not a latency of 0.
      lat.length ? percentile(lat, 50) : "n/a", lat.length ? percentile(lat, 99) : "n/a", r.deployMs, r.finalStatus, r.errorCode ?? "-", r.reportedLost ?? "-", r.measuredLost].map(String);
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const l of [header, ...lines]) console.log(l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  for (const r of runs) console.log(`  ${FAULTS[r.key].title}:\n    ${r.notes.join("\n    ")}`);
}

function print(rows: Row[]): void {
  console.log(`\nzero-loss bench: ${RATE} msg/s offered (80% MQTT QoS 1, 20% HTTP), ${BEFORE_MS} ms before and ${AFTER_MS} ms after the change`);
  console.log("switch window: (a) POST /flows until its answer + 1 s; (b)-(e) from holding new work (blue drains) until work flows to green + 1 s\n");
  const header = ["", "sent mqtt", "sent http", "lost", "duplicated", "http unanswered", "http errors", "p50 switch ms", "p99 switch ms", "deploy ms"];
  const lines = rows.map((r) => {
    const lat = r.report.latenciesMs(r.switchFrom, r.switchTo);
    return [r.name, r.report.sent.mqtt, r.report.sent.http, r.report.lostMqtt.length, r.report.duplicatedMqtt.length, r.report.httpUnanswered, r.report.httpErrors,
      percentile(lat, 50), percentile(lat, 99), r.deployMs].map(String);
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const l of [header, ...lines]) console.log(l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
  for (const r of rows) console.log(`  ${r.name}: ${r.note}`);
  for (const r of rows.filter((x) => x.report.lostMqtt.length)) {
    // Where in the run the lost messages were sent, relative to the hold's start: tells a drain/switch bug from a broker drop.
    const at = r.report.lostMqtt.map((seq) => (r.report.answers.get(`m${seq}`)?.sent.at ?? Number.NaN) - r.switchFrom);
    console.log(`  ${r.name}: lost seq ${r.report.lostMqtt.slice(0, 12).join(", ")}${r.report.lostMqtt.length > 12 ? " …" : ""}; sent ${Math.min(...at)}…${Math.max(...at)} ms after the hold began (switch at +${r.switchTo - 1000 - r.switchFrom} ms)`);
  }
  const [a, ...others] = rows;
  const lost = (r: Row) => r.report.lostMqtt.length + r.report.httpUnanswered + r.report.httpErrors;
  const p99 = (r: Row) => percentile(r.report.latenciesMs(r.switchFrom, r.switchTo), 99);
  for (const b of others) {
    if (!a) break;
    console.log(`  ${b.name} vs ${a.name}: lost/failed ${lost(b)} vs ${lost(a)}; p99 during the switch ${p99(b)} vs ${p99(a)} ms (×${(p99(b) / Math.max(p99(a), 1)).toFixed(2)}); deployment time ×${(b.deployMs / Math.max(a.deployMs, 1)).toFixed(1)}`);
  }
}

const faultKeys = (only: Set<string>) => (Object.keys(FAULTS) as FaultKey[]).filter((k) => only.has(k));

async function main() {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-zero-loss-"));
  const stack = await startTestStack({ worker: "wrangler" });
  try {
    // BENCH_ROWS=b,c runs some rows only (default the five without faults; f,g,h,i the faults).
    const only = new Set((process.env.BENCH_ROWS ?? "a,b,c,d,e").split(","));
    const rows: Row[] = [];
    if (only.has("a")) rows.push(await baseline(stack, tmp));
    if (only.has("b")) rows.push(await redforge(stack, tmp, "deploy"));
    if (only.has("c")) rows.push(await redforge(stack, tmp, "switch"));
    if (only.has("d")) rows.push(await kubernetes(stack, tmp));
    if (only.has("e")) rows.push(await redforge(stack, tmp, "switch", UPGRADE));
    const faults: FaultRun[] = [];
    // The bridges' logs stay for diagnosis; their state dirs go with each row.
    const logDir = faultKeys(only).length ? await fs.mkdtemp(path.join(os.tmpdir(), "redforge-zero-loss-faults-")) : "";
    for (const key of faultKeys(only)) faults.push(await fault(stack, key, logDir));
    if (rows.length) print(rows);
    printFaults(faults);
    if (logDir) console.log(`\nbridge logs: ${logDir}/row-*/bridge.log`);
  } finally {
    await stack.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

// Exit once the stack is stopped: a producer's socket or timer left open by a fault row must not keep
// the bench alive after it printed its table (seen once, session 12).
await main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1); });
