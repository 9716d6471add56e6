/**
 * The Node-RED stacks this bridge can run: each supported major is installed
 * side by side under an npm alias (`node-red-4`, `node-red-5`; docs/stacks.md).
 * A stack is usable only when the bridge's own Node satisfies that Node-RED's
 * `engines` (Node-RED 5 exits at once on Node < 22.9), because the process
 * driver runs Node-RED with `process.execPath`.
 */
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import type { SupportedStack } from "../../../protocol/stacks.ts";
import { BridgeError } from "../../errors.ts";

/** Newest first: the first usable one is the default for new instances. */
export const STACK_PACKAGES = ["node-red-5", "node-red-4"] as const;

export interface Stack {
  /** "5.0": what an instance names (protocol/stacks.ts). */
  id: string;
  /** Exact version from the package (never from a running Node-RED, which may add "-git"). */
  version: string;
  /** red.js of this stack. */
  cli: string;
  /** The package's `engines.node`, e.g. ">=22.9". */
  nodeEngines?: string;
  /** False when this bridge's Node is too old for it. */
  usable: boolean;
}

const require = createRequire(import.meta.url);

export function installedStacks(nodeVersion: string = process.versions.node): Stack[] {
  const stacks: Stack[] = [];
  for (const name of STACK_PACKAGES) {
    let pkgFile: string;
    try {
      pkgFile = require.resolve(`${name}/package.json`);
    } catch {
      continue; // not installed
    }
    const pkg = JSON.parse(fs.readFileSync(pkgFile, "utf8")) as { version: string; engines?: { node?: string } };
    const [major, minor] = pkg.version.split(".");
    stacks.push({
      id: `${major}.${minor}`,
      version: pkg.version,
      cli: path.join(path.dirname(pkgFile), "red.js"),
      ...(pkg.engines?.node ? { nodeEngines: pkg.engines.node } : {}),
      usable: satisfiesMinimum(nodeVersion, pkg.engines?.node),
    });
  }
  return stacks;
}

/**
 * The stack an instance asks for ("5.0", or a major such as "5"), or the
 * default (the newest usable) when it names none. A stack this bridge cannot
 * run is BridgeError `unsupported`: the control plane shows the reason.
 */
export function resolveStack(stacks: Stack[], requested?: string): Stack {
  const usable = stacks.filter((s) => s.usable);
  if (!requested) {
    if (!usable[0]) throw new BridgeError("unsupported", "no usable Node-RED stack is installed");
    return usable[0];
  }
  const found = stacks.find((s) => s.id === requested || s.id.startsWith(`${requested}.`));
  if (!found) throw new BridgeError("unsupported", `stack ${requested} is not installed on this bridge (installed: ${stacks.map((s) => s.id).join(", ") || "none"})`);
  if (!found.usable) throw new BridgeError("unsupported", `stack ${found.id} needs Node ${found.nodeEngines}, this bridge runs ${process.version}`);
  return found;
}

/** What the bridge's hello reports: the stacks it can start, newest first. */
export function reportedStacks(stacks: Stack[]): SupportedStack[] {
  return stacks.filter((s) => s.usable).map((s) => ({ id: s.id, nodeRed: s.version }));
}

/** Only the ">=X[.Y[.Z]]" form Node-RED uses; anything else is not checked. */
export function satisfiesMinimum(version: string, range?: string): boolean {
  const m = range ? /^\s*>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$/.exec(range) : null;
  if (!m) return true;
  const have = version.replace(/^v/, "").split(".").map((n) => Number.parseInt(n, 10) || 0);
  const want = [m[1], m[2], m[3]].map((n) => Number(n ?? 0));
  for (let i = 0; i < 3; i++) {
    if (have[i]! !== want[i]!) return have[i]! > want[i]!;
  }
  return true;
}
