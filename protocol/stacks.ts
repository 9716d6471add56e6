/**
 * Stacks: the Node-RED runtime an instance runs (FlowFuse's word). A stack id
 * is a Node-RED version line, "5.0" or "4.1"; the bridge resolves it to the
 * exact release it has installed (process driver: the npm alias's version) or
 * to the image it was configured with (kubernetes driver), and says which
 * stacks it supports in its hello. Shared by the control plane and the bridge.
 */
import { z } from "zod";

/** A Node-RED version line: major.minor. */
export const stackIdSchema = z.string().regex(/^\d{1,3}\.\d{1,3}$/, "a Node-RED version line such as 5.0 or 4.1");
export type StackId = z.infer<typeof stackIdSchema>;

/** What new instances run when they name no stack. */
export const DEFAULT_STACK: StackId = "5.0";
/**
 * What an instance runs when nothing says otherwise: every instance created
 * before stacks existed ran Node-RED 4.1.15 (the DB column's default, a spec
 * from an older control plane, an instance.json from an older bridge).
 */
export const LEGACY_STACK: StackId = "4.1";

/** One stack a bridge can run, as its hello reports it. */
export const supportedStackSchema = z.object({
  id: stackIdSchema,
  /** The exact Node-RED release this stack starts, e.g. "5.0.7". */
  nodeRed: z.string().min(1).max(40),
  /** kubernetes driver: the container image of this stack. */
  image: z.string().min(1).max(300).optional(),
});
export type SupportedStack = z.infer<typeof supportedStackSchema>;

/** The stack line of an exact release: "5.0.7" → "5.0". */
export function stackOfVersion(version: string): StackId | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  return m ? `${Number(m[1])}.${Number(m[2])}` : undefined;
}
