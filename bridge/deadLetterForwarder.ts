/**
 * Forwards the instances' dead letters (MQTT `redforge/dlq/+`, published by
 * the redforge-dlq node) to the control plane, which keeps them in
 * `dead_letters` (GET /api/dead-letters).
 *
 * A letter is acknowledged to the broker only after the control plane stored
 * it (mqtt.js' handleMessage holds the PUBACK), and the session is persistent
 * (fixed client id, clean: false): letters published while the bridge is down,
 * or while the control plane is unreachable, wait in the broker, not in this
 * process's memory. The price is one letter at a time, which is fine for what
 * should be a trickle. Each letter carries letterId = sha256(topic, payload),
 * so a letter the broker delivers again after a crash is stored once.
 *
 * It also replays letters an operator asked to replay (deadLetterForwarderReplay.ts).
 */
import { createHash } from "node:crypto";
import { connect, type MqttClient } from "mqtt";
import { bridgePaths } from "../protocol/paths.ts";
import { DLQ_TOPIC_FILTER, MAX_DEAD_LETTER_INPUT_BYTES, deadLetterSchema, instanceOfDlqTopic, type ForwardedDeadLetter } from "../protocol/deadLetters.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { ControlPlaneClient, Refused } from "./controlPlaneClient.ts";
import { DeadLetterReplayer } from "./deadLetterForwarderReplay.ts";
import { errorMessage, type Logger } from "./log.ts";

export interface DeadLetterForwarderOptions {
  api: string;
  clusterId: string;
  secret: string;
  mqttUrl: string;
  log: Logger;
  retry?: BackoffPolicy;
  requestTimeoutMs?: number;
  /** How often pending replays are collected (default 2 s). */
  replayPollMs?: number;
}

export class DeadLetterForwarder {
  readonly stats = { delivered: 0, duplicates: 0, malformed: 0, refused: 0 };
  private client?: MqttClient;
  private readonly cp: ControlPlaneClient;
  private readonly abort = new AbortController();
  private markReady!: () => void;
  private readonly ready = new Promise<void>((resolve) => { this.markReady = resolve; });
  readonly replays: DeadLetterReplayer;
  private replaying?: Promise<void>;

  constructor(private readonly opts: DeadLetterForwarderOptions) {
    this.cp = new ControlPlaneClient({ api: opts.api, secret: opts.secret, ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}) });
    this.replays = new DeadLetterReplayer({
      clusterId: opts.clusterId, cp: this.cp, mqtt: () => this.client, log: opts.log, signal: this.abort.signal,
      ...(opts.replayPollMs !== undefined ? { pollMs: opts.replayPollMs } : {}),
    });
  }

  start(): void {
    const client = connect(this.opts.mqttUrl, {
      clientId: `redforge-bridge-dlq-${this.opts.clusterId}`,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 1_000,
    });
    this.client = client;
    // The PUBACK goes when the callback is called: after the control plane has the letter.
    client.handleMessage = (packet, callback) => {
      void this.forward(packet.topic, Buffer.from(packet.payload as Buffer)).then(() => callback(), (err: unknown) => {
        // Only a shutdown gets here: leave the letter unacknowledged, the broker redelivers it to the next bridge.
        this.opts.log.warn(`dead letters: not forwarded (${errorMessage(err)}); the broker keeps it for the next session`);
      });
    };
    client.on("error", (err) => this.opts.log.warn(`dead letters: mqtt: ${err.message}`));
    client.on("connect", (ack) => {
      if (ack.sessionPresent) return this.markReady();
      client.subscribe(DLQ_TOPIC_FILTER, { qos: 1 }, (err) => {
        if (err) return this.opts.log.error(`dead letters: cannot subscribe ${DLQ_TOPIC_FILTER}: ${err.message}`);
        this.opts.log.info(`dead letters: forwarding ${DLQ_TOPIC_FILTER} from ${this.opts.mqttUrl}`);
        this.markReady();
      });
    });
    this.replaying = this.replays.run();
  }

  /** Resolves once the subscription stands (tests). */
  subscribed(): Promise<void> {
    return this.ready;
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.replaying;
    await this.client?.endAsync(true).catch((err: unknown) => this.opts.log.warn(`dead letters: mqtt close: ${errorMessage(err)}`));
  }

  /** Resolves when the letter is stored, refused or not a letter (all acknowledged); rejects only on shutdown. */
  private async forward(topic: string, payload: Buffer): Promise<void> {
    const letter = this.parse(topic, payload);
    if (!letter) return;
    try {
      const res = await this.cp.post(bridgePaths.deadLetters(this.opts.clusterId), JSON.stringify({ letters: [letter] }), {
        retry: { ...(this.opts.retry ?? { baseMs: 250, capMs: 30_000 }), attempts: Infinity },
        signal: this.abort.signal,
        onRetry: ({ attempt, delayMs, problem }) => {
          if (attempt === 1 || attempt % 10 === 0) this.opts.log.warn(`dead letters: ${problem}; retrying (attempt ${attempt + 1}) in ${(delayMs / 1000).toFixed(1)} s`);
        },
      });
      const answer = JSON.parse(res.text) as { duplicates?: number };
      if (answer.duplicates) this.stats.duplicates++;
      else this.stats.delivered++;
    } catch (err) {
      if (this.abort.signal.aborted) throw err;
      // A refusal (4xx: a foreign instance, a shape the control plane rejects) cannot improve by retrying.
      this.stats.refused++;
      this.opts.log.error(`dead letters: a letter from ${topic} was refused and dropped: ${err instanceof Refused ? `HTTP ${err.status} ${err.code}` : errorMessage(err)}`);
    }
  }

  private parse(topic: string, payload: Buffer): ForwardedDeadLetter | undefined {
    const instanceId = instanceOfDlqTopic(topic);
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      return this.reject(topic, "not JSON");
    }
    // The topic names the instance: a letter cannot speak for another one.
    const parsed = deadLetterSchema.safeParse(raw && typeof raw === "object" ? { ...raw, instanceId } : raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.reject(topic, `${issue?.path.join(".") || "letter"}: ${issue?.message ?? "invalid"}`);
    }
    const letter = parsed.data;
    const inputBytes = letter.input === undefined ? 0 : Buffer.byteLength(JSON.stringify(letter.input));
    const input = inputBytes > MAX_DEAD_LETTER_INPUT_BYTES ? { truncated: true, bytes: inputBytes } : letter.input;
    const letterId = createHash("sha256").update(topic).update("\n").update(payload).digest("hex");
    return { ...letter, ...(input === undefined ? {} : { input }), letterId };
  }

  private reject(topic: string, why: string): undefined {
    this.stats.malformed++;
    if (this.stats.malformed <= 10 || this.stats.malformed % 1000 === 0) {
      this.opts.log.warn(`dead letters: ignored a message on ${topic} (${why}); ${this.stats.malformed} ignored since start`);
    }
    return undefined;
  }
}
