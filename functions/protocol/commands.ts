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

/** Per-type arguments; a bridge rejects a command whose args do not parse. */
export const commandArgs = {
  "instance.create": z.object({ spec: instanceSpecSchema }),
  "instance.start": z.object({}),
  "instance.stop": z.object({}),
  "instance.destroy": z.object({ deleteData: z.boolean().default(false) }),
  "instance.scale": z.object({ replicas: z.number().int().min(0).max(100) }),
  "flows.deploy": z.object({ flows: z.array(z.unknown()), rev: z.string().optional() }),
  "gate.set": z.object({ mode: z.enum(["active", "drain"]) }),
  "gate.replay": z.object({ target: z.string().optional() }),
  "smoke.run": z.object({}).loose(),
  "route.switch": z.object({ to: z.string() }),
  "health.report": z.object({ instanceIds: z.array(z.uuid()).optional() }),
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
