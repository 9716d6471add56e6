import { DurableObject } from "cloudflare:workers";
import type { Env } from "../core/env.ts";
import type { FleetEvent, FleetEventsApi } from "../core/objects.ts";

/**
 * One object fans fleet events out to every console and CLI watching
 * /ws/fleet. Sockets use the Hibernation API, so idle watchers cost nothing
 * and survive the object being evicted between events.
 */
export class FleetEvents extends DurableObject<Env> implements FleetEventsApi {
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], ["watcher"]);
    pair[1].send(JSON.stringify({ event: "fleet:hello", data: { watchers: this.ctx.getWebSockets("watcher").length, timestamp: new Date().toISOString() } }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async publish(event: FleetEvent): Promise<number> {
    const text = JSON.stringify(event);
    let sent = 0;
    for (const ws of this.ctx.getWebSockets("watcher")) {
      try {
        ws.send(text);
        sent++;
      } catch {
        // A socket closing under us is not an error for the publisher.
      }
    }
    return sent;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // Watchers only listen; a ping keeps intermediaries from closing idle sockets.
    if (message === "ping") ws.send("pong");
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try { ws.close(code === 1005 ? 1000 : code, "closing"); } catch { /* already closed */ }
  }
}
