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

export interface Applied { items: InstanceSummary[]; unknownInstance: boolean }

export function applyStatus(items: readonly InstanceSummary[], { data }: InstanceStatusEvent): Applied {
  const i = items.findIndex((x) => x.id === data.instanceId);
  if (i < 0) return { items: [...items], unknownInstance: data.desiredState !== "destroyed" };
  if (data.desiredState === "destroyed") return { items: items.filter((_, j) => j !== i), unknownInstance: false };
  const current = items[i]!;
  // Events can overtake each other with a re-read: an older event never undoes a newer row.
  if (Date.parse(data.timestamp) < Date.parse(current.updatedAt)) return { items: [...items], unknownInstance: false };
  const next: InstanceSummary = {
    ...current,
    status: data.status,
    statusReason: data.reason === undefined ? current.statusReason : data.reason,
    desiredState: data.desiredState ?? current.desiredState,
    updatedAt: data.timestamp,
  };
  return { items: items.map((x, j) => (j === i ? next : x)), unknownInstance: false };
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
