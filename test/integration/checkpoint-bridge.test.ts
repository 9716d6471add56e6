/**
 * Checkpoints through the bridge, on real Node-RED and a real MQTT broker: the
 * records a workflow writes travel node → broker → the bridge's
 * CheckpointForwarder → a signed webhook, each arriving once even when the
 * control plane was down while they were written; a step interrupted by a
 * `kill -9` is not run again on its own (the run is failed `step_interrupted`),
 * and an operator's replay, handed to the bridge as a directive, runs it on
 * the serving runtime and the workflow finishes.
 */
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointForwarder } from "../../bridge/checkpointForwarder.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { verifyWebhook } from "../../protocol/webhooks.ts";
import { checkpointWebhookPath, type CheckpointRecord, type Directive, type DirectiveResult } from "../../protocol/workflows.ts";
import { checkpointWorkflow, StepSink } from "../harness/checkpointFlow.ts";
import { until } from "../harness/eventually.ts";
import { testBroker, type TestBroker } from "../harness/zeroLoss.ts";

const TOKEN = "checkpoint-bridge-admin-token-0123456789";
const CLUSTER = crypto.randomUUID();
const SECRET = `whsec_${Buffer.from("checkpoint-bridge-test-secret-32").toString("base64")}`;

/** The control plane's checkpoint webhook, signature-checked: stores records, hands out directives, can be down. */
class CheckpointEndpoint {
  readonly received: CheckpointRecord[] = [];
  readonly results: DirectiveResult[] = [];
  directives: Directive[] = [];
  down = false;
  refusedWhileDown = 0;
  url = "";
  private server?: http.Server;

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => void (async () => {
        if (req.url !== checkpointWebhookPath(CLUSTER)) return end(res, 404, {});
        const check = await verifyWebhook([SECRET], { get: (n: string) => (req.headers[n.toLowerCase()] as string | undefined) ?? null }, body);
        if (!check.ok) return end(res, 401, { error: { code: "invalid_signature", message: "bad signature" } });
        if (this.down) {
          this.refusedWhileDown++;
          return end(res, 503, { error: { code: "database_unavailable", message: "down by test" } });
        }
        const batch = JSON.parse(body) as { records: CheckpointRecord[]; results: DirectiveResult[] };
        this.received.push(...batch.records);
        this.results.push(...batch.results);
        end(res, 202, { accepted: true, stored: batch.records.length, directives: this.directives.splice(0) });
      })());
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  of(workflowId: string): CheckpointRecord[] {
    return this.received.filter((r) => r.workflowId === workflowId);
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

function end(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

let tmp: string;
let broker: TestBroker;
let driver: ProcessDriver;
let forwarder: CheckpointForwarder;
const sink = new StepSink();
const cp = new CheckpointEndpoint();
const logs: string[] = [];
const log = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m), error: (m: string) => logs.push(m) };

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-ckbr-"));
  broker = await testBroker();
  await Promise.all([sink.start(), cp.start()]);
  const tarball = await packNodePackage(path.join(tmp, "pkg"));
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball], adminToken: TOKEN, mqttUrl: broker.url,
    restart: { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 100 } });
  forwarder = new CheckpointForwarder({ api: cp.url, clusterId: CLUSTER, secret: SECRET, mqttUrl: broker.url, log, driver, pollMs: 500, retry: { baseMs: 100, capMs: 500 } });
  forwarder.start();
  await forwarder.subscribed();
}, 120_000);

afterAll(async () => {
  await forwarder?.close();
  await driver?.close();
  await broker?.close();
  await Promise.all([sink.close(), cp.close()]);
  await fs.rm(tmp, { recursive: true, force: true });
});

const spec = (id: string, flows: unknown[]) => ({ id, name: `ckbr-${id.slice(0, 8)}`, flows, resources: {}, env: {}, credentialSecret: "checkpoint-bridge-credential-secret" });
const explain = () => `sink: ${JSON.stringify(sink.calls)}\nrecords: ${JSON.stringify(cp.received.map((r) => [r.workflowId, r.step, r.phase]))}\nlog:\n${logs.slice(-30).join("\n")}`;

