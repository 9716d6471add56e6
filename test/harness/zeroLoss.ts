/**
 * The zero-loss workload shared by the blue-green tests and bench/zero-loss:
 * a flow (versioned, so each answer names the version that processed it),
 * a load generator that sends a numbered stream over MQTT (QoS 1) and HTTP
 * at a steady rate, and a collector that counts what came out.
 */
import { connectAsync, type MqttClient } from "mqtt";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort } from "../../dev/ports.ts";

export const RESULTS_TOPIC = "zeroloss/results";

export interface TestBroker {
  url: string;
  /** Where flows' mqtt-broker config nodes connect. */
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** The machine's broker when MQTT_URL is set (CI's Mosquitto rerun), else an in-process one on a free port. */
export async function testBroker(): Promise<TestBroker> {
  const own = process.env.MQTT_URL ? undefined : await startMqttBroker({ port: await freePort(), host: "127.0.0.1" });
  const url = process.env.MQTT_URL ?? own!.url!;
  const u = new URL(url);
  return { url, address: { host: u.hostname, port: Number(u.port || 1883) }, close: async () => { await own?.close(); } };
}

export interface FlowOptions {
  version: string;
  /** "gate": RedForge gate + exit (work arrives via redforge/ingest/{instance}); "plain": a bare mqtt-in on `plainTopic`. */
  entry: "gate" | "plain";
  broker: { host: string; port: number };
  plainTopic?: string;
  /** Work time per message inside a function node (ms, uniform in [min, max]). */
  workMs?: [number, number];
}

/** A flow with an HTTP path (POST /work) and an MQTT path, both answering {payload:{seq,version,runtime}, metadata}. */
export function zeroLossFlow(o: FlowOptions): unknown[] {
  const [min, max] = o.workMs ?? [5, 25];
  const tab = "zl-tab";
  const fn = (id: string, wires: string[]) => ({
    id, type: "function", z: tab, name: `work ${o.version}`, outputs: 1, wires: [wires],
    func: `const seq = msg.payload && msg.payload.seq;
const started = Date.now();
setTimeout(() => {
  msg.payload = { payload: { seq, version: ${JSON.stringify(o.version)}, runtime: env.get("REDFORGE_RUNTIME_ID") || "" },
    metadata: { flowId: "zero-loss", timestamp: new Date().toISOString(), source: msg.req ? "http" : "mqtt", contentType: "application/json", status: "completed" } };
  node.send(msg);
  node.done();
}, ${min} + Math.floor(Math.random() * ${max - min + 1}));
return null;`,
  });
  const nodes: unknown[] = [
    { id: tab, type: "tab", label: `zero-loss ${o.version}` },
    { id: "zl-broker", type: "mqtt-broker", name: "bus", broker: o.broker.host, port: String(o.broker.port), clientid: "", autoConnect: true, usetls: false, protocolVersion: "4", keepalive: "30", cleansession: true },
    // HTTP path
    { id: "zl-http-in", type: "http in", z: tab, url: "/work", method: "post", upload: false, wires: [[o.entry === "gate" ? "zl-gate-http" : "zl-fn-http"]] },
    fn("zl-fn-http", [o.entry === "gate" ? "zl-exit-http" : "zl-http-out"]),
    { id: "zl-http-out", type: "http response", z: tab, statusCode: "", headers: {}, wires: [] },
    // MQTT path
    fn("zl-fn-mqtt", [o.entry === "gate" ? "zl-exit-mqtt" : "zl-mqtt-out"]),
    { id: "zl-mqtt-out", type: "mqtt out", z: tab, topic: RESULTS_TOPIC, qos: "1", retain: "false", broker: "zl-broker", wires: [] },
  ];
  if (o.entry === "gate") {
    nodes.push(
      { id: "zl-gate-http", type: "redforge-gate", z: tab, name: "http gate", source: "input", ttl: 60, holdLimit: 5000, wires: [["zl-fn-http"]] },
      { id: "zl-exit-http", type: "redforge-exit", z: tab, wires: [["zl-http-out"]] },
      { id: "zl-gate-mqtt", type: "redforge-gate", z: tab, name: "mqtt gate", source: "mqtt", ttl: 60, holdLimit: 5000, wires: [["zl-fn-mqtt"]] },
      { id: "zl-exit-mqtt", type: "redforge-exit", z: tab, wires: [["zl-mqtt-out"]] },
    );
  } else {
    nodes.push({ id: "zl-mqtt-in", type: "mqtt in", z: tab, topic: o.plainTopic ?? "zeroloss/in", qos: "1", datatype: "json", broker: "zl-broker", nl: false, rap: false, inputs: 0, wires: [["zl-fn-mqtt"]] });
  }
  return nodes;
}

interface Sent { at: number; via: "mqtt" | "http" }
interface Answer { version: string; runtime: string; at: number }

