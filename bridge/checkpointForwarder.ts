/**
 * The bridge's half of checkpoint/replay (docs/agents.md "Checkpoint and
 * replay"): forwards the checkpoint records the instances' redforge-checkpoint
 * nodes publish on `redforge/checkpoints/+` to the control plane, and applies
 * the operators' replay/cancel requests the control plane answers with, on the
 * instance's serving runtime.
 *
 * A record is acknowledged to the broker only once the control plane stored
 * it (mqtt.js' handleMessage holds the PUBACK) on a persistent session, so
 * records published while the bridge or the control plane is down wait in the
 * broker; the node keeps each in its journal until the broker acknowledged it.
 * One record at a time: a checkpoint per workflow step is a trickle next to
 * the work itself. Every `pollMs` an empty batch asks for waiting requests.
 */
import { connect, type MqttClient } from "mqtt";
import type { BlueGreenDriver } from "./drivers/driver.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { ControlPlaneClient, Refused } from "./controlPlaneClient.ts";
import { errorMessage, type Logger } from "./log.ts";
import {
  CHECKPOINT_TOPIC_FILTER, checkpointBatchAnswerSchema, checkpointRecordSchema, checkpointWebhookPath, instanceOfCheckpointTopic,
  type CheckpointRecord, type Directive, type DirectiveResult,
} from "../protocol/workflows.ts";

export interface CheckpointForwarderOptions {
  api: string;
  clusterId: string;
  secret: string;
  mqttUrl: string;
  log: Logger;
  /** Where replay/cancel requests are applied; without it they are answered as failed. */
  driver?: Partial<BlueGreenDriver>;
  pollMs?: number;
  retry?: BackoffPolicy;
  requestTimeoutMs?: number;
}

export class CheckpointForwarder {
  readonly stats = { delivered: 0, malformed: 0, refused: 0, directives: 0 };
  private client?: MqttClient;
  private readonly cp: ControlPlaneClient;
  private readonly abort = new AbortController();
  private results: DirectiveResult[] = [];
  private poller?: NodeJS.Timeout;
  private polling = false;
  private markReady!: () => void;
  private readonly ready = new Promise<void>((resolve) => { this.markReady = resolve; });

