/**
 * The bridge's half of the AI decision log: subscribes `redforge/audit/+` on
 * the cluster's MQTT bus (where each instance's redforge-ai-audit node
 * publishes), checks each record against the protocol, and hands it to the
 * AiAuditSender, which batches them into signed webhooks.
 *
 * A persistent session (fixed client id, clean: false, QoS 1) keeps records
 * published while the bridge restarts waiting in the broker. Between the
 * broker's ack and the control plane's, records live in this process's memory:
 * a bridge crash loses at most what was queued then.
 */
import { connect, type MqttClient } from "mqtt";
import { aiDecisionRecordSchema } from "../protocol/aiDecisions.ts";
import { AUDIT_TOPIC_FILTER, instanceOfAuditTopic } from "../protocol/mqtt.ts";
import { AiAuditSender, type AiAuditSenderOptions, type AiAuditStats } from "./aiAuditSender.ts";
import { errorMessage } from "./log.ts";

export interface AiAuditForwarderOptions extends AiAuditSenderOptions {
  mqttUrl: string;
}

export class AiAuditForwarder {
  private client?: MqttClient;
  private readonly sender: AiAuditSender;
  /** Messages that were not records (bad JSON or shape), logged and counted. */
  malformed = 0;
  private markReady!: () => void;
  private readonly ready = new Promise<void>((resolve) => { this.markReady = resolve; });

  constructor(private readonly opts: AiAuditForwarderOptions) {
    this.sender = new AiAuditSender(opts);
  }

  get stats(): AiAuditStats & { malformed: number } {
    return { ...this.sender.stats, malformed: this.malformed };
  }

  /** Connects in the background: a broker that is down at start only delays records (mqtt.js reconnects). */
  start(): void {
    const client = connect(this.opts.mqttUrl, {
      clientId: `redforge-bridge-audit-${this.opts.clusterId}`,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 1_000,
    });
    this.client = client;
    client.on("error", (err) => this.opts.log.warn(`ai decisions: mqtt: ${err.message}`));
    client.on("message", (topic, payload) => this.receive(topic, payload));
    client.on("connect", (ack) => {
      // A persistent session the broker kept still has the subscription.
      if (ack.sessionPresent) return this.markReady();
      client.subscribe(AUDIT_TOPIC_FILTER, { qos: 1 }, (err) => {
        if (err) return this.opts.log.error(`ai decisions: cannot subscribe ${AUDIT_TOPIC_FILTER}: ${err.message}`);
        this.opts.log.info(`ai decisions: forwarding ${AUDIT_TOPIC_FILTER} from ${this.opts.mqttUrl}`);
        this.markReady();
      });
    });
  }

  /** Resolves once the subscription stands (tests, benchmarks). */
  subscribed(): Promise<void> {
    return this.ready;
  }

  /** Resolves once every record received so far was delivered or given up (tests). */
  idle(): Promise<void> {
    return this.sender.idle();
  }

  async close(graceMs = 5_000): Promise<void> {
    await this.client?.endAsync().catch((err: unknown) => this.opts.log.warn(`ai decisions: mqtt close: ${errorMessage(err)}`));
    await this.sender.close(graceMs);
  }

  private receive(topic: string, payload: Buffer): void {
    const instanceId = instanceOfAuditTopic(topic);
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      return this.reject(topic, "not JSON");
    }
    // The topic names the instance: a record cannot speak for another one.
    const parsed = aiDecisionRecordSchema.safeParse(raw && typeof raw === "object" ? { ...raw, instanceId } : raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.reject(topic, `${issue?.path.join(".") || "record"}: ${issue?.message ?? "invalid"}`);
    }
    this.sender.add(parsed.data);
  }

  private reject(topic: string, why: string): void {
    this.malformed++;
    // One line per bad record would flood the log when a flow is wrong for every call.
    if (this.malformed <= 10 || this.malformed % 1000 === 0) {
      this.opts.log.warn(`ai decisions: ignored a message on ${topic} (${why}); ${this.malformed} ignored since start`);
    }
  }
}
