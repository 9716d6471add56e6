/**
 * The routing interfaces deployment steps see (HttpRoute, MqttRoute), for
 * fronts that run in the data plane: each method is one control-API call.
 */
import type { GateMode } from "../../protocol/mqtt.ts";
import type { FrontCounters, HandoverBegun, HandoverResult, HttpRoute, MqttCounters, MqttRoute } from "../routing/fronts.ts";
import type { ReleaseRecord } from "./lease.ts";
import type { CallArgs, CallName, CallResult } from "./protocol.ts";
import { DataPlaneCallFailed } from "./transport.ts";

export type Caller = <K extends CallName>(args: CallArgs<K>) => Promise<CallResult<K>>;

export class RemoteHttpRoute implements HttpRoute {
  constructor(private readonly call: Caller, private readonly instanceId: string, public url: string, private readonly onTarget: (base: string | undefined) => void) {}

  async hold(): Promise<void> {
    await this.call({ op: "http.hold", instanceId: this.instanceId });
  }

  async release(): Promise<number> {
    return (await this.call({ op: "http.release", instanceId: this.instanceId })).released;
  }

  async setTarget(base: string | undefined): Promise<void> {
    this.onTarget(base);
    await this.call({ op: "http.setTarget", instanceId: this.instanceId, target: base ?? null });
  }

  async heldCount(): Promise<number> {
    return (await this.call({ op: "http.heldCount", instanceId: this.instanceId })).held;
  }

  async counters(): Promise<FrontCounters> {
    return this.call({ op: "http.counters", instanceId: this.instanceId });
  }
}

export class RemoteMqttRoute implements MqttRoute {
  constructor(private readonly call: Caller, private readonly instanceId: string, private readonly onTarget: (runtimeId: string) => void) {}

  async openHold(): Promise<void> {
    await this.call({ op: "mqtt.openHold", instanceId: this.instanceId });
  }

  async publishMode(runtimeId: string, mode: GateMode): Promise<void> {
    await this.call({ op: "mqtt.publishMode", instanceId: this.instanceId, runtimeId, mode });
  }

  async beginHandover(from: string, to: string, timeoutMs?: number): Promise<HandoverBegun> {
    return this.call({ op: "mqtt.beginHandover", instanceId: this.instanceId, from, to, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  async completeHandover(from: string, to: string): Promise<HandoverResult> {
    const result = await this.call({ op: "mqtt.completeHandover", instanceId: this.instanceId, from, to });
    this.onTarget(to);
    return result;
  }

  async abandonHandover(): Promise<void> {
    await this.call({ op: "mqtt.abandonHandover", instanceId: this.instanceId });
  }

  async setTarget(runtimeId: string): Promise<void> {
    this.onTarget(runtimeId);
    await this.call({ op: "mqtt.setTarget", instanceId: this.instanceId, runtimeId });
  }

  async counters(): Promise<MqttCounters> {
    return this.call({ op: "mqtt.counters", instanceId: this.instanceId });
  }

  /** A hold the data plane released on its own after losing its bridge (lease.ts); blueGreen.ts reads it before a switch. */
  async takeRelease(): Promise<ReleaseRecord | undefined> {
    try {
      return (await this.call({ op: "hold.takeRelease", instanceId: this.instanceId })).released ?? undefined;
    } catch (err) {
      // A data plane from before leases does not know the call: it never releases on its own.
      if (err instanceof DataPlaneCallFailed && err.code === "invalid_request") return undefined;
      throw err;
    }
  }
}