export interface LoadReport {
  sent: { mqtt: number; http: number };
  lostMqtt: number[];
  duplicatedMqtt: number[];
  httpUnanswered: number;
  httpErrors: number;
  /** Status and body start of the first failed HTTP answers (diagnostics). */
  httpErrorSamples: string[];
  /**
   * HTTP requests without an answer, by why: `refused` (nothing listened: ECONNREFUSED), `reset` (the
   * connection closed under the request), `timeout` (no answer within the client's timeout: it hung),
   * `other`; and the first timeouts, for diagnosis.
   */
  httpFailures: { refused: number; reset: number; timeout: number; other: number; timeoutSamples: string[] };
  /** Per message: seq, when sent, and the version(s) that answered. */
  answers: Map<string, { sent: Sent; answers: Answer[] }>;
  latenciesMs(from: number, to: number): number[];
}

/**
 * Sends `rate` messages/s in total: MQTT QoS 1 to `mqttTopic` and, on a few
 * concurrent HTTP loops, POST {seq} to `httpUrl` (each loop sends its next
 * request when the last is answered, paced to its share of the rate).
 */
export class LoadGenerator {
  private producer?: MqttClient;
  private collector?: MqttClient;
  private readonly sent = new Map<string, Sent>();
  private readonly answers = new Map<string, Answer[]>();
  private httpUnanswered = 0;
  private httpErrors = 0;
  private readonly httpErrorSamples: string[] = [];
  private readonly httpFailures = { refused: 0, reset: 0, timeout: 0, other: 0, timeoutSamples: [] as string[] };
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(private readonly o: { brokerUrl: string; mqttTopic: string; httpUrl: string; rate: number; httpShare?: number; httpLoops?: number; httpTimeoutMs?: number }) {}

  async start(): Promise<void> {
    this.collector = await connectAsync(this.o.brokerUrl, { protocolVersion: 4, clean: true });
    this.collector.on("message", (_t, payload) => {
      const body = JSON.parse(payload.toString()) as { payload: { seq: string; version: string; runtime: string } };
      this.record(body.payload.seq, body.payload.version, body.payload.runtime);
    });
    await this.collector.subscribeAsync(RESULTS_TOPIC, { qos: 1 });
    this.producer = await connectAsync(this.o.brokerUrl, { protocolVersion: 4, clean: true });
    this.running = true;
    const httpShare = this.o.httpShare ?? 0.2;
    const mqttRate = this.o.rate * (1 - httpShare);
    this.loops.push(this.mqttLoop(mqttRate));
    const loops = this.o.httpLoops ?? 4;
    for (let i = 0; i < loops; i++) this.loops.push(this.httpLoop((this.o.rate * httpShare) / loops));
  }

  private record(seq: string, version: string, runtime: string): void {
    const list = this.answers.get(seq) ?? [];
    list.push({ version, runtime, at: Date.now() });
    this.answers.set(seq, list);
  }

  private async mqttLoop(rate: number): Promise<void> {
    if (rate <= 0) return;
    const interval = 1000 / rate;
    const t0 = Date.now();
    let n = 0;
    while (this.running) {
      const due = t0 + n * interval;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const seq = `m${++this.seq}`;
      this.sent.set(seq, { at: Date.now(), via: "mqtt" });
      this.producer!.publish(this.o.mqttTopic, JSON.stringify({ seq }), { qos: 1 });
      n++;
    }
  }

