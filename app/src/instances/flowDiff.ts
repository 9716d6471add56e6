/**
 * Two Node-RED flow exports compared node by node (by `id`): which nodes a
 * change adds, removes or alters, and for an altered node which properties.
 * A node only moved on the canvas (x, y) is "moved", not "changed": what runs
 * is the same. Tabs, subflows and config nodes are nodes like any other.
 */
export interface FlowNodeRef { id: string; type: string; label: string; tab: string | null }
export interface ChangedNode extends FlowNodeRef { fields: string[] }
export interface FlowDiff {
  added: FlowNodeRef[];
  removed: FlowNodeRef[];
  changed: ChangedNode[];
  moved: FlowNodeRef[];
  unchanged: number;
  /** Entries that are not nodes (no string id), which the diff cannot place. */
  ignored: number;
}

type Node = Record<string, unknown> & { id: string };
const POSITION = new Set(["x", "y"]);

function nodesOf(flows: readonly unknown[]): { byId: Map<string, Node>; ignored: number } {
  const byId = new Map<string, Node>();
  let ignored = 0;
  for (const n of flows) {
    if (n && typeof n === "object" && !Array.isArray(n) && typeof (n as Node).id === "string") byId.set((n as Node).id, n as Node);
    else ignored++;
  }
  return { byId, ignored };
}

function refOf(n: Node): FlowNodeRef {
  const label = [n.name, n.label, n.info].find((v) => typeof v === "string" && v.trim() !== "") as string | undefined;
  return { id: n.id, type: typeof n.type === "string" ? n.type : "?", label: label ?? "", tab: typeof n.z === "string" ? n.z : null };
}

/** JSON with object keys sorted, so {a,b} and {b,a} compare equal. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

function changedFields(a: Node, b: Node): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => canonical(a[k]) !== canonical(b[k])).sort();
}

const byTypeThenId = (x: FlowNodeRef, y: FlowNodeRef) => x.type.localeCompare(y.type) || x.id.localeCompare(y.id);

export function diffFlows(before: readonly unknown[], after: readonly unknown[]): FlowDiff {
  const a = nodesOf(before);
  const b = nodesOf(after);
  const out: FlowDiff = { added: [], removed: [], changed: [], moved: [], unchanged: 0, ignored: a.ignored + b.ignored };
  for (const [id, old] of a.byId) {
    const now = b.byId.get(id);
    if (!now) { out.removed.push(refOf(old)); continue; }
    const fields = changedFields(old, now);
    if (fields.length === 0) out.unchanged++;
    else if (fields.every((f) => POSITION.has(f))) out.moved.push(refOf(now));
    else out.changed.push({ ...refOf(now), fields: fields.filter((f) => !POSITION.has(f)) });
  }
  for (const [id, n] of b.byId) if (!a.byId.has(id)) out.added.push(refOf(n));
  out.added.sort(byTypeThenId);
  out.removed.sort(byTypeThenId);
  out.changed.sort(byTypeThenId);
  out.moved.sort(byTypeThenId);
  return out;
}

/** The tab (flow) names of an export by id, to say where a node sits. */
export function tabNames(flows: readonly unknown[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const n of flows) {
    const node = n as Node | null;
    if (node && typeof node.id === "string" && (node.type === "tab" || node.type === "subflow")) {
      names.set(node.id, typeof node.label === "string" ? node.label : typeof node.name === "string" ? node.name : node.id);
    }
  }
  return names;
}
