/**
 * The MQTT half of an instance's front door. Producers publish work to
 * redforge/ingest/{instance}; the front is its one subscriber (a persistent
 * QoS 1 session, so work published while the bridge restarts waits in the
 * broker) and forwards each message, in order, to
 * redforge/active/{runtime} of whichever Node-RED serves. One subscriber is
 * what makes the switch exact: nothing is seen by two runtimes.
 *
 * A hand-over (blue → green, or back) replays what the draining gate put on
 * redforge/hold/{instance}: the front buffers new work, sends an end-of-hold
 * marker down the old runtime's active topic (the gate passes it to the hold
 * topic behind everything it held), collects the hold queue up to that
 * marker, republishes it to the new runtime, then flushes its own buffer and
 * forwards directly again. Order is preserved end to end; nothing is seen twice.
 */
import { connectAsync, type IClientPublishOptions, type MqttClient } from "mqtt";
import { endOfHoldMarker, gateControlMessage, mqttTopics, parseEndOfHold, type GateMode } from "../../protocol/mqtt.ts";
import type { HandoverResult, MqttRoute } from "./fronts.ts";

const QOS1: IClientPublishOptions = { qos: 1 };

export class MqttFront implements MqttRoute {
  private client?: MqttClient;
  private holdClient?: MqttClient;
  private target?: string;
  private buffering = false;
  private buffer: Buffer[] = [];
  private held: Buffer[] = [];
  private markerSeen?: { token: string; resolve: () => void };
  private readonly topics;
  forwarded = 0;

  constructor(private readonly url: string, readonly instanceId: string, private readonly log: (line: string) => void = () => {}) {
    this.topics = { ingest: mqttTopics.ingest(instanceId), hold: mqttTopics.hold(instanceId), active: mqttTopics.active, control: mqttTopics.control };
  }

  async start(target: string): Promise<void> {
    this.target = target;
    if (this.client) return;
    this.client = await connectAsync(this.url, { clientId: `rf-front-${this.instanceId}`, clean: false, protocolVersion: 4, reconnectPeriod: 500 });
    this.client.on("error", (err) => this.log(`mqtt front: ${err.message}`));
    this.client.on("message", (_topic, payload) => this.onIngest(payload));
    await this.client.subscribeAsync(this.topics.ingest, { qos: 1 });
  }

  get serving(): string | undefined {
    return this.target;
  }

  /** Where work goes from now on (no hand-over: for a restart of the same runtime). */
  setTarget(runtimeId: string): void {
    this.target = runtimeId;
  }

  /**
   * Opens the hold queue's persistent session before any gate drains, so the
   * broker keeps every held message for us from the first one on.
   */
  async openHold(): Promise<void> {
    if (this.holdClient) return;
    this.holdClient = await connectAsync(this.url, { clientId: `rf-hold-${this.instanceId}`, clean: false, protocolVersion: 4, reconnectPeriod: 500 });
    this.holdClient.on("error", (err) => this.log(`mqtt hold: ${err.message}`));
    this.holdClient.on("message", (_topic, payload) => this.onHeld(payload));
    await this.holdClient.subscribeAsync(this.topics.hold, { qos: 1 });
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** Publishes a retained gate mode for a runtime: a gate that (re)starts picks it up. */
  async publishMode(runtimeId: string, mode: GateMode): Promise<void> {
    await this.client!.publishAsync(this.topics.control(runtimeId), gateControlMessage(mode), { qos: 1, retain: true });
  }

  /**
   * Moves the work stream from `from` to `to` (they may be the same runtime:
   * a rollback before the switch). `activate` runs once the held queue is
   * complete and before anything is replayed: it sets the new runtime's gate active.
   */
  async handover(from: string, to: string, activate: () => Promise<void>, timeoutMs = 30_000): Promise<HandoverResult> {
    if (!this.client) throw new Error("mqtt front is not started");
    await this.openHold();
    this.buffering = true;
    try {
      const token = crypto.randomUUID();
      const marked = new Promise<void>((resolve, reject) => {
        this.markerSeen = { token, resolve };
        setTimeout(() => reject(new Error(`end-of-hold marker not back from ${from}'s gate within ${timeoutMs} ms (is its Node-RED running?)`)), timeoutMs).unref();
      });
      await this.client.publishAsync(this.topics.active(from), endOfHoldMarker(token), QOS1);
      const t0 = Date.now();
      await marked;
      const t1 = Date.now();
      await activate();
      const t2 = Date.now();
      // Held work, then what arrived meanwhile, then new work directly: all issued in this one
      // synchronous stretch, so nothing can slip in between, and one connection keeps the order.
      // (Awaiting PUBACKs batch by batch here never converges: a broker paces them by the consumer.)
      const held = this.held.splice(0);
      const buffered = this.buffer.splice(0);
      const acked = [...held, ...buffered].map((payload) => this.client!.publishAsync(this.topics.active(to), payload, QOS1));
      this.target = to;
      this.buffering = false;
      await Promise.all(acked);
      this.log(`hand-over ${from} → ${to}: marker back in ${t1 - t0} ms, gate active in ${t2 - t1} ms, ${held.length} held + ${buffered.length} buffered replayed in ${Date.now() - t2} ms`);
      return { replayed: held.length, buffered: buffered.length };
    } finally {
      this.buffering = false;
      this.markerSeen = undefined;
      // Anything still buffered (an error above) goes to the current target rather than being dropped.
      for (const payload of this.buffer.splice(0)) this.forward(payload);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.client?.endAsync(), this.holdClient?.endAsync()]);
    this.client = undefined;
    this.holdClient = undefined;
  }

  private onIngest(payload: Buffer): void {
    if (this.buffering) return void this.buffer.push(payload);
    this.forward(payload);
  }

  private forward(payload: Buffer): void {
    if (!this.target || !this.client) return void this.buffer.push(payload);
    this.forwarded++;
    this.client.publish(this.topics.active(this.target), payload, QOS1);
  }

  private onHeld(payload: Buffer): void {
    const marker = parseEndOfHold(payload);
    if (marker) {
      if (this.markerSeen && marker === this.markerSeen.token) this.markerSeen.resolve();
      return; // a stale marker from an earlier, interrupted hand-over: not work
    }
    this.held.push(payload);
  }
}
