/**
 * Fault injection against the real stack (issue 12, "fault tolerance of the
 * zero-loss promise"): wrangler dev + Postgres + MQTT (startTestStack), a
 * cluster whose bridge runs as a separate process through the real CLI (so
 * it can be killed), real Node-RED, and the numbered LoadGenerator through
 * the instance's front while POST /api/deployments changes its flows. Each
 * fault strikes while blue drains (its gate told `drain` on
 * redforge/control/{runtime}, which the bridge publishes as the drain step
 * starts):
 *   (f) bridge-kill   kill -9 of the bridge's process group (the bridge; what it starts runs detached,
 *                     in groups of its own); a new bridge 2 s later on the same --state-dir
 *   (g) host-restart  kill -9 of everything the bridge started (bridge, Node-REDs, any data
 *                     plane: found by the state dir in their command line), bridge again 2 s later
 *   (h) loaded        a CPU hog on both cores for the whole run (no kill)
 *   (i) worker-kill   kill -9 of wrangler dev (workerd and every Durable Object), restarted
 *                     2 s later on the same state
 *   (j) worker-away   the same, restarted 25 s later: the bridge's link is down far longer than its
 *                     hold lease (--hold-lease-ms, 250 ms), so it releases the hold to blue itself
 * and reports what a user would see: lost / duplicated MQTT, HTTP unanswered
 * or failed, latency in the switch window, and the deployment's final word
 * (status, error.code, metrics.messagesLost) beside the measured loss.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { connectAsync } from "mqtt";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import type { ApiBody } from "../../protocol/api/client.ts";
import { adminClient, type ApiClient } from "./adminClient.ts";
import { BridgeProcess, killEverythingUnder, processesUnder, startCpuHog } from "./faultProcesses.ts";
import type { TestStack } from "./testStack.ts";
import { MqttTap } from "./mqttTap.ts";
import { LoadGenerator, zeroLossFlow, type LoadReport } from "./zeroLoss.ts";

export const FAULTS = {
  f: { id: "bridge-kill", title: "(f) bridge process group kill -9 while blue drains, restarted 2 s later" },
  g: { id: "host-restart", title: "(g) bridge + Node-REDs + data plane kill -9 while blue drains, bridge restarted 2 s later" },
  h: { id: "loaded", title: "(h) loaded machine: CPU hog on both cores for the whole run" },
  i: { id: "worker-kill", title: "(i) Worker (wrangler dev) kill -9 while blue drains, restarted 2 s later" },
  j: { id: "worker-away", title: "(j) Worker kill -9 while blue drains, restarted 25 s later (the bridge's lease, 250 ms, releases the hold)" },
} as const;
export type FaultKey = keyof typeof FAULTS;

const TERMINAL = ["completed", "rolled_back", "failed"];
const RESTART_AFTER_MS = 2_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One cluster of the stack with its bridge running as a CLI child; `close()` kills everything it started. */
export interface FaultCluster {
  stack: TestStack;
  clusterId: string;
  bridge: BridgeProcess;
  /** The bridge's --state-dir: every process started for this cluster mentions it. */
  stateDir: string;
  broker: { host: string; port: number };
  close(): Promise<void>;
}

/** The (j) bridge's hold bound: short, so the Worker's outage outlasts it on any machine. */
export const SHORT_HOLD_SECONDS = 10;
const WORKER_AWAY_MS = 25_000;

