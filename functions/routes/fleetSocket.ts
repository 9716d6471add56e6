import { Hono } from "hono";
import type { AppEnv } from "../app-env.ts";
import { ApiError } from "../errors.ts";
import { authenticate } from "../middleware/authenticate.ts";
import { requirePermission } from "../middleware/requirePermission.ts";

/**
 * GET /ws/fleet streams `instance:status` events. Browsers cannot set headers
 * on a WebSocket, so the token may also come as ?token=; either way it passes
 * the same authenticate + requirePermission as any route (viewers may watch).
 */
export const fleetSocketRoutes = new Hono<AppEnv>()
  .use("/fleet", async (c, next) => {
    const token = c.req.query("token");
    if (token && !c.req.header("Authorization")) {
      const headers = new Headers(c.req.raw.headers);
      headers.set("Authorization", `Bearer ${token}`);
      c.req.raw = new Request(c.req.raw, { headers });
    }
    await next();
  })
  .get("/fleet", authenticate, requirePermission("instances", "read"), async (c) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "upgrade_required", "connect with a WebSocket upgrade");
    const hub = c.env.FLEET_EVENTS.get(c.env.FLEET_EVENTS.idFromName("fleet"));
    return hub.fetch(c.req.raw);
  });
