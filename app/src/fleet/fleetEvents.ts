/**
 * /ws/fleet frames onto the fleet table. The hub sends `instance:status` for
 * every change a bridge reports; an instance the table has not seen (created
 * in another tab, or on a page not loaded) asks for a re-read rather than being
 * guessed into the list.
 */
import type { components } from "../../../protocol/api/client.ts";

export type InstanceSummary = components["schemas"]["InstanceSummary"];

export interface InstanceStatusEvent {
  event: "instance:status";
  data: { instanceId: string; clusterId: string; status: string; desiredState?: string; reason?: string | null; timestamp: string };
}

export function isInstanceStatus(message: unknown): message is InstanceStatusEvent {
  const m = message as InstanceStatusEvent | null;
  return !!m && m.event === "instance:status" && typeof m.data?.instanceId === "string" && typeof m.data.status === "string";
}

export interface Applied {
  items: InstanceSummary[];
  /** The event names an instance not in the list: re-read the page. */
  unknownInstance: boolean;
  /** The instance came up: its endpoints and Node-RED release are new, and events do not carry them. */
  refreshInstance: string | null;
}

export function applyStatus(items: readonly InstanceSummary[], { data }: InstanceStatusEvent): Applied {
  const i = items.findIndex((x) => x.id === data.instanceId);
  if (i < 0) return { items: [...items], unknownInstance: data.desiredState !== "destroyed", refreshInstance: null };
  if (data.desiredState === "destroyed") return { items: items.filter((_, j) => j !== i), unknownInstance: false, refreshInstance: null };
  const current = items[i]!;
  const next: InstanceSummary = {
    ...current,
    status: data.status,
    statusReason: data.reason === undefined ? current.statusReason : data.reason,
    desiredState: data.desiredState ?? current.desiredState,
    updatedAt: data.timestamp,
  };
  // A bridge may report "running" before the create's result (which brings the endpoints) lands, so
  // a running row without endpoints is re-read on each event until it has them.
  const needsDetail = data.status === "running" && (current.status !== "running" || Object.keys(current.endpoints).length === 0);
  return { items: items.map((x, j) => (j === i ? next : x)), unknownInstance: false, refreshInstance: needsDetail ? current.id : null };
}

/** A re-read instance onto its row, keeping the row's shape (the detail also carries flows, env, secret names). */
export function mergeInstance(items: readonly InstanceSummary[], fresh: InstanceSummary): InstanceSummary[] {
  return items.map((x) => {
    if (x.id !== fresh.id) return x;
    const merged = { ...x };
    for (const key of Object.keys(x) as (keyof InstanceSummary)[]) (merged as Record<string, unknown>)[key] = fresh[key];
    return merged;
  });
}

/** Status → the colour class of its badge: the few states an operator must tell apart at a glance. */
export function statusTone(status: string): "ok" | "busy" | "bad" | "idle" | "unknown" {
  switch (status) {
    case "running": return "ok";
    case "pending": case "starting": case "deploying": return "busy";
    case "failed": return "bad";
    case "stopped": return "idle";
    default: return "unknown";
  }
}