async function start(base: string, id: string): Promise<void> {
  const res = await fetch(`${base}/wf/start`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id }), signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(202);
  await res.arrayBuffer();
}

describe("checkpoints through the bridge", () => {
  it("records written while the control plane is down reach it once it is back, each exactly once", async () => {
    const id = crypto.randomUUID();
    const { endpoints } = await driver.create(spec(id, checkpointWorkflow({ sinkPort: sink.port, pauseMs: 100 })));
    cp.down = true;
    const wf = `wf-down-${id.slice(0, 8)}`;
    await start(endpoints.admin, wf);
    // The workflow does not wait for the control plane: its checkpoints are in the journal and the broker.
    await until("workflow finished", () => sink.done.find((d) => d.id === wf), { timeoutMs: 60_000, explain });
    await until("a refused delivery", () => cp.refusedWhileDown > 0, { timeoutMs: 30_000, explain });
    expect(cp.of(wf)).toEqual([]);
    cp.down = false;
    await until("every record", () => cp.of(wf).length >= 10, { timeoutMs: 60_000, explain });
    const records = cp.of(wf);
    expect(new Set(records.map((r) => r.checkpointId)).size).toBe(records.length);
    expect(records.map((r) => `${r.step}:${r.phase}`)).toEqual([
      "s1:started", "s1:completed", "s2:started", "s2:completed", "s3:started", "s3:completed", "s4:started", "s4:completed", "s5:started", "s5:finished",
    ]);
    expect(records.every((r) => r.instanceId === id && r.kind === "five-steps")).toBe(true);
    expect(records[0]!.inputHash).toMatch(/^[0-9a-f]{64}$/);
    expect(records.at(-1)!.completed).toEqual(["s1", "s2", "s3", "s4", "s5"]);
  }, 150_000);

  it("a step cut by kill -9 is not run again on its own; an operator's replay through the bridge runs it and the workflow finishes", async () => {
    const id = crypto.randomUUID();
    const { endpoints } = await driver.create(spec(id, checkpointWorkflow({ sinkPort: sink.port, pauseMs: 100 })));
    const wf = `wf-cut-${id.slice(0, 8)}`;
    sink.holdStep = 3;
    await start(endpoints.admin, wf);
    await until("step 3 under way", () => sink.countsOf(wf)[2] === 1, { timeoutMs: 60_000, explain });
    const record = JSON.parse(await fs.readFile(path.join(tmp, "instances", id, "runtime.json"), "utf8")) as { pid: number };
    process.kill(record.pid, "SIGKILL");
    sink.release();

    // At most once: the restarted runtime fails the run instead of calling step 3 again.
    const failed = await until("the run failed as interrupted", () => cp.of(wf).find((r) => r.phase === "failed"), { timeoutMs: 90_000, explain });
    expect(failed).toMatchObject({ step: "s3", error: { code: "step_interrupted" }, completed: ["s1", "s2"] });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(sink.countsOf(wf)).toEqual([1, 1, 1, 0, 0]);

    // The operator checked step 3's effect and replays it (what POST /api/workflows/:id/replay hands the bridge).
    const started = cp.of(wf).find((r) => r.step === "s3" && r.phase === "started")!;
    const directive: Directive = { id: crypto.randomUUID(), instanceId: id, workflowId: wf, action: "replay",
      record: { workflowId: wf, kind: started.kind, step: "s3", phase: "handed_over", resume: "before", state: started.state, completed: ["s1", "s2"] } };
    cp.directives.push(directive);
    await until("workflow finished", () => sink.done.find((d) => d.id === wf), { timeoutMs: 60_000, explain });
    expect(sink.countsOf(wf)).toEqual([1, 1, 2, 1, 1]);
    await until("the replay reported", () => cp.results.find((r) => r.id === directive.id), { timeoutMs: 30_000, explain });
    expect(cp.results.find((r) => r.id === directive.id)).toMatchObject({ action: "replay", outcome: "applied" });
    await until("the finished record", () => cp.of(wf).find((r) => r.phase === "finished"), { timeoutMs: 30_000, explain });
  }, 180_000);
});
