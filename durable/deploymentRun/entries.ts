/**
 * Which requests VERIFY sends through green by default: one per gated `http
 * in` entry of the new flows, so a version that answers 5xx is caught even
 * when the caller gave no `verify.http` sample (issue 12: only MQTT
 * reachability was checked, and a v2 that answered garbage was promoted).
 */
import type { SmokeChecks, SmokeEntry } from "../../protocol/commands.ts";

interface FlowNode { id?: unknown; type?: unknown; z?: unknown; d?: unknown; wires?: unknown; links?: unknown; url?: unknown; method?: unknown; disabled?: unknown }

/** At most this many entries are smoked by default: each is a request green must answer within its timeout. */
const MAX_DEFAULT_ENTRIES = 20;
/** How far along the wires an entry's gate and response are looked for (a flow can loop). */
const MAX_WALK = 500;
/** DELETE is never smoked by default: its name says it changes something. Listed explicitly, it is. */
const SMOKED_METHODS = new Set(["get", "post", "put", "patch"]);

const isNode = (n: unknown): n is FlowNode & { id: string; type: string } =>
  typeof n === "object" && n !== null && typeof (n as FlowNode).id === "string" && typeof (n as FlowNode).type === "string";

/** Where a message goes next: its wires, and a `link out`/`link call`'s links (Node-RED's link nodes). */
function next(node: FlowNode): string[] {
  const out: string[] = [];
  if (Array.isArray(node.wires)) for (const port of node.wires) if (Array.isArray(port)) out.push(...port.filter((w): w is string => typeof w === "string"));
  if ((node.type === "link out" || node.type === "link call") && Array.isArray(node.links)) out.push(...node.links.filter((l): l is string => typeof l === "string"));
  return out;
}

/** Node-RED route parameters (`/users/:id`) and wildcards get a placeholder segment. */
function concretePath(url: string): string {
  const path = url.startsWith("/") ? url : `/${url}`;
  return path.split("/").map((seg) => (seg.startsWith(":") || seg === "*" ? "smoke" : seg.replace(/\*/g, "smoke"))).join("/");
}

/** Every `http in` whose messages reach a `redforge-gate` and then an `http response`: those answer, and are gated. */
export function gatedHttpEntries(flows: readonly unknown[]): SmokeEntry[] {
  const nodes = new Map<string, FlowNode & { id: string; type: string }>();
  const disabledTabs = new Set<string>();
  for (const n of flows) {
    if (!isNode(n)) continue;
    nodes.set(n.id, n);
    if (n.type === "tab" && n.disabled === true) disabledTabs.add(n.id);
  }
  const entries: SmokeEntry[] = [];
  const seen = new Set<string>();
  for (const node of nodes.values()) {
    if (node.type !== "http in" || node.d === true || (typeof node.z === "string" && disabledTabs.has(node.z))) continue;
    const method = typeof node.method === "string" ? node.method.toLowerCase() : "get";
    if (!SMOKED_METHODS.has(method) || typeof node.url !== "string" || node.url === "") continue;
    let gated = false;
    let answers = false;
    const queue = next(node);
    const visited = new Set<string>();
    while (queue.length && visited.size < MAX_WALK && !(gated && answers)) {
      const id = queue.shift()!;
      if (visited.has(id)) continue;
      visited.add(id);
      const n = nodes.get(id);
      if (!n || n.d === true) continue;
      if (n.type === "redforge-gate") gated = true;
      if (n.type === "http response") answers = true;
      queue.push(...next(n));
    }
    // An entry with no http response never answers (Node-RED holds the request open): smoking it would only time out.
    if (!gated || !answers) continue;
    const entry: SmokeEntry = { method: method.toUpperCase() as SmokeEntry["method"], path: concretePath(node.url) };
    const key = `${entry.method} ${entry.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    entries.push(entry);
    if (entries.length === MAX_DEFAULT_ENTRIES) break;
  }
  return entries;
}

/**
 * The checks as the bridge receives them: `entries` resolved to a list (left out when empty, since a
 * bridge from before entries refuses the key). Default: every gated entry, unless the caller gave
 * its own `http` sample (then only with `entries: true`).
 */
export function verifyChecks(verify: SmokeChecks, flows: readonly unknown[]): SmokeChecks {
  const { entries, ...rest } = verify;
  const list = Array.isArray(entries) ? entries
    : entries === true || (entries === undefined && !rest.http) ? gatedHttpEntries(flows)
      : [];
  return list.length ? { ...rest, entries: list } : rest;
}
