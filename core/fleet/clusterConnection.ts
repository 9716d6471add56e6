/**
 * A cluster's bridge connecting or going away, told to /ws/fleet watchers as
 * `cluster:link` (core/objects.ts FleetClusterEvent). The ClusterLink calls it:
 * on the bridge's hello (which carries the bridge's version) and when its last
 * socket closes, when the row's `status` also becomes `disconnected` (the link
 * route sets `connected`), so a list read after the event agrees with it.
 */
import { and, eq, isNull } from "drizzle-orm";
import { openDb } from "../../db/client.ts";
import { clusters } from "../../db/schema.ts";
import type { Env } from "../env.ts";
import type { FleetClusterEvent } from "../objects.ts";

export async function announceClusterLink(env: Env, data: Omit<FleetClusterEvent["data"], "timestamp">): Promise<void> {
  if (data.state === "disconnected" && env.DATABASE_URL) {
    const handle = openDb(env.DATABASE_URL, env.NEON_LOCAL_PROXY);
    try {
      await handle.db.update(clusters).set({ status: "disconnected", updatedAt: new Date() })
        .where(and(eq(clusters.id, data.clusterId), eq(clusters.status, "connected"), isNull(clusters.deletedAt)));
    } catch (err) {
      console.warn(JSON.stringify({ msg: "cluster status not recorded", clusterId: data.clusterId, err: String(err) }));
    } finally {
      await handle.close();
    }
  }
  try {
    const event: FleetClusterEvent = { event: "cluster:link", data: { ...data, timestamp: new Date().toISOString() } };
    await env.FLEET_EVENTS.get(env.FLEET_EVENTS.idFromName("fleet")).publish(event);
  } catch (err) {
    // Watchers are best effort; the ClusterLink's status() is the record.
    console.warn(JSON.stringify({ msg: "cluster:link not published", clusterId: data.clusterId, err: String(err) }));
  }
}
