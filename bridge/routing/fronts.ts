/**
 * What a blue-green deployment may do with an instance's front door, whoever
 * runs it: the data plane's HTTP front (process driver) and MQTT front (both
 * drivers when the cluster has a bus). Drivers hand these out through
 * BlueGreenDriver; deployment steps see only these interfaces, never the
 * classes behind them (httpFront.ts, mqttFront.ts, or the data plane's client
 * in bridge/dataplane/). Every call may cross a process boundary, so every
 * call is async and may fail with the data plane unreachable.
 */
import type { GateMode } from "../../protocol/mqtt.ts";

export interface FrontCounters {
  forwarded: number;
  held: number;
  refused: number;
  /** Answers with status >= 500 from the instance, or none at all (post-switch analysis reads these). */
  serverErrors: number;
  /**
   * Requests this front accepted whose connection closed before any answer was written (the client
   * gave up, or the connection was cut): seen, never answered. Absent from data planes before it.
   */
  unanswered?: number;
  /** Of `refused`: requests held past the front's bound and then refused (also counted in `held`). Absent from data planes before it. */
  heldRefused?: number;
  /**
   * Requests a killed predecessor of this front accepted inside the hold that is open now (or was the
   * last one) and never answered, from its request journal (httpFront.ts): a host restart's cut
   * requests, known without the bridge's drain baseline, which died with the bridge. Absent before it.
   */
  cutInHold?: number;
}

/** The HTTP front: holds new requests during a switch and releases them to the new target. */
export interface HttpRoute {
  /** The stable front URL. */
  readonly url: string;
  /** From now on new requests wait at the front instead of reaching the instance. */
  hold(): Promise<void>;
  /** Stops holding and forwards what waited, in arrival order; how many that were. */
  release(): Promise<number>;
  /** Where traffic goes from now on (an Admin/HTTP base URL of one runtime). */
  setTarget(base: string | undefined): Promise<void>;
  /** Requests waiting at the front now. */
  heldCount(): Promise<number>;
  counters(): Promise<FrontCounters>;
}

export interface HandoverResult {
  /** Messages the old runtime's gate held and the new one received. */
  replayed: number;
  /** Messages that arrived at the front during the hand-over. */
  buffered: number;
}

export interface HandoverBegun {
  /** Held messages collected so far (the hold queue up to the end-of-hold marker). */
  held: number;
  /** This hand-over already completed (a step re-run after a bridge restart): nothing to activate or replay. */
  done: boolean;
}

export interface MqttCounters {
  forwarded: number;
  /** Messages collected from the hold queue and not replayed yet (on disk in the spool). */
  held: number;
  /** Messages buffered by a hand-over under way. */
  buffered: number;
  /** The runtime work goes to. */
  target?: string;
}

/**
 * The MQTT front: the instance's one work-stream subscriber, which moves the
 * stream between runtimes. A hand-over is two calls, begin and complete, with
 * the new runtime's gate set active in between (see `handOver`); each is safe
 * to run again with the same from/to.
 */
export interface MqttRoute {
  /** Opens the hold queue's persistent session (before any gate drains). */
  openHold(): Promise<void>;
  /** Publishes a retained gate mode for a runtime. */
  publishMode(runtimeId: string, mode: GateMode): Promise<void>;
  /** Buffers new work and collects what `from`'s gate held, up to the end-of-hold marker. */
  beginHandover(from: string, to: string, timeoutMs?: number): Promise<HandoverBegun>;
  /** Replays held work, then buffered work, to `to`, and forwards there from now on. */
  completeHandover(from: string, to: string): Promise<HandoverResult>;
  /** A hand-over that failed between begin and complete: buffered work goes on to the current target; held work stays. */
  abandonHandover(): Promise<void>;
  /** Where work goes from now on, without a hand-over (a restart of the same runtime, a selector moved). */
  setTarget(runtimeId: string): Promise<void>;
  counters(): Promise<MqttCounters>;
}

/**
 * Moves the work stream from `from` to `to`, replaying what `from`'s gate
 * held; `activate` (the new runtime's gate set active) runs once the held
 * queue is complete and before anything is replayed.
 */
export async function handOver(route: MqttRoute, from: string, to: string, activate: () => Promise<void>, timeoutMs?: number): Promise<HandoverResult> {
  try {
    const begun = await route.beginHandover(from, to, timeoutMs);
    await activate();
    if (begun.done) return { replayed: 0, buffered: 0 };
    return await route.completeHandover(from, to);
  } catch (err) {
    // Work buffered for a hand-over that will not complete goes on where it went before, not nowhere.
    await route.abandonHandover().catch(() => {});
    throw err;
  }
}
