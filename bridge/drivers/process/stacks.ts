/**
 * The Node-RED stacks this bridge can run: each supported major is installed
 * side by side under an npm alias (`node-red-4`, `node-red-5`; docs/stacks.md).
 * A stack is usable only when the bridge's own Node satisfies that Node-RED's
 * `engines` (Node-RED 5 exits at once on Node < 22.9), because the process
 * driver runs Node-RED with `process.execPath`.
 *
 * Prototype for issue 17 item 2: nothing uses it yet.
 */
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

/** Newest first: the first usable one is the default for new instances. */
export const STACK_PACKAGES = ["node-red-5", "node-red-4"] as const;

export interface Stack {
  /** "node-red-5.0": what an instance names. */
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
      id: `node-red-${major}.${minor}`,
      version: pkg.version,
      cli: path.join(path.dirname(pkgFile), "red.js"),
      ...(pkg.engines?.node ? { nodeEngines: pkg.engines.node } : {}),
      usable: satisfiesMinimum(nodeVersion, pkg.engines?.node),
    });
  }
  return stacks;
}

/**
 * The stack an instance asks for ("node-red-5.0", or a major such as "node-red-4"),
 * or the default (the newest usable) when it names none.
 */
export function resolveStack(stacks: Stack[], requested?: string): Stack {
  const usable = stacks.filter((s) => s.usable);
  if (!requested) {
    if (!usable[0]) throw new Error("no usable Node-RED stack is installed");
    return usable[0];
  }
  const found = stacks.find((s) => s.id === requested || s.id.startsWith(`${requested}.`));
  if (!found) throw new Error(`stack ${requested} is not installed (installed: ${stacks.map((s) => s.id).join(", ") || "none"})`);
  if (!found.usable) throw new Error(`stack ${found.id} needs Node ${found.nodeEngines}, this bridge runs ${process.version}`);
  return found;
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
