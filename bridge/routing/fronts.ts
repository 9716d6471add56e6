/**
 * What a blue-green deployment may do with an instance's front door, whoever
 * runs it: the bridge's own HTTP front (process driver) and MQTT front (both
 * drivers when the cluster has a bus). Drivers hand these out through
 * BlueGreenDriver; deployment steps see only these interfaces, never the
 * classes behind them (httpFront.ts, mqttFront.ts).
 */
import type { GateMode } from "../../protocol/mqtt.ts";

export interface FrontCounters {
  forwarded: number;
  held: number;
  refused: number;
  /** Answers with status >= 500 from the instance, or none at all (post-switch analysis reads these). */
  serverErrors: number;
}

/** The HTTP front: holds new requests during a switch and releases them to the new target. */
export interface HttpRoute {
  /** From now on new requests wait at the front instead of reaching the instance. */
  hold(): void;
  /** Stops holding and forwards what waited, in arrival order; how many that were. */
  release(): number;
  /** Where traffic goes from now on (an Admin/HTTP base URL of one runtime). */
  setTarget(base: string | undefined): void;
  readonly heldCount: number;
  readonly counters: FrontCounters;
}

export interface HandoverResult {
  /** Messages the old runtime's gate held and the new one received. */
  replayed: number;
  /** Messages that arrived at the front during the hand-over. */
  buffered: number;
}

/** The MQTT front: the instance's one work-stream subscriber, which moves the stream between runtimes. */
export interface MqttRoute {
  /** Opens the hold queue's persistent session (before any gate drains). */
  openHold(): Promise<void>;
  /** Publishes a retained gate mode for a runtime. */
  publishMode(runtimeId: string, mode: GateMode): Promise<void>;
  /** Moves the work stream from `from` to `to`, replaying what `from`'s gate held; `activate` runs in between. */
  handover(from: string, to: string, activate: () => Promise<void>, timeoutMs?: number): Promise<HandoverResult>;
}
