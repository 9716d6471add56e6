/**
 * What each control-API call does to the data plane's fronts: an exhaustive
 * table, one entry per call of protocol.ts, arguments already parsed.
 */
import type { FrontRegistry } from "../routing/frontRegistry.ts";
import type { HttpFront } from "../routing/httpFront.ts";
import type { MqttFront } from "../routing/mqttFront.ts";
import { PortTakenError } from "../routing/frontRegistry.ts";
import type { HoldLease } from "./lease.ts";
import type { CallArgs, CallName, CallResult, DataPlaneErrorCode } from "./protocol.ts";

export class DataPlaneError extends Error {
  constructor(readonly code: DataPlaneErrorCode, message: string) {
    super(message);
  }
}

/** What a call may need besides the fronts. */
export interface CallContext {
  lease?: HoldLease;
}

type Handler<K extends CallName> = (fronts: FrontRegistry, args: CallArgs<K>, ctx: CallContext) => Promise<CallResult<K>>;

function http(fronts: FrontRegistry, instanceId: string): HttpFront {
  const front = fronts.http(instanceId);
  if (!front) throw new DataPlaneError("unknown_front", `no HTTP front for instance ${instanceId} in this data plane`);
  return front;
}

function mqtt(fronts: FrontRegistry, instanceId: string): MqttFront {
  const front = fronts.mqtt(instanceId);
  if (!front) throw new DataPlaneError("unknown_front", `no MQTT front for instance ${instanceId} in this data plane`);
  return front;
}

const done = {};

export const CALL_HANDLERS: { [K in CallName]: Handler<K> } = {
  "http.ensure": async (fronts, a) => {
    try {
      const front = await fronts.ensureHttp(a.instanceId, a.port, a.target);
      return { url: front.url, port: Number(new URL(front.url).port) };
    } catch (err) {
      if (err instanceof PortTakenError) throw new DataPlaneError("port_taken", err.message);
      throw err;
    }
  },
  "http.hold": async (fronts, a) => (await http(fronts, a.instanceId).hold(), done),
  "http.release": async (fronts, a) => ({ released: await http(fronts, a.instanceId).release() }),
  "http.setTarget": async (fronts, a) => (await http(fronts, a.instanceId).setTarget(a.target ?? undefined), done),
  "http.heldCount": async (fronts, a) => ({ held: await http(fronts, a.instanceId).heldCount() }),
  "http.counters": async (fronts, a) => http(fronts, a.instanceId).counters(),
  "mqtt.ensure": async (fronts, a) => ({ enabled: Boolean(await fronts.ensureMqtt(a.instanceId, () => a.target)) }),
  "mqtt.openHold": async (fronts, a) => (await mqtt(fronts, a.instanceId).openHold(), done),
  "mqtt.publishMode": async (fronts, a) => (await mqtt(fronts, a.instanceId).publishMode(a.runtimeId, a.mode), done),
  "mqtt.beginHandover": async (fronts, a) => handover(() => mqtt(fronts, a.instanceId).beginHandover(a.from, a.to, a.timeoutMs)),
  "mqtt.completeHandover": async (fronts, a) => handover(() => mqtt(fronts, a.instanceId).completeHandover(a.from, a.to)),
  "mqtt.abandonHandover": async (fronts, a) => (await mqtt(fronts, a.instanceId).abandonHandover(), done),
  "mqtt.setTarget": async (fronts, a) => (await mqtt(fronts, a.instanceId).setTarget(a.runtimeId), done),
  "mqtt.counters": async (fronts, a) => mqtt(fronts, a.instanceId).counters(),
  drop: async (fronts, a) => (await fronts.drop(a.instanceId), done),
  "hold.takeRelease": async (_fronts, a, ctx) => ({ released: ctx.lease?.take(a.instanceId) ?? null }),
};

/** A hand-over that cannot proceed (marker not back, nothing begun) is the deployment's business, not a data plane bug. */
async function handover<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof DataPlaneError) throw err;
    throw new DataPlaneError("handover_failed", err instanceof Error ? err.message : String(err));
  }
}
