import { DurableObject } from "cloudflare:workers";
import type { Env } from "../core/env.ts";
import type { FleetEvent, FleetEventsApi } from "../core/objects.ts";
import { openKv } from "../core/platform/kv.ts";
import { watcherOf } from "../core/platform/watcherAccess.ts";
import { AuditStream } from "./auditStream.ts";
import { fanOut, WatcherCache } from "./fleetWatchers.ts";

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
 * Each event is serialised once and sent in one synchronous pass with the
 * watchers decoded once per socket (durable/fleetWatchers.ts, bench/ws).
 */
export class FleetEvents extends DurableObject<Env> implements FleetEventsApi {
  // Publishes go out one after another, so the access check cannot reorder events.
  private sending: Promise<unknown> = Promise.resolve();
  private readonly audit = new AuditStream(this.ctx, this.env);
  private readonly watchers = new WatcherCache();

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    if (new URL(request.url).pathname.endsWith("/audit")) return this.audit.accept(request);
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], ["watcher"]);
    this.watchers.attach(pair[1], watcherOf(request));
    pair[1].send(JSON.stringify({ event: "fleet:hello", data: { watchers: this.ctx.getWebSockets("watcher").length, timestamp: new Date().toISOString() } }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async publish(event: FleetEvent): Promise<number> {
    const next = this.sending.then(() => this.deliver(JSON.stringify(event), EVENT_GRANTS[event.event]));
    this.sending = next.catch(() => {});
    return next;
  }

  private deliver(text: string, grant: string | undefined): Promise<number> {
    return fanOut(openKv(this.env), this.watchers, this.ctx.getWebSockets("watcher"), text, grant);
  }

  override async alarm(): Promise<void> {
    await this.audit.poll();
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // Watchers only listen; a ping keeps intermediaries from closing idle sockets.
    if (message === "ping") ws.send("pong");
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try { ws.close(code === 1005 ? 1000 : code, "closing"); } catch { /* already closed */ }
  }
}
