/**
 * The command channel (control plane → bridge), shared by both sides. A
 * command travels over the ClusterLink WebSocket; the bridge answers with a
 * signed `command.result` webhook (reports.ts). Ids are unique: the bridge
 * never executes the same id twice, the control plane redelivers until answered.
 */
import { z } from "zod";
import { endpointsSchema } from "./reports.ts";
import { stackIdSchema, supportedStackSchema } from "./stacks.ts";

export const COMMAND_TYPES = [
  "instance.create", "instance.start", "instance.stop", "instance.destroy", "instance.scale", "instance.restart",
  "flows.deploy", "gate.set", "gate.replay", "smoke.run", "route.switch", "health.report",
  "deployment.prepare", "deployment.rollback", "deployment.cleanup",
] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

export const instanceSpecSchema = z.object({
  id: z.uuid(),
  name: z.string().min(1).max(63),
  flows: z.array(z.unknown()),
  resources: z.object({ cpu: z.string().optional(), memory: z.string().optional() }),
  env: z.record(z.string(), z.string()),
  credentialSecret: z.string().min(16),
  /** The Node-RED version line to run ("5.0"); absent from older control planes: LEGACY_STACK. */
  stack: stackIdSchema.optional(),
});
export type InstanceSpecWire = z.infer<typeof instanceSpecSchema>;

/** A Node-RED runtime of an instance: blue or green (bridge/drivers/process: the instance id, or id + ".b"). */
const runtimeId = z.string().min(1).max(80);

/** One request VERIFY sends through a gated `http in` entry of green's flows: any answer below 500 passes. */
export const smokeEntrySchema = z.object({
  method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]),
  path: z.string().startsWith("/").max(500),
  timeoutMs: z.number().int().min(100).max(60_000).optional(),
}).strict();
export type SmokeEntry = z.infer<typeof smokeEntrySchema>;

/** What VERIFY (and the post-switch analysis) checks on green; see docs/deployments.md. */
export const smokeChecksSchema = z.object({
  /** A sample request sent straight to green (header x-redforge-smoke passes its gate). */
  http: z.object({
    path: z.string().startsWith("/").max(500),
    method: z.enum(["GET", "POST", "PUT"]).default("POST"),
    body: z.unknown().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    expectStatus: z.number().int().min(100).max(599).default(200),
    /** Every key here must appear in the JSON answer with the same value (deep subset). */
    expectJson: z.unknown().optional(),
    /** The answer must follow the flow message contract (msg_output, protocol/agents/; the older contract passes, flagged legacy). */
    contract: z.boolean().default(false),
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  }).strict().optional(),
  /**
   * Smoke requests (header x-redforge-smoke) through green's gated `http in` entries; each must answer below 500.
   * Unset: every gated entry of the new flows that answers with an `http response`, unless `http` is given
   * (`true`: also then); `false`: none (entries with side effects); a list: exactly those. The control plane
   * sends the bridge the resolved list, and leaves the key out when it is empty (bridges before it refuse it).
   */
  entries: z.union([z.boolean(), z.array(smokeEntrySchema).max(50)]).optional(),
  /** Green's gate must be connected to the cluster's MQTT bus. */
  mqtt: z.boolean().default(true),
  /** Failed checks tolerated before the result is "failed" (Argo Rollouts' failureLimit). */
  failureLimit: z.number().int().min(0).max(10).default(0),
  /** Stop after the checks for a human: promote or abort. */
  pause: z.boolean().default(false),
}).strict();
export type SmokeChecks = z.infer<typeof smokeChecksSchema>;

/**
 * Per-type arguments; a bridge rejects a command whose args do not parse.
 * Who a command's answer belongs to (a deployment) is not an argument: the
 * control plane records it with the command (ClusterLink's outbox, `replyTo`).
 * A deployment's steps still send `deploymentId`, which bridges built before
 * `replyTo` require on deployment.*; these schemas drop unknown keys, so it
 * costs nothing here. Keep them non-strict for that.
 */
