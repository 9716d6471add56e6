/**
 * The command channel (control plane → bridge), shared by both sides. A
 * command travels over the ClusterLink WebSocket; the bridge answers with a
 * signed `command.result` webhook (reports.ts). Ids are unique: the bridge
 * never executes the same id twice, the control plane redelivers until answered.
 */
import { z } from "zod";

export const COMMAND_TYPES = [
  "instance.create", "instance.start", "instance.stop", "instance.destroy", "instance.scale",
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
});
export type InstanceSpecWire = z.infer<typeof instanceSpecSchema>;

/** A Node-RED runtime of an instance: blue or green (bridge/drivers/process: the instance id, or id + ".b"). */
const runtimeId = z.string().min(1).max(80);
const deploymentId = z.uuid();

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
    /** The answer must follow the flow message contract (flows/message-contract.schema.json). */
    contract: z.boolean().default(false),
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  }).strict().optional(),
  /** Green's gate must be connected to the cluster's MQTT bus. */
  mqtt: z.boolean().default(true),
  /** Failed checks tolerated before the result is "failed" (Argo Rollouts' failureLimit). */
  failureLimit: z.number().int().min(0).max(10).default(0),
  /** Stop after the checks for a human: promote or abort. */
  pause: z.boolean().default(false),
}).strict();
export type SmokeChecks = z.infer<typeof smokeChecksSchema>;

/** Per-type arguments; a bridge rejects a command whose args do not parse. */
export const commandArgs = {
  "instance.create": z.object({ spec: instanceSpecSchema }),
  "instance.start": z.object({}),
  "instance.stop": z.object({}),
  "instance.destroy": z.object({ deleteData: z.boolean().default(false) }),
  "instance.scale": z.object({ replicas: z.number().int().min(0).max(100) }),
  "flows.deploy": z.object({ flows: z.array(z.unknown()), rev: z.string().optional(), runtime: runtimeId.optional(), deploymentId: deploymentId.optional() }),
  /** drain: the HTTP front holds new requests, the gate holds new work, the answer comes when in-flight reaches 0 (or the deadline). */
  "gate.set": z.object({ mode: z.enum(["active", "drain"]), runtime: runtimeId.optional(), deploymentId: deploymentId.optional(), drainTimeoutMs: z.number().int().min(0).max(600_000).default(30_000) }),
  /** Replays the hold queue into `to` (defaults: from the serving runtime, to it). */
  "gate.replay": z.object({ from: runtimeId.optional(), to: runtimeId.optional(), deploymentId: deploymentId.optional() }),
  "smoke.run": z.object({
    runtime: runtimeId, deploymentId: deploymentId.optional(), kind: z.enum(["verify", "analysis"]).default("verify"),
    expectRev: z.string().optional(), checks: smokeChecksSchema.default({ mqtt: true, failureLimit: 0, pause: false }),
    /** analysis: green's error rate since the switch (expired in-flight + 5xx at the front) must stay at or below this. */
    maxErrorRate: z.number().min(0).max(1).default(0.05),
  }),
  /** The HTTP front and the MQTT work stream move from `from` to `to`; held work is replayed to `to` in order. */
  "route.switch": z.object({ to: runtimeId, from: runtimeId, deploymentId: deploymentId.optional() }),
  "health.report": z.object({ instanceIds: z.array(z.uuid()).optional() }),
  /** Starts green (a clone of blue without flows) and opens the hold queue. */
  "deployment.prepare": z.object({ deploymentId }),
  /** Back to blue: nothing held is lost, green is stopped. */
  "deployment.rollback": z.object({ deploymentId, blue: runtimeId, green: runtimeId.optional(), switched: z.boolean() }),
  /** The rollback window is over: blue is stopped. */
  "deployment.cleanup": z.object({ deploymentId, runtime: runtimeId }),
} satisfies Record<CommandType, z.ZodType>;

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
  z.object({ kind: z.literal("hello"), bridgeVersion: z.string(), driver: z.enum(["process", "kubernetes"]) }),
  /** Receipt only; the outcome still comes as a signed webhook. */
  z.object({ kind: z.literal("received"), commandId: z.string() }),
]);
export type BridgeFrame = z.infer<typeof bridgeFrameSchema>;

export const newCommandId = () => `cmd_${crypto.randomUUID()}`;