/** `dir` holds the cluster's secret file, state dir and the bridge's log (kept for diagnosis). */
export async function startFaultCluster(stack: TestStack, name: string, dir: string, opts: { maxHoldSeconds?: number } = {}): Promise<FaultCluster> {
  await fs.mkdir(dir, { recursive: true });
  const { api } = await adminClient(stack);
  const created = await api.POST("/api/clusters", { body: { name } });
  if (!created.data) throw new Error(`cluster ${name}: ${created.response.status} ${JSON.stringify(created.error)}`);
  const secretFile = path.join(dir, "cluster-secret");
  await fs.writeFile(secretFile, created.data.webhookSecret, { mode: 0o600 });
  const stateDir = path.join(dir, "state");
  const bridge = new BridgeProcess({
    clusterId: created.data.id, api: stack.apiUrl, secretFile, stateDir, mqttUrl: stack.mqttUrl,
    nodePackage: await packNodePackage(path.join(dir, "pkg")), logFile: path.join(dir, "bridge.log"),
    ...(opts.maxHoldSeconds !== undefined ? { extraArgs: ["--max-hold-seconds", String(opts.maxHoldSeconds)] } : {}),
  });
  await bridge.start();
  const u = new URL(stack.mqttUrl);
  return {
    stack, clusterId: created.data.id, bridge, stateDir, broker: { host: u.hostname, port: Number(u.port || 1883) },
    async close() {
      await bridge.stop();
      // Node-REDs (and data planes) that outlive a bridge by design, or were orphaned by a kill.
      await killEverythingUnder(stateDir);
      await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
}

export interface FaultRunOptions {
  rate: number;
  beforeMs: number;
  afterMs: number;
  holdDuring: "deploy" | "switch";
  /** After blue is told to drain, before the fault strikes (work is held by then). */
  delayMs?: number;
  /** A request not answered within this is counted unanswered (the LoadGenerator's default 15 s when absent). */
  httpTimeoutMs?: number;
  /** How long the deployment may take to reach completed / rolled_back / failed. */
  deploymentTimeoutMs?: number;
}

export interface FaultRun {
  key: FaultKey;
  /** When the fault struck (undefined: it never did, e.g. the deployment ended before blue drained; always for (h)). */
  injectedAt?: number;
  report: LoadReport;
  /** The deployment as GET /api/deployments/:id last showed it. */
  deployment: any;
  /** "completed", "rolled_back", "failed", or "<status> after N s" when it never ended. */
  finalStatus: string;
  errorCode: string | null;
  reportedLost: number | null;
  /** MQTT never answered + HTTP requests never answered (refused ones are in httpErrors). */
  measuredLost: number;
  switchFrom: number;
  switchTo: number;
  deployMs: number;
  /** A request through the front after the run: "200 v2", or what went wrong. */
  frontAfter: string;
  /** What the fault did, when, and what followed (for the row's note). */
  notes: string[];
  bridgeLog: string;
}

/** Runs one deployment of v1 → v2 under load with fault `key`, on a fresh instance of `c`. */
export async function runFault(c: FaultCluster, key: FaultKey, o: FaultRunOptions): Promise<FaultRun> {
  const notes: string[] = [];
  const { api } = await adminClient(c.stack);
  const hog = key === "h" ? startCpuHog(2) : undefined;
  if (hog) notes.push(`CPU hog pids ${hog.pids.join(", ")}`);
  try {
    const instance = await runningInstance(api, c, `fault-${key}-${Date.now().toString(36)}`);
    const drain = await watchDrain(c.stack.mqttUrl, instance.id);
    // FAULT_TAP=1: follow every lost message over the bus (diagnosis; costs a subscriber of everything).
    const tap = process.env.FAULT_TAP ? new MqttTap() : undefined;
    await tap?.start(c.stack.mqttUrl);
    const load = new LoadGenerator({ brokerUrl: c.stack.mqttUrl, mqttTopic: `redforge/ingest/${instance.id}`, httpUrl: `${instance.endpoints.front}/work`, rate: o.rate, ...(o.httpTimeoutMs ? { httpTimeoutMs: o.httpTimeoutMs } : {}) });
    await load.start();
    await sleep(o.beforeMs);
    const t0 = Date.now();
    const depId = await postDeployment(api, instance.id, c.broker, o.holdDuring, notes);
    let ended = false;
    let injectedAt: number | undefined;
    const injected = key === "h" ? Promise.resolve() : drain.seen.then(async (at) => {
      if (ended) return;
      await sleep(o.delayMs ?? 200);
      injectedAt = Date.now();
      notes.push(`blue told to drain at +${at - t0} ms; fault at +${injectedAt - t0} ms`);
      notes.push(await inject(key, c));
    });
    const timeout = o.deploymentTimeoutMs ?? 240_000;
    const final = await untilEnded(api, depId, timeout);
    ended = true;
    const t1 = Date.now();
    // The fault may still be running its restart (e.g. the Worker) when a deployment ends early.
    if (key === "h" || drain.at) {
      // Bounded: a restart that never returns is a finding to print, not a test that hangs until its timeout.
      const done = await Promise.race([injected.then(() => true), sleep(180_000).then(() => false)]);
      if (!done) notes.push("the fault's restart had not returned 180 s after the deployment ended");
    }
    else notes.push("fault NOT injected: the deployment ended before blue was told to drain");
    drain.close();
    await sleep(o.afterMs);
    const report = await load.stop(20_000);
    await tap?.stop();
    const deployment = (await readDeployment(api, depId)) ?? final;
    const frontAfter = await probeFront(instance.endpoints.front);
    notes.push(`front after: ${frontAfter}`);
    notes.push(`processes under the state dir after: ${processesUnder(c.stateDir).length}; bridge starts: ${c.bridge.starts.length}; log ${c.bridge.o.logFile}`);
    const finalStatus = TERMINAL.includes(deployment?.status) ? deployment.status : `${deployment?.status ?? "unknown"} (phase ${deployment?.phase}) after ${Math.round(timeout / 1000)} s`;
    const m = deployment?.metrics ?? {};
    const from = m.holdingSince ? Date.parse(m.holdingSince) : drain.at ?? t0;
    const to = (m.switchedAt ? Date.parse(m.switchedAt) : t1) + 1000;
    if (deployment?.error) notes.push(`error: ${deployment.error.code}: ${String(deployment.error.message).slice(0, 300)}`);
    if (m.accounting) notes.push(`accounting (the product's own): ${JSON.stringify(m.accounting).slice(0, 400)}`);
    notes.push(`held ${m.messagesHeld}, replayed ${m.messagesReplayed}; phases ${JSON.stringify(deployment?.history?.map((h: any) => `${h.phase}:${h.status}`) ?? [])}`);
    const f = report.httpFailures;
    notes.push(`HTTP without an answer: ${f.refused} refused, ${f.reset} reset, ${f.timeout} timed out (hung), ${f.other} other`);
    if (f.timeoutSamples.length) notes.push(`hung HTTP requests (sample): ${f.timeoutSamples.slice(0, 3).join(" | ")}`);
    if (report.httpErrorSamples.length) notes.push(`first HTTP failures: ${report.httpErrorSamples.slice(0, 3).join(" | ")}`);
    const refusals = report.httpErrorSamples.filter((x) => /^\d{3} /.test(x));
    if (refusals.length) notes.push(`HTTP error answers (sample): ${refusals.slice(0, 3).join(" | ")}`);
    if (report.lostMqtt.length) {
      // When the lost work was sent, relative to the fault: tells work held at the fault from work sent into a dead path after it.
      const at = report.lostMqtt.map((seq) => (report.answers.get(`m${seq}`)?.sent.at ?? Number.NaN) - (injectedAt ?? from));
      notes.push(`lost MQTT sent ${Math.min(...at)}…${Math.max(...at)} ms after the ${injectedAt ? "fault" : "hold began"} (deployment ended at +${t1 - (injectedAt ?? from)} ms)`);
      if (tap) notes.push(`tap (first hop time ms after the ${injectedAt ? "fault" : "hold began"}):\n      ${tap.explain(report.lostMqtt.map((s) => `m${s}`), injectedAt ?? from).join("\n      ")}`);
    }
    return {
      key, ...(injectedAt ? { injectedAt } : {}), report, deployment, finalStatus, errorCode: deployment?.error?.code ?? null,
      reportedLost: typeof m.messagesLost === "number" ? m.messagesLost : null,
      measuredLost: report.lostMqtt.length + report.httpUnanswered,
      switchFrom: from, switchTo: to, deployMs: t1 - t0, frontAfter, notes, bridgeLog: c.bridge.o.logFile,
    };
  } finally {
    hog?.stop();
  }
}

async function inject(key: FaultKey, c: FaultCluster): Promise<string> {
  if (key === "f") {
    const pid = c.bridge.pid;
    await c.bridge.kill9();
    await sleep(RESTART_AFTER_MS);
    await c.bridge.start();
    return `killed bridge process group ${pid}; new bridge pid ${c.bridge.pid} connected`;
  }
  if (key === "g") {
    const t = Date.now();
    const killed = await killEverythingUnder(c.stateDir);
    const tookMs = Date.now() - t;
    await sleep(RESTART_AFTER_MS);
    await c.bridge.start();
    return `killed ${killed.length} processes in ${tookMs} ms (${killed.map((p) => describeProcess(p.args)).join(", ")}); new bridge pid ${c.bridge.pid} connected`;
  }
  if (key === "i" || key === "j") {
    const worker = c.stack.services.find((s) => s.name === "worker");
    if (!worker?.pid) throw new Error("this stack runs no worker");
    try { process.kill(-worker.pid, "SIGKILL"); } catch { /* already gone */ }
    const killedAt = Date.now();
    await sleep(key === "j" ? WORKER_AWAY_MS : RESTART_AFTER_MS);
    await c.stack.restartWorker();
    return `killed wrangler dev's process group ${worker.pid}; serving again ${Date.now() - killedAt} ms later`;
  }
  return "no kill";
}

function describeProcess(args: string): string {
  if (args.includes("bridge/bin.mjs")) return "bridge";
  if (/node-red|red\.js/.test(args)) return "node-red";
  return args.split(" ").slice(0, 2).map((a) => path.basename(a)).join(" ");
}

async function runningInstance(api: ApiClient, c: FaultCluster, name: string): Promise<any> {
  const created = await api.POST("/api/instances", { body: {
    name, clusterId: c.clusterId, flows: zeroLossFlow({ version: "v1", entry: "gate", broker: c.broker }) as ApiBody<"/api/instances", "post">["flows"],
  } });
  if (!created.data) throw new Error(`instance ${name}: ${created.response.status} ${JSON.stringify(created.error)}`);
  let instance: any;
  const deadline = Date.now() + 180_000;
  while (!(instance?.status === "running" && instance.endpoints?.front)) {
    if (Date.now() > deadline) throw new Error(`instance did not start within 180 s: ${JSON.stringify(instance)}\n${c.bridge.tail(20)}`);
    await sleep(250);
    instance = (await api.GET("/api/instances/{id}", { params: { path: { id: created.data.id } } }).catch(() => undefined))?.data;
  }
  // Its gates reach MQTT a moment after Node-RED reports running.
  await sleep(1000);
  return instance;
}

/** POST /api/deployments; under load an instance can read `unknown` for a while (409 instance_not_running): retried, and noted. */
async function postDeployment(api: ApiClient, instanceId: string, broker: { host: string; port: number }, holdDuring: "deploy" | "switch", notes: string[]): Promise<string> {
  const t0 = Date.now();
  for (let refused = 0; ; refused++) {
    const res = await api.POST("/api/deployments", { body: {
      instanceId, holdDuring, analysisSeconds: 1, rollbackWindowSeconds: 1,
      flows: zeroLossFlow({ version: "v2", entry: "gate", broker }) as ApiBody<"/api/deployments", "post">["flows"],
      verify: { http: { path: "/work", body: { seq: "smoke" }, contract: true, expectJson: { payload: { version: "v2" } } }, mqtt: true },
    } });
    if (res.data) {
      if (refused) notes.push(`POST /api/deployments refused ${refused}× (${Date.now() - t0} ms) before 202`);
      return res.data.id;
    }
    const code = (res.error as { error?: { code?: string } } | undefined)?.error?.code;
    if (code !== "instance_not_running" || Date.now() - t0 > 120_000) throw new Error(`POST /api/deployments: ${res.response.status} ${JSON.stringify(res.error)}`);
    await sleep(1000);
  }
}

async function readDeployment(api: ApiClient, id: string): Promise<any> {
  // While the Worker is down the request fails: "no answer yet".
  // Bounded: a request accepted by a Worker that dies or restarts must not hold the run.
  return (await api.GET("/api/deployments/{id}", { params: { path: { id } }, signal: AbortSignal.timeout(15_000) }).catch(() => undefined))?.data;
}

async function untilEnded(api: ApiClient, id: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < deadline) {
    last = (await readDeployment(api, id)) ?? last;
    if (TERMINAL.includes(last?.status)) return last;
    await sleep(200);
  }
  return last;
}

/** Resolves when a gate of `instanceId` (blue or green) is told to drain on its retained control topic. */
async function watchDrain(mqttUrl: string, instanceId: string): Promise<{ seen: Promise<number>; at?: number; close(): void }> {
  const client = await connectAsync(mqttUrl, { protocolVersion: 4, clean: true });
  let resolve!: (at: number) => void;
  const watch: { seen: Promise<number>; at?: number; close(): void } = {
    seen: new Promise<number>((r) => { resolve = r; }),
    close: () => { void client.endAsync(); },
  };
  client.on("message", (topic, payload) => {
    if (!topic.startsWith(`redforge/control/${instanceId}`) || watch.at) return;
    try {
      if ((JSON.parse(payload.toString()) as { mode?: string }).mode !== "drain") return;
    } catch { return; }
    watch.at = Date.now();
    resolve(watch.at);
  });
  await client.subscribeAsync("redforge/control/+", { qos: 1 });
  return watch;
}

async function probeFront(front: string): Promise<string> {
  try {
    const res = await fetch(`${front}/work`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seq: "probe-after" }), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return res.ok ? `${res.status} ${(JSON.parse(text) as { payload?: { version?: string } }).payload?.version ?? text.slice(0, 60)}` : `${res.status} ${text.slice(0, 100)}`;
  } catch (err) {
    return `no answer (${(err as Error).message})`;
  }
}
