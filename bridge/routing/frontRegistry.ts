/**
 * The traffic fronts one process runs, per instance: an HTTP front where
 * RedForge routes HTTP itself (process driver) and an MQTT front where the
 * cluster has a bus (both drivers). The process driver's fronts run in the
 * data plane process (bridge/dataplane/), which holds one of these; the
 * kubernetes driver keeps one in the bridge process for its MQTT fronts.
 * Deployment steps see the fronts only as HttpRoute / MqttRoute.
 */
import path from "node:path";
import { HttpFront } from "./httpFront.ts";
import { MqttFront } from "./mqttFront.ts";

export interface FrontRegistryOptions {
  /** The cluster's MQTT bus as this process reaches it; no MQTT fronts without it. */
  mqttUrl?: string;
  /** Where HTTP fronts listen (process driver). */
  host?: string;
  /** Held MQTT work is spooled to `<spoolRoot>/<instanceId>/hold.spool` (in memory when absent); HTTP fronts journal requests to `<spoolRoot>/<instanceId>/http.journal`. */
  spoolRoot?: string;
  /** fsync each spooled record. */
  spoolFsync?: boolean;
  log: (instanceId: string, line: string) => void;
}

export class PortTakenError extends Error {
  constructor(readonly port: number, cause: unknown) {
    super(`port ${port} is taken: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export class FrontRegistry {
  private readonly httpFronts = new Map<string, HttpFront>();
  private readonly mqttFronts = new Map<string, MqttFront>();
  private readonly starting = new Map<string, Promise<MqttFront>>();

  constructor(private readonly opts: FrontRegistryOptions) {}

  http(instanceId: string): HttpFront | undefined {
    return this.httpFronts.get(instanceId);
  }

  mqtt(instanceId: string): MqttFront | undefined {
    return this.mqttFronts.get(instanceId);
  }

  instanceIds(): string[] {
    return [...new Set([...this.httpFronts.keys(), ...this.mqttFronts.keys()])];
  }

  /**
   * The instance's MQTT front, started once and forwarding to the runtime
   * `target` names (asked only when a front is started). Undefined without a
   * bus. Two callers at once share one front.
   */
  async ensureMqtt(instanceId: string, target: () => string | Promise<string>): Promise<MqttFront | undefined> {
    const url = this.opts.mqttUrl;
    if (!url) return undefined;
    const known = this.mqttFronts.get(instanceId);
    if (known) return known;
    let starting = this.starting.get(instanceId);
    if (!starting) {
      starting = (async () => {
        const front = new MqttFront(url, instanceId, {
          log: (line) => this.opts.log(instanceId, line),
          ...(this.opts.spoolRoot ? { spoolDir: path.join(this.opts.spoolRoot, instanceId), fsync: this.opts.spoolFsync ?? false } : {}),
        });
        try {
          await front.start(await target());
        } catch (err) {
          await front.close().catch(() => {});
          throw err;
        }
        this.mqttFronts.set(instanceId, front);
        return front;
      })().finally(() => this.starting.delete(instanceId));
      this.starting.set(instanceId, starting);
    }
    return starting;
  }

  /**
   * The instance's HTTP front on `port`, forwarding to `target`; a front that
   * already runs keeps its port, target and hold state. PortTakenError when
   * the port is taken (the caller picks another one).
   */
  async ensureHttp(instanceId: string, port: number, target: string | undefined): Promise<HttpFront> {
    const known = this.httpFronts.get(instanceId);
    if (known) return known;
    // The request journal sits beside the MQTT spool: a front that comes back after a kill counts what its predecessor cut.
    const front = new HttpFront(this.opts.host ?? "127.0.0.1", {
      log: (line) => this.opts.log(instanceId, line),
      ...(this.opts.spoolRoot ? { journalDir: path.join(this.opts.spoolRoot, instanceId) } : {}),
    });
    await front.listen(port).catch((err: unknown) => { throw new PortTakenError(port, err); });
    await front.setTarget(target);
    this.httpFronts.set(instanceId, front);
    return front;
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