  private async httpLoop(rate: number): Promise<void> {
    if (rate <= 0) return;
    const interval = 1000 / rate;
    while (this.running) {
      const seq = `h${++this.seq}`;
      const at = Date.now();
      this.sent.set(seq, { at, via: "http" });
      try {
        const res = await fetch(this.o.httpUrl, {
          method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ seq }),
          signal: AbortSignal.timeout(this.o.httpTimeoutMs ?? 15_000),
        });
        const text = await res.text();
        if (res.ok) {
          const body = JSON.parse(text) as { payload: { version: string; runtime: string } };
          this.record(seq, body.payload.version, body.payload.runtime);
        } else {
          this.httpErrors++;
          this.httpErrorSamples.push(`${res.status} ${text.slice(0, 120)}`);
        }
      } catch (err) {
        this.httpUnanswered++;
        const line = `${seq} sent ${new Date(at).toISOString().slice(11, 23)} failed after ${Date.now() - at} ms: ${(err as Error).message} ${String((err as Error).cause ?? "")}`;
        this.httpErrorSamples.push(line);
        const why = `${(err as Error).name} ${String((err as Error).cause ?? "")}`;
        const kind = /TimeoutError|AbortError/.test(why) ? "timeout" : /ECONNREFUSED/.test(why) ? "refused" : /other side closed|ECONNRESET|socket hang up|SocketError/.test(why) ? "reset" : "other";
        this.httpFailures[kind]++;
        if (kind === "timeout" && this.httpFailures.timeoutSamples.length < 10) this.httpFailures.timeoutSamples.push(line);
      }
      const wait = at + interval - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** Stops sending, then waits until every MQTT message is answered or `settleMs` passes. */
  async stop(settleMs = 10_000): Promise<LoadReport> {
    this.running = false;
    await Promise.all(this.loops);
    const t0 = Date.now();
    const mqttSeqs = [...this.sent].filter(([, s]) => s.via === "mqtt").map(([k]) => k);
    while (Date.now() - t0 < settleMs && mqttSeqs.some((s) => !this.answers.has(s))) await new Promise((r) => setTimeout(r, 100));
    // A little longer for late duplicates to show up.
    await new Promise((r) => setTimeout(r, 500));
    // Forced: a graceful end waits for every unacknowledged QoS 1 publish, which a broker that lost one
    // never acknowledges (the run hangs instead of reporting the loss); what was sent is already counted.
    await Promise.all([this.producer?.endAsync(true), this.collector?.endAsync(true)]);
    const lost = mqttSeqs.filter((s) => !this.answers.has(s)).map((s) => Number(s.slice(1)));
    const dup = mqttSeqs.filter((s) => (this.answers.get(s)?.length ?? 0) > 1).map((s) => Number(s.slice(1)));
    const answers = new Map<string, { sent: Sent; answers: Answer[] }>();
    for (const [seq, sent] of this.sent) answers.set(seq, { sent, answers: this.answers.get(seq) ?? [] });
    return {
      sent: { mqtt: mqttSeqs.length, http: this.sent.size - mqttSeqs.length },
      lostMqtt: lost, duplicatedMqtt: dup, httpUnanswered: this.httpUnanswered, httpErrors: this.httpErrors, httpErrorSamples: this.httpErrorSamples.slice(0, 10),
      httpFailures: { ...this.httpFailures, timeoutSamples: [...this.httpFailures.timeoutSamples] }, answers,
      latenciesMs: (from, to) => [...answers.values()]
        .filter((a) => a.sent.at >= from && a.sent.at <= to && a.answers.length > 0)
        .map((a) => a.answers[0]!.at - a.sent.at),
    };
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * The bridge's blue-green steps in the order the control plane's
 * DeploymentRun sends them while `load` runs: holdDuring "deploy" (default:
 * prepare, drain, deploy, verify, then switch or roll back) or "switch"
 * (prepare, deploy, verify while blue serves, then drain and switch).
 * Driver-agnostic: the process and kubernetes tests and the bench share it.
 */
export async function blueGreenSteps(o: {
  bg: import("../../bridge/deploy/blueGreen.ts").BlueGreen;
  instanceId: string;
  v2: unknown[];
  /** "fail": the smoke test expects a version green does not answer, so it rolls back. */
  smoke: "pass" | "fail";
  holdDuring?: "deploy" | "switch";
  log?: (line: string) => void;
}): Promise<{ smoke: Record<string, unknown>; outcome: Record<string, unknown>; switchedAt: number; holdingSince: number; blue: string; green: string; drained: Record<string, unknown> }> {
  const step = (s: string) => o.log?.(`--- ${new Date().toISOString().slice(11, 23)} ${s}`);
  step("prepare");
  const prepared = await o.bg.prepare(o.instanceId);
  const blue = prepared.blue as string;
  const green = prepared.green as string;
  let drained: Record<string, unknown> = {};
  const drain = async () => {
    step("drain");
    drained = await o.bg.setGate(o.instanceId, { mode: "drain", runtime: blue, drainTimeoutMs: 10_000 });
    step(`drained: ${JSON.stringify(drained)}`);
  };
  if (o.holdDuring !== "switch") await drain();
  step("deploy");
  const deployed = await o.bg.deployFlows(green, o.v2);
  step("smoke");
  const smoke = await o.bg.smoke(o.instanceId, {
    runtime: green, kind: "verify", expectRev: deployed.rev as string, maxErrorRate: 0.05,
    checks: {
      http: { path: "/work", method: "POST", body: { seq: "smoke" }, expectStatus: 200, contract: true, timeoutMs: 5_000,
        expectJson: { payload: { version: o.smoke === "pass" ? "v2" : "v3" } } },
      mqtt: true, failureLimit: 0, pause: false,
    },
  });
  if (o.holdDuring === "switch" && smoke.verdict === "passed") await drain();
  step(`switch after smoke ${String(smoke.verdict)}`);
  let switchedAt = Number.POSITIVE_INFINITY;
  let outcome: Record<string, unknown>;
  if (smoke.verdict === "passed") {
    outcome = await o.bg.switchRoute(o.instanceId, blue, green);
    switchedAt = Date.now();
  } else {
    outcome = await o.bg.rollback(o.instanceId, { blue, green, switched: false });
  }
  step(`done: ${JSON.stringify(outcome)}`);
  const holdingSince = typeof drained.holdingSince === "string" ? Date.parse(drained.holdingSince) : Number.NaN;
  return { smoke, outcome, switchedAt, holdingSince, blue, green, drained };
}

/** What a zero-loss run must show as all zero/empty; one assertion, with the first HTTP failures as its message. */
export function losses(r: LoadReport): { lostMqtt: number[]; duplicatedMqtt: number[]; httpUnanswered: number; httpErrors: number } {
  return { lostMqtt: r.lostMqtt, duplicatedMqtt: r.duplicatedMqtt, httpUnanswered: r.httpUnanswered, httpErrors: r.httpErrors };
}
export const NO_LOSS = { lostMqtt: [], duplicatedMqtt: [], httpUnanswered: 0, httpErrors: 0 };
