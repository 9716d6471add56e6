/**
 * A bridge's `cluster.warnings` report (protocol/reports.ts): what it found wrong with its
 * cluster that no count in RedForge can see, e.g. a broker that drops the queue of an offline
 * session (bridge/brokerCheck.ts). The report replaces the cluster's list, so a bridge restarted
 * on a fixed broker clears it. Stored on the cluster row (the API and the console read it there)
 * and told to /ws/fleet watchers as `cluster:warnings`, because the check ends seconds after the
 * bridge's hello and a console already showing the cluster would not otherwise see it.
 */
import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { clusters } from "../../db/schema.ts";
import type { ClusterWarning } from "../../protocol/reports.ts";
import type { Env } from "../env.ts";
import type { FleetClusterWarningsEvent } from "../objects.ts";

/** false when the cluster is gone (deleted after the bridge sent it): nothing to show it on. */
export async function applyClusterWarnings(db: Db, clusterId: string, warnings: ClusterWarning[]): Promise<boolean> {
  const [row] = await db.update(clusters).set({ warnings })
    .where(and(eq(clusters.id, clusterId), isNull(clusters.deletedAt))).returning({ id: clusters.id });
  return !!row;
}

export async function announceClusterWarnings(env: Env, clusterId: string, warnings: ClusterWarning[]): Promise<void> {
  try {
    const event: FleetClusterWarningsEvent = { event: "cluster:warnings", data: { clusterId, warnings, timestamp: new Date().toISOString() } };
    await env.FLEET_EVENTS.get(env.FLEET_EVENTS.idFromName("fleet")).publish(event);
  } catch (err) {
    // Watchers are best effort; the row is the record and the next read shows it.
    console.warn(JSON.stringify({ msg: "cluster:warnings not published", clusterId, err: String(err) }));
  }
}
