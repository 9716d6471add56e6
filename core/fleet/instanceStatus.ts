/**
 * The one place an instance's observed `status` changes: from bridge reports,
 * command results, and commands that time out. Scoped to the reporting
 * cluster so a bridge can never touch another cluster's instances; every
 * change is announced to /ws/fleet watchers.
 */
import { and, eq } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { instances } from "../../db/schema.ts";
import type { Env } from "../env.ts";

export type ObservedStatus = "pending" | "starting" | "running" | "stopped" | "failed" | "unknown" | "deploying" | "destroyed";

export interface StatusChange {
  clusterId: string;
  instanceId: string;
  status: ObservedStatus;
  reason?: string | null;
  endpoints?: Record<string, string>;
}

export async function applyInstanceStatus(db: Db, env: Env, change: StatusChange): Promise<boolean> {
  const [row] = await db.update(instances)
    .set({
      status: change.status,
      statusReason: change.reason ?? null,
      ...(change.endpoints ? { endpoints: change.endpoints } : {}),
      updatedAt: new Date(),
    })
    .where(and(eq(instances.id, change.instanceId), eq(instances.clusterId, change.clusterId)))
    .returning({ desiredState: instances.desiredState });
  if (!row) return false;
  await announce(env, {
    instanceId: change.instanceId, clusterId: change.clusterId, status: change.status,
    desiredState: row.desiredState, reason: change.reason ?? null,
  });
  return true;
}

async function announce(env: Env, data: { instanceId: string; clusterId: string; status: string; desiredState: string; reason: string | null }) {
  try {
    const hub = env.FLEET_EVENTS.get(env.FLEET_EVENTS.idFromName("fleet"));
    await hub.publish({ event: "instance:status", data: { ...data, timestamp: new Date().toISOString() } });
  } catch (err) {
    // Watchers are best effort; the database is the record.
    console.warn(JSON.stringify({ msg: "fleet event not published", err: String(err) }));
  }
}
