/**
 * The process driver's record of one instance, <stateDir>/<instanceId>/instance.json:
 * its spec, its ports and which slot serves. A restarted bridge starts the
 * instance from it, so it is written whole or not at all (writeFileAtomic) and
 * a damaged one is an error that names the file, never "unknown instance":
 * treating it as absent would let a create overwrite the serving slot and the ports.
 */
import path from "node:path";
import { readJsonFile, writeFileAtomic } from "../../atomicFile.ts";
import { BridgeError } from "../../errors.ts";
import { LEGACY_STACK } from "../../../protocol/stacks.ts";
import type { InstanceSpec } from "../driver.ts";

/** Each instance has two slots for blue-green: "a" (its first runtime) and "b". */
export type Slot = "a" | "b";

export interface SavedInstance {
  spec: InstanceSpec;
  port: number;
  /** The stable front port; kept across restarts of the instance and of the bridge. */
  frontPort: number;
  /** Slot b's Node-RED port, once a deployment has used it. */
  portB?: number;
  /** The slot that serves (default "a"); a blue-green switch moves it. */
  serving?: Slot;
  /** Each slot's stack id: a runtime upgrade starts the idle slot on another one. */
  slotStacks?: Partial<Record<Slot, string>>;
  /**
   * What the control plane last asked for: create/start/scale 1 → running,
   * stop/scale 0/destroy → stopped. A restarted bridge starts again what should
   * run (ProcessDriver.resume). Absent in files from before it: such an
   * instance is adopted when its Node-RED is alive, and otherwise left as it is.
   */
  desired?: DesiredState;
  /**
   * The slot that does not serve runs too: a deployment's green from prepare,
   * then blue kept warm after the switch, until cleanup or rollback stops it.
   * A bridge restarted after its Node-REDs died with it starts that one again
   * as well, so the deployment's next step finds it.
   */
  idleRuns?: boolean;
}

export type DesiredState = "running" | "stopped";

/** The stack a slot runs: its own, else the spec's, else the one every instance ran before stacks. */
export const stackOfSlot = (saved: SavedInstance, slot: Slot): string => saved.slotStacks?.[slot] ?? saved.spec.stack ?? LEGACY_STACK;

export const INSTANCE_FILE = "instance.json";

/** Runtime ids: slot a is the instance id itself (what it always was), slot b gets a suffix. */
export const runtimeIdOf = (instanceId: string, slot: Slot) => (slot === "a" ? instanceId : `${instanceId}.b`);
export const parseRuntime = (runtimeId: string): { instanceId: string; slot: Slot } =>
  runtimeId.endsWith(".b") ? { instanceId: runtimeId.slice(0, -2), slot: "b" } : { instanceId: runtimeId, slot: "a" };

/** The saved instance in `dir`; undefined when there is none; BridgeError state_corrupt when the file cannot be trusted. */
export async function readSaved(dir: string): Promise<SavedInstance | undefined> {
  const file = path.join(dir, INSTANCE_FILE);
  let raw: unknown;
  try {
    raw = await readJsonFile<unknown>(file);
  } catch (err) {
    throw corrupt(file, err instanceof SyntaxError ? `not JSON (${err.message})` : (err as Error).message);
  }
  if (raw === undefined) return undefined;
  const problem = shapeProblem(raw);
  if (problem) throw corrupt(file, problem);
  return raw as SavedInstance;
}

export function writeSaved(dir: string, saved: SavedInstance): Promise<void> {
  return writeFileAtomic(path.join(dir, INSTANCE_FILE), JSON.stringify(saved));
}

function corrupt(file: string, why: string): BridgeError {
  return new BridgeError("state_corrupt", `the process driver's state file ${file} is damaged (${why}); the instance is kept as it is. Repair the file or move it away and create the instance again`, { file });
}

const isPort = (v: unknown) => Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536;

function shapeProblem(raw: unknown): string | undefined {
  const v = raw as Partial<Record<keyof SavedInstance, unknown>> | null;
  if (!v || typeof v !== "object") return "not an object";
  const spec = v.spec as Partial<InstanceSpec> | undefined;
  if (!spec || typeof spec !== "object" || typeof spec.id !== "string" || typeof spec.name !== "string") return "spec.id or spec.name missing";
  if (!isPort(v.port) || !isPort(v.frontPort)) return "port or frontPort missing";
  if (v.portB !== undefined && !isPort(v.portB)) return "portB is not a port";
  if (v.serving !== undefined && v.serving !== "a" && v.serving !== "b") return `serving is ${JSON.stringify(v.serving)}`;
  if (v.serving === "b" && v.portB === undefined) return "slot b serves but has no port";
  if (v.desired !== undefined && v.desired !== "running" && v.desired !== "stopped") return `desired is ${JSON.stringify(v.desired)}`;
  if (v.idleRuns !== undefined && typeof v.idleRuns !== "boolean") return `idleRuns is ${JSON.stringify(v.idleRuns)}`;
  return undefined;
}
