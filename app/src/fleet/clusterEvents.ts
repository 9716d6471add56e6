/**
 * `cluster:link` frames of /ws/fleet (a bridge said hello, or its last link
 * closed; durable/clusterLink.ts) and `cluster:warnings` (what the bridge found
 * wrong with its cluster; core/fleet/clusterWarnings.ts) onto the clusters
 * list, so connection state, bridge version and warnings move without a re-read.
 */
import type { components } from "../../../protocol/api/client.ts";

type Cluster = components["schemas"]["ClusterState"];

export interface ClusterLinkEvent {
  event: "cluster:link";
  data: { clusterId: string; state: "connected" | "disconnected"; bridgeVersion: string | null; driver: string | null; timestamp: string };
}

export function isClusterLink(message: unknown): message is ClusterLinkEvent {
  const m = message as ClusterLinkEvent | null;
  return !!m && m.event === "cluster:link" && typeof m.data?.clusterId === "string" && (m.data.state === "connected" || m.data.state === "disconnected");
}

/** The list with the event applied; `known` is false when the cluster is not in it (registered elsewhere: re-read). */
export function applyClusterLink(items: readonly Cluster[], { data }: ClusterLinkEvent): { items: Cluster[]; known: boolean } {
  if (!items.some((c) => c.id === data.clusterId)) return { items: [...items], known: false };
  return {
    known: true,
    items: items.map((c) => c.id !== data.clusterId ? c : {
      ...c,
      connected: data.state === "connected",
      status: data.state,
      bridgeVersion: data.bridgeVersion ?? c.bridgeVersion,
      connectedAt: data.state === "connected" ? data.timestamp : null,
      lastSeenAt: data.timestamp,
    }),
  };
}

type ClusterWarning = components["schemas"]["ClusterWarning"];

export interface ClusterWarningsEvent {
  event: "cluster:warnings";
  data: { clusterId: string; warnings: ClusterWarning[]; timestamp: string };
}

export function isClusterWarnings(message: unknown): message is ClusterWarningsEvent {
  const m = message as ClusterWarningsEvent | null;
  return !!m && m.event === "cluster:warnings" && typeof m.data?.clusterId === "string" && Array.isArray(m.data.warnings);
}

/** The event carries the whole list (an empty one clears it), so it replaces what the row had. */
export function applyClusterWarnings(items: readonly Cluster[], { data }: ClusterWarningsEvent): { items: Cluster[]; known: boolean } {
  if (!items.some((c) => c.id === data.clusterId)) return { items: [...items], known: false };
  return { known: true, items: items.map((c) => c.id !== data.clusterId ? c : { ...c, warnings: data.warnings }) };
}

/** A warning's code in the words a platform team acts on; an unknown code is shown as it is. */
export const WARNING_TITLES: Record<string, string> = {
  broker_queue_limit: "The MQTT broker drops work queued for a restarting data plane",
};

/** The shell line that starts this cluster's bridge (README "Bridge"); the secret goes in a file, never on the command line. */
export function bridgeCommand(clusterId: string, apiOrigin: string, driver: string, secretFile: string): string {
  return `npm run bridge -- --cluster ${clusterId} --api ${apiOrigin} --secret-file ${secretFile}${driver === "process" ? "" : ` --driver ${driver}`}`;
}