  constructor(private readonly opts: CheckpointForwarderOptions) {
    this.cp = new ControlPlaneClient({ api: opts.api, secret: opts.secret, ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}) });
  }

  start(): void {
    const client = connect(this.opts.mqttUrl, { clientId: `redforge-bridge-checkpoints-${this.opts.clusterId}`, clean: false, protocolVersion: 4, reconnectPeriod: 1_000 });
    this.client = client;
    client.handleMessage = (packet, callback) => {
      void this.forward(packet.topic, Buffer.from(packet.payload as Buffer)).then(() => callback(), (err: unknown) => {
        this.opts.log.warn(`checkpoints: not forwarded (${errorMessage(err)}); the broker keeps it for the next session`);
      });
    };
    client.on("error", (err) => this.opts.log.warn(`checkpoints: mqtt: ${err.message}`));
    client.on("connect", (ack) => {
      if (ack.sessionPresent) return this.markReady();
      client.subscribe(CHECKPOINT_TOPIC_FILTER, { qos: 1 }, (err) => {
        if (err) return this.opts.log.error(`checkpoints: cannot subscribe ${CHECKPOINT_TOPIC_FILTER}: ${err.message}`);
        this.markReady();
      });
    });
    this.poller = setInterval(() => void this.poll(), this.opts.pollMs ?? 5_000);
    this.poller.unref();
  }

  subscribed(): Promise<void> {
    return this.ready;
  }

  async close(): Promise<void> {
    clearInterval(this.poller);
    this.abort.abort();
    await this.client?.endAsync(true).catch((err: unknown) => this.opts.log.warn(`checkpoints: mqtt close: ${errorMessage(err)}`));
  }

  /** One POST: records (maybe none) and what was done with earlier directives; applies the directives it answers. */
  private async send(records: CheckpointRecord[]): Promise<void> {
    const results = this.results.splice(0, 100);
    try {
      const res = await this.cp.post(checkpointWebhookPath(this.opts.clusterId), JSON.stringify({ records, results }), {
        retry: { ...(this.opts.retry ?? { baseMs: 250, capMs: 30_000 }), attempts: records.length ? Infinity : 1 },
        signal: this.abort.signal,
        onRetry: ({ attempt, delayMs, problem }) => {
          if (attempt === 1 || attempt % 10 === 0) this.opts.log.warn(`checkpoints: ${problem}; retrying (attempt ${attempt + 1}) in ${(delayMs / 1000).toFixed(1)} s`);
        },
      });
      const answer = checkpointBatchAnswerSchema.safeParse(JSON.parse(res.text));
      if (answer.success) for (const d of answer.data.directives) void this.apply(d);
    } catch (err) {
      this.results.unshift(...results); // reported with the next call
      throw err;
    }
  }

  private async poll(): Promise<void> {
    if (this.polling || this.abort.signal.aborted) return;
    this.polling = true;
    try {
      await this.send([]);
    } catch {
      // The next poll asks again; records have their own retries.
    } finally {
      this.polling = false;
    }
  }

  private async forward(topic: string, payload: Buffer): Promise<void> {
    const record = this.parse(topic, payload);
    if (!record) return;
    try {
      await this.send([record]);
      this.stats.delivered++;
    } catch (err) {
      if (this.abort.signal.aborted) throw err;
      this.stats.refused++;
      this.opts.log.error(`checkpoints: a record from ${topic} was refused and dropped: ${err instanceof Refused ? `HTTP ${err.status} ${err.code}` : errorMessage(err)}`);
    }
  }

  private parse(topic: string, payload: Buffer): CheckpointRecord | undefined {
    const instanceId = instanceOfCheckpointTopic(topic);
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      return this.reject(topic, "not JSON");
    }
    // The topic names the instance: a record cannot speak for another one.
    const parsed = checkpointRecordSchema.safeParse(raw && typeof raw === "object" ? { ...raw, instanceId } : raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.reject(topic, `${issue?.path.join(".") || "record"}: ${issue?.message ?? "invalid"}`);
    }
    return parsed.data;
  }

  private reject(topic: string, why: string): undefined {
    this.stats.malformed++;
    if (this.stats.malformed <= 10 || this.stats.malformed % 1000 === 0) this.opts.log.warn(`checkpoints: ignored a message on ${topic} (${why}); ${this.stats.malformed} ignored since start`);
    return undefined;
  }

  /** A replay or cancel, on the runtime that serves the instance now; its outcome goes up with the next call. */
  private async apply(d: Directive): Promise<void> {
    this.stats.directives++;
    const fail = (code: string, message: string) => {
      this.opts.log.warn(`checkpoints: ${d.action} of workflow ${d.workflowId} on ${d.instanceId} failed: ${message}`);
      this.results.push({ id: d.id, action: d.action, outcome: "failed", error: { code, message } });
    };
    const { driver } = this.opts;
    if (!driver?.servingOf || !driver.adminApi?.checkpoints) return fail("not_supported", "this bridge's driver cannot reach runtimes' checkpoints");
    try {
      const serving = await driver.servingOf(d.instanceId);
      const res = d.action === "cancel"
        ? await driver.adminApi.checkpoints(serving.base, "cancel", { workflowId: d.workflowId })
        : await driver.adminApi.checkpoints(serving.base, "resume", { records: [d.record], source: "replay" });
      const text = await res.text();
      if (!res.ok) return fail(res.status === 404 ? "workflow_not_found" : "runtime_refused", `${res.status} ${text.slice(0, 200)}`);
      if (d.action === "replay") {
        const outcome = (JSON.parse(text) as { results?: { outcome?: string; error?: { code: string; message: string } }[] }).results?.[0];
        if (!outcome || outcome.outcome === "failed" || outcome.outcome === "ignored") return fail(outcome?.error?.code ?? "not_resumed", outcome?.error?.message ?? `runtime answered ${text.slice(0, 200)}`);
      }
      this.results.push({ id: d.id, action: d.action, outcome: "applied" });
      this.opts.log.info(`checkpoints: ${d.action} of workflow ${d.workflowId} applied on ${serving.runtimeId}`);
    } catch (err) {
      fail("runtime_unreachable", errorMessage(err));
    }
    // Report it soon rather than at the next poll.
    void this.poll();
  }
}
