/**
 * The data plane's control API, spoken over `<stateDir>/dataplane.sock`
 * (HTTP/1.1 with JSON bodies): one table of calls, each with its argument
 * and result schema, parsed by both sides. `GET /ping` and `GET /status`
 * keep their shape across protocol versions, so a bridge of another version
 * can still tell what runs and whether it holds work.
 */
import path from "node:path";
import { z } from "zod";
import { GATE_MODES } from "../../protocol/mqtt.ts";

/** Bumped whenever a call or result below changes shape. */
export const DATA_PLANE_PROTOCOL = 1;

export const dataPlaneFiles = (stateDir: string) => ({
  socket: path.join(stateDir, "dataplane.sock"),
  info: path.join(stateDir, "dataplane.json"),
  log: path.join(stateDir, "dataplane.log"),
});

/** `<stateDir>/dataplane.json`: who runs the data plane of this state dir. */
export const dataPlaneInfo = z.object({ pid: z.number().int(), version: z.number().int(), startedAt: z.string(), bridgeVersion: z.string().optional() });
export type DataPlaneInfo = z.infer<typeof dataPlaneInfo>;

export const pingResult = dataPlaneInfo.extend({ protocol: z.number().int() });

const frontStatus = z.object({
  instanceId: z.string(),
  http: z.object({ url: z.string(), target: z.string().optional(), holding: z.boolean(), held: z.number().int() }).optional(),
  mqtt: z.object({ target: z.string().optional(), forwarded: z.number().int(), held: z.number().int(), buffered: z.number().int() }).optional(),
});
export const statusResult = pingResult.extend({ mqttUrl: z.string().optional(), fronts: z.array(frontStatus) });
export type DataPlaneStatus = z.infer<typeof statusResult>;

/** True when stopping this front now would drop work: held requests, held or buffered MQTT messages. */
export const frontHoldsWork = (f: z.infer<typeof frontStatus>): boolean =>
  Boolean((f.http && (f.http.holding || f.http.held > 0)) || (f.mqtt && (f.mqtt.held > 0 || f.mqtt.buffered > 0)));

export const shutdownArgs = z.object({ onlyIfIdle: z.boolean().default(false) });
export const shutdownResult = z.object({ stopping: z.boolean(), reason: z.string().optional() });

const instanceId = z.string().min(1).max(128);
const runtimeId = z.string().min(1).max(160);
const base = z.url();
const counters = z.object({ forwarded: z.number(), held: z.number(), refused: z.number(), serverErrors: z.number(), unanswered: z.number().optional(), heldRefused: z.number().optional(), cutInHold: z.number().optional() });
const mqttCounters = z.object({ forwarded: z.number(), held: z.number(), buffered: z.number(), target: z.string().optional() });
const handoverResult = z.object({ replayed: z.number().int(), buffered: z.number().int() });
const none = z.object({});
const releaseRecord = z.object({ runtime: runtimeId, at: z.string(), replayed: z.number().int(), buffered: z.number().int(), httpReleased: z.number().int() });

/**
 * `POST /lease` (body `{leaseMs?}`): held open by the bridge for as long as it lives (lease.ts). The data
 * plane answers 200 with one line once any release of its own is over, and never ends the body. Added
 * within protocol 1: a data plane without it answers 400 (the bridge then runs without a lease).
 */
export const leaseArgs = z.object({ leaseMs: z.number().int().min(0).max(600_000).optional() });

/** Every call: its arguments (besides `op` and `instanceId`) and its result. */
export const CALLS = {
  "http.ensure": { args: { port: z.number().int().min(0).max(65535), target: base.optional() }, result: z.object({ url: z.string(), port: z.number().int() }) },
  "http.hold": { args: {}, result: none },
  "http.release": { args: {}, result: z.object({ released: z.number().int() }) },
  "http.setTarget": { args: { target: base.nullable() }, result: none },
  "http.heldCount": { args: {}, result: z.object({ held: z.number().int() }) },
  "http.counters": { args: {}, result: counters },
  /** `enabled: false`: the data plane has no MQTT bus. */
  "mqtt.ensure": { args: { target: runtimeId }, result: z.object({ enabled: z.boolean() }) },
  "mqtt.openHold": { args: {}, result: none },
  "mqtt.publishMode": { args: { runtimeId, mode: z.enum(GATE_MODES) }, result: none },
  "mqtt.beginHandover": { args: { from: runtimeId, to: runtimeId, timeoutMs: z.number().int().positive().max(600_000).optional() }, result: z.object({ held: z.number().int(), done: z.boolean() }) },
  "mqtt.completeHandover": { args: { from: runtimeId, to: runtimeId }, result: handoverResult },
  "mqtt.abandonHandover": { args: {}, result: none },
  "mqtt.setTarget": { args: { runtimeId }, result: none },
  "mqtt.counters": { args: {}, result: mqttCounters },
  drop: { args: {}, result: none },
  /** A hold the data plane released on its own since a bridge last asked (lease.ts), or null; forgotten once answered. */
  "hold.takeRelease": { args: {}, result: z.object({ released: releaseRecord.nullable() }) },
} as const;

export type CallName = keyof typeof CALLS;
type ArgShape<K extends CallName> = (typeof CALLS)[K]["args"];
// A call without arguments infers to Record<string, never>, which `op` and `instanceId` would contradict.
type ArgsOf<K extends CallName> = keyof ArgShape<K> extends never ? unknown : z.infer<z.ZodObject<ArgShape<K>>>;
export type CallArgs<K extends CallName> = { op: K; instanceId: string } & ArgsOf<K>;
export type CallResult<K extends CallName> = z.infer<(typeof CALLS)[K]["result"]>;

const callNames = Object.keys(CALLS) as [CallName, ...CallName[]];
/** One request body schema for every call, discriminated by `op`. */
export const callRequest = z.discriminatedUnion(
  "op",
  callNames.map((op) => z.object({ op: z.literal(op), instanceId, ...CALLS[op].args })) as unknown as [z.ZodObject<{ op: z.ZodLiteral<CallName> }>, ...z.ZodObject<{ op: z.ZodLiteral<CallName> }>[]],
);
export type AnyCall = { [K in CallName]: CallArgs<K> }[CallName];

/** Failures the data plane names; anything else is `internal`. */
export const DATA_PLANE_ERRORS = ["invalid_request", "unknown_front", "port_taken", "no_mqtt", "handover_failed", "internal"] as const;
export const errorBody = z.object({ error: z.object({ code: z.enum(DATA_PLANE_ERRORS), message: z.string() }) });
export type DataPlaneErrorCode = (typeof DATA_PLANE_ERRORS)[number];