export const commandArgs = {
  "instance.create": z.object({ spec: instanceSpecSchema }),
  "instance.start": z.object({}),
  "instance.stop": z.object({}),
  "instance.destroy": z.object({ deleteData: z.boolean().default(false) }),
  "instance.scale": z.object({ replicas: z.number().int().min(0).max(100) }),
  /** Stop then start in one command, so the two cannot race on the bridge (it runs commands concurrently). */
  "instance.restart": z.object({}),
  "flows.deploy": z.object({ flows: z.array(z.unknown()), rev: z.string().optional(), runtime: runtimeId.optional() }),
  /** drain: the HTTP front holds new requests, the gate holds new work, the answer comes when in-flight reaches 0 (or the deadline). */
  "gate.set": z.object({ mode: z.enum(["active", "drain"]), runtime: runtimeId.optional(), drainTimeoutMs: z.number().int().min(0).max(600_000).default(30_000) }),
  /** Replays the hold queue into `to` (defaults: from the serving runtime, to it). */
  "gate.replay": z.object({ from: runtimeId.optional(), to: runtimeId.optional() }),
  "smoke.run": z.object({
    runtime: runtimeId, kind: z.enum(["verify", "analysis"]).default("verify"),
    expectRev: z.string().optional(), checks: smokeChecksSchema.default({ mqtt: true, failureLimit: 0, pause: false }),
    /** analysis: green's error rate since the switch (expired in-flight + 5xx at the front) must stay at or below this. */
    maxErrorRate: z.number().min(0).max(1).default(0.05),
  }),
  /** The HTTP front and the MQTT work stream move from `from` to `to`; held work is replayed to `to` in order. */
  "route.switch": z.object({ to: runtimeId, from: runtimeId }),
  "health.report": z.object({ instanceIds: z.array(z.uuid()).optional() }),
  /** Starts green (a clone of blue without flows, on `stack` when given: a runtime upgrade) and opens the hold queue. */
  "deployment.prepare": z.object({ stack: stackIdSchema.optional() }),
  /** Back to blue: nothing held is lost, green is stopped. */
  "deployment.rollback": z.object({ blue: runtimeId, green: runtimeId.optional(), switched: z.boolean() }),
  /** The rollback window is over: blue is stopped. */
  "deployment.cleanup": z.object({ runtime: runtimeId }),
} satisfies Record<CommandType, z.ZodType>;

/**
 * What the bridge answers for each command type (the `result` of an ok
 * `command.result` report). The bridge's handlers return exactly these; the
 * control plane parses them at the boundary. Counters a bridge may leave out
 * (an older bridge, a scripted one in tests) default to 0 here, so a reader
 * never guesses; anything else that does not parse is an invalid result.
 */
const count = z.number().int().nonnegative();
const instant = z.iso.datetime();
const gateMode = z.enum(["active", "drain", "retire"]);

export const smokeCheckSchema = z.object({
  name: z.string(),
  outcome: z.enum(["passed", "failed", "inconclusive"]),
  detail: z.string(),
});
export type SmokeCheck = z.infer<typeof smokeCheckSchema>;

/** VERIFY's verdict on green, or (kind "analysis") green's error rate since the switch. */
export const smokeResultSchema = z.object({
  runtime: runtimeId.optional(),
  verdict: z.enum(["passed", "failed", "inconclusive"]),
  checks: z.array(smokeCheckSchema).default([]),
  /** analysis only: (expired in-flight + 5xx at the front) / max(entered, requests, 1). */
  errorRate: z.number().min(0).optional(),
  maxErrorRate: z.number().min(0).max(1).optional(),
  entered: count.optional(),
  expired: count.optional(),
  serverErrors: count.optional(),
  requests: count.optional(),
});
export type SmokeResult = z.infer<typeof smokeResultSchema>;

/** route.switch (and gate.replay, which is a switch onto the same runtime). */
const switchResultSchema = z.object({
  from: runtimeId.optional(),
  to: runtimeId.optional(),
  /** Held MQTT work replayed to `to`, in order, before anything new. */
  replayed: count.default(0),
  /** MQTT work that arrived during the hand-over and followed the replay. */
  bufferedDuringSwitch: count.default(0),
  /** HTTP requests the front held, released to `to`. */
  httpReleased: count.default(0),
  /** HTTP requests held inside `from`'s gate, answered by `from` when it reopened. */
  heldHttpReleasedOnBlue: count.default(0),
  /** When work flowed to `to` again (bridge clock). */
  switchedAt: instant.optional(),
  /**
   * For the deployment's loss count (left out by older bridges: the control plane then counts from the
   * drain's figures, a lower bound). What `from`'s gate republished to the hold queue since its drain
   * began, read once the end-of-hold marker came back, markers excluded: `heldMqtt − replayed` is then
   * exactly what the hand-over lost, `replayed − heldMqtt` what it duplicated.
   */
  heldMqtt: count.optional(),
  /** HTTP requests held during this hold, at the front and inside `from`'s gate (compare httpReleased + heldHttpReleasedOnBlue). */
  httpHeld: count.optional(),
  /** HTTP requests the front refused with 503 + Retry-After because its hold was full, during this hold. */
  httpRefused: count.optional(),
  /** Of httpRefused: requests held past the bound and then refused 503 (front and gate), so also in httpHeld; told, not lost. */
  httpHeldRefused: count.optional(),
  /** HTTP requests the front accepted during this hold whose connection closed before any answer (seen, never answered). */
  httpUnanswered: count.optional(),
});

