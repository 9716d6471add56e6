import { DurableObject } from "cloudflare:workers";
import type { Env } from "../core/env.ts";
import type { FleetEvent, FleetEventsApi } from "../core/objects.ts";
import { AuditStream } from "./auditStream.ts";
import { ShardedWatchers } from "./watcherShards.ts";
import { answerPing, closeBack } from "./watchers.ts";

/** Events only some watchers may see, and the permission each needs. */
const EVENT_GRANTS: Partial<Record<FleetEvent["event"], string>> = { "fleet:alert": "alerts:read" };

/**
 * One object fans fleet events out to every console and CLI watching
 * /ws/fleet. Sockets use the Hibernation API, so idle watchers cost nothing
 * and survive the object being evicted between events. Each socket carries
 * who opened it; a watcher whose access changed is closed before the next
 * event (core/platform/watcherAccess.ts), and an event that needs a
 * permission (`fleet:alert`: alerts:read) goes only to watchers that held it.
 * The object named "audit" serves /ws/audit the same way (durable/auditStream.ts):
 * the same fan-out and access checks, fed from the audit log.
 * The fan-out is durable/watchers.ts, shared with the deployment and rollout
 * streams: each event serialised once, sent in one synchronous pass.
 */
export class FleetEvents extends DurableObject<Env> implements FleetEventsApi {
  private readonly audit = new AuditStream(this.ctx, this.env);
  private readonly watchers = new ShardedWatchers(this.ctx, this.env);

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    if (new URL(request.url).pathname.endsWith("/audit")) return this.audit.accept(request);
    // `watchers`: those on this object (past REDFORGE_WATCHERS_PER_OBJECT the rest are on its shards).
    return this.watchers.accept(request, () => ({ event: "fleet:hello", data: { watchers: this.watchers.localCount(), timestamp: new Date().toISOString() } }));
  }

  async publish(event: FleetEvent): Promise<number> {
    return this.watchers.publish(JSON.stringify(event), EVENT_GRANTS[event.event]);
  }

  override async alarm(): Promise<void> {
    await this.audit.poll();
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    answerPing(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    closeBack(ws, code);
  }
}
