/**
 * The traffic fronts this bridge process runs, per instance: an HTTP front
 * where the bridge routes HTTP itself (process driver) and an MQTT front
 * where the cluster has a bus (both drivers). Fronts live in the bridge
 * process, so after a bridge restart they exist again only once a driver asks
 * for them (create, a status poll, BlueGreenDriver.ensureFronts). Drivers own
 * a registry; deployment steps see the fronts only as HttpRoute / MqttRoute.
 */
import { HttpFront } from "./httpFront.ts";
import { MqttFront } from "./mqttFront.ts";

export interface FrontRegistryOptions {
  /** The cluster's MQTT bus as the bridge reaches it; no MQTT fronts without it. */
  mqttUrl?: string;
  /** Where HTTP fronts listen (process driver). */
  host?: string;
  log: (instanceId: string, line: string) => void;
}

export class FrontRegistry {
  private readonly httpFronts = new Map<string, HttpFront>();
  private readonly mqttFronts = new Map<string, MqttFront>();

  constructor(private readonly opts: FrontRegistryOptions) {}

  http(instanceId: string): HttpFront | undefined {
    return this.httpFronts.get(instanceId);
  }

  mqtt(instanceId: string): MqttFront | undefined {
    return this.mqttFronts.get(instanceId);
  }

  /**
   * The instance's MQTT front, started once per bridge process and forwarding
   * to the runtime `target` names (asked only when a front is started).
   * Undefined without a bus. Registered before it connects, so two callers at once share one front.
   */
  async ensureMqtt(instanceId: string, target: () => string | Promise<string>): Promise<MqttFront | undefined> {
    if (!this.opts.mqttUrl) return undefined;
    let front = this.mqttFronts.get(instanceId);
    if (front) return front;
    front = new MqttFront(this.opts.mqttUrl, instanceId, (line) => this.opts.log(instanceId, line));
    this.mqttFronts.set(instanceId, front);
    try {
      await front.start(await target());
    } catch (err) {
      this.mqttFronts.delete(instanceId);
      throw err;
    }
    return front;
  }

  /**
   * The instance's HTTP front on `port`, forwarding to `target`. When the port
   * is taken (something else grabbed it while the instance was down), it
   * listens on `fallback()` instead and says so in `moved`: the front URL changed.
   */
  async ensureHttp(instanceId: string, port: number, target: string, fallback: () => Promise<number>): Promise<{ front: HttpFront; moved?: number }> {
    const known = this.httpFronts.get(instanceId);
    if (known) return { front: known };
    const front = new HttpFront(this.opts.host ?? "127.0.0.1");
    let moved: number | undefined;
    await front.listen(port).catch(async () => {
      moved = await front.listen(await fallback());
      this.opts.log(instanceId, `front port ${port} is taken; front door moved to ${moved}`);
    });
    front.setTarget(target);
    this.httpFronts.set(instanceId, front);
    return moved === undefined ? { front } : { front, moved };
  }

  /** Closes and forgets the instance's fronts (destroy). */
  async drop(instanceId: string): Promise<void> {
    await this.httpFronts.get(instanceId)?.close();
    this.httpFronts.delete(instanceId);
    await this.mqttFronts.get(instanceId)?.close();
    this.mqttFronts.delete(instanceId);
  }

  async close(): Promise<void> {
    await Promise.all([...this.httpFronts.values()].map((f) => f.close()));
    await Promise.all([...this.mqttFronts.values()].map((f) => f.close()));
    this.httpFronts.clear();
    this.mqttFronts.clear();
  }
}