export const commandResults = {
  /** `stack`: what the bridge resolved the spec's stack to (older bridges leave it out). */
  "instance.create": z.object({ state: z.literal("running"), endpoints: endpointsSchema, stack: supportedStackSchema.optional() }),
  "instance.start": z.object({ state: z.literal("running") }),
  "instance.stop": z.object({ state: z.literal("stopped") }),
  "instance.destroy": z.object({ state: z.literal("destroyed"), deleteData: z.boolean() }),
  "instance.scale": z.object({ replicas: z.number().int().min(0).max(100), state: z.enum(["running", "stopped"]) }),
  "instance.restart": z.object({ state: z.literal("running") }),
  "flows.deploy": z.object({ runtime: runtimeId.optional(), rev: z.string().optional() }),
  /**
   * active: the gate's mode and in-flight count. drain: also how long blue took to drain, when the
   * front began holding, what was still in flight at the deadline (stragglers, finished on blue) and
   * what was held (HTTP at the front and in blue's gate; MQTT republished to the hold queue).
   */
  "gate.set": z.object({
    runtime: runtimeId.optional(),
    mode: gateMode.optional(),
    inFlight: count.default(0),
    drainedInMs: count.optional(),
    holdingSince: instant.optional(),
    stragglers: count.default(0),
    heldHttp: count.default(0),
    heldMqtt: count.default(0),
    /** drain: HTTP requests refused with 503 (front hold full) since the hold began; older bridges leave it out. */
    httpRefused: count.optional(),
  }),
  "gate.replay": switchResultSchema,
  "smoke.run": smokeResultSchema,
  "route.switch": switchResultSchema,
  "health.report": z.object({ instances: count }),
  /** `stack`: the runtime green runs (older bridges leave it out). */
  "deployment.prepare": z.object({ blue: runtimeId, green: runtimeId, greenAdmin: z.string().optional(), stack: supportedStackSchema.optional() }),
  /** A switch back to blue (from green after the switch, from blue onto itself before it), then green stopped. */
  "deployment.rollback": switchResultSchema.extend({
    serving: runtimeId.optional(),
    greenStopped: z.boolean().optional(),
    /** What green still had in flight when it was stopped (bounded wait). */
    greenStragglers: count.default(0),
  }),
  "deployment.cleanup": z.object({ stopped: runtimeId.optional(), stragglers: count.default(0) }),
} satisfies Record<CommandType, z.ZodType>;
export type CommandResult<T extends CommandType> = z.infer<(typeof commandResults)[T]>;
export type CommandArgs<T extends CommandType> = z.infer<(typeof commandArgs)[T]>;

/** Parses an ok answer with its command's schema: the one way a result is read on the control plane. */
export function parseResult<T extends CommandType>(type: T, raw: unknown): z.ZodSafeParseResult<CommandResult<T>> {
  // TypeScript cannot correlate the schema picked by a generic key with that key's output type.
  return commandResults[type].safeParse(raw) as z.ZodSafeParseResult<CommandResult<T>>;
}

/** An error answer (`command.result` with status "error"): a BridgeError's code and message. */
export const commandErrorSchema = z.object({ code: z.string().default("internal"), message: z.string().default("no reason given") });
export type CommandError = z.infer<typeof commandErrorSchema>;

export const commandSchema = z.object({
  id: z.string().min(1).max(64),
  type: z.enum(COMMAND_TYPES),
  instanceId: z.uuid().optional(),
  args: z.record(z.string(), z.unknown()),
  issuedAt: z.iso.datetime(),
});
export type Command = z.infer<typeof commandSchema>;

/** Frames on the ClusterLink WebSocket. */
export const serverFrameSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("command"), command: commandSchema }),
  z.object({ kind: z.literal("welcome"), clusterId: z.uuid(), pending: z.number().int() }),
]);
export type ServerFrame = z.infer<typeof serverFrameSchema>;

export const bridgeFrameSchema = z.discriminatedUnion("kind", [
  /** `stacks`: the runtimes this bridge can start (absent from bridges built before stacks). */
  z.object({ kind: z.literal("hello"), bridgeVersion: z.string(), driver: z.enum(["process", "kubernetes"]), stacks: z.array(supportedStackSchema).max(50).optional() }),
  /** Receipt only; the outcome still comes as a signed webhook. */
  z.object({ kind: z.literal("received"), commandId: z.string() }),
]);
export type BridgeFrame = z.infer<typeof bridgeFrameSchema>;

export const newCommandId = () => `cmd_${crypto.randomUUID()}`;
