import { Hono, type Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError } from "../../core/errors.ts";
import { authenticate } from "../middleware/authenticate.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { describe } from "../../core/openapi/describe.ts";
import { asWatcherRequest } from "../../core/platform/watcherAccess.ts";
import { allows } from "../rbac/permissions.ts";
import { recordRead } from "../middleware/auditRead.ts";

const doc = describe("Streams");
const tokenQuery = [{
  name: "token", in: "query" as const, required: false, schema: { type: "string" as const },
  description: "The session token or API key, when the client cannot send an Authorization header",
}];

const auditQuery = z.strictObject({
  token: z.string().optional(),
  /** Entries after this id: a late subscriber catches up (at most 1,000 back; older is an `audit:gap`). */
  after: z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

/**
 * GET /ws/fleet streams `instance:status` events (and `fleet:alert` to watchers with alerts:read); GET /ws/deployments/:id a
 * deployment's `deployment:phase` / `deployment:progress` events (current
 * state first). Browsers cannot set headers on a WebSocket, so the token may
 * also come as ?token=; either way it passes the same authenticate +
 * requirePermission as any route (viewers may watch). The socket remembers
 * who opened it: when that user is disabled, changes role or password, or the
 * key is revoked, the socket is closed (4401) before its next event.
 */
export const fleetSocketRoutes = new Hono<AppEnv>()
  .use("*", async (c, next) => {
    const token = c.req.query("token");
    if (token && !c.req.header("Authorization")) {
      // Tokens and keys are visible ASCII; anything else (NUL, CR/LF) cannot become a header value.
      if (!/^[\x21-\x7e]+$/.test(token)) {
        throw new ApiError(401, "invalid_token", "bearer token is not valid", undefined, { "WWW-Authenticate": 'Bearer realm="redforge"' });
      }
      const headers = new Headers(c.req.raw.headers);
      headers.set("Authorization", `Bearer ${token}`);
      c.req.raw = new Request(c.req.raw, { headers });
    }
    await next();
  })
  .get("/fleet", doc({
    summary: "Stream of `instance:status` events (WebSocket)",
    responses: { 101: null },
    errors: [426],
    parameters: tokenQuery,
  }), authenticate, requirePermission("instances", "read"), async (c) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "upgrade_required", "connect with a WebSocket upgrade");
    const hub = c.env.FLEET_EVENTS.get(c.env.FLEET_EVENTS.idFromName("fleet"));
    const principal = c.var.principal!;
    // fleet:alert carries alert text: only for watchers that may read alerts.
    const grants = allows(principal.permissions, "alerts", "read") ? ["alerts:read"] : [];
    return hub.fetch(asWatcherRequest(c.req.raw, principal, grants));
  })
  .get("/audit", doc({
    summary: "Stream of `audit:entry` events (WebSocket): audit rows as they commit, optionally from a cursor (`after`)",
    description: "Needs audit:read. First `audit:hello` ({cursor, head}); then one `audit:entry` per row (the GET /api/audit item shape) with id > `after` (default: the newest row at connect). A cursor more than 1,000 rows back resumes 1,000 rows back after an `audit:gap` event. Opening the stream is itself audited (AUDIT_STREAM_OPENED).",
    responses: { 101: null },
    errors: [400, 426],
    parameters: [...tokenQuery, { name: "after", in: "query" as const, required: false, schema: { type: "integer" as const, minimum: 0 }, description: "Send entries after this audit row id" }],
  }), authenticate, requirePermission("audit", "read"), async (c) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "upgrade_required", "connect with a WebSocket upgrade");
    const q = auditQuery.safeParse(c.req.query());
    if (!q.success) throw new ApiError(400, "validation_failed", "after must be a non-negative integer (an audit row id)");
    await recordRead(c, { action: "AUDIT_STREAM_OPENED", resourceType: "audit", details: { after: q.data.after ?? null } });
    const url = new URL(c.req.url);
    url.search = q.data.after === undefined ? "" : `?after=${q.data.after}`;
    const hub = c.env.FLEET_EVENTS.get(c.env.FLEET_EVENTS.idFromName("audit"));
    return hub.fetch(asWatcherRequest(new Request(url, c.req.raw), c.var.principal!));
  })
  .get("/deployments/:id", doc({
    summary: "Stream of one deployment's `deployment:phase` / `deployment:progress` events (WebSocket), current state first",
    responses: { 101: null },
    errors: [400, 404, 426],
    parameters: tokenQuery,
  }), authenticate, requirePermission("deployments", "read"), (c) => watchObject(c, "deployment", c.env.DEPLOYMENT_RUN))
  .get("/rollouts/:id", doc({
    summary: "Stream of one rollout's `rollout:wave` / `rollout:instance` events (WebSocket), `rollout:state` first and on every status change",
    responses: { 101: null },
    errors: [400, 404, 426],
    parameters: tokenQuery,
  }), authenticate, requirePermission("deployments", "read"), (c) => watchObject(c, "rollout", c.env.ROLLOUTS));

/** One object's watcher stream (a deployment's or a rollout's): the upgrade, the id, the object's 404 as the API's. */
async function watchObject(
  c: Context<AppEnv>, kind: "deployment" | "rollout", ns: { idFromName(name: string): DurableObjectId; get(id: DurableObjectId): { fetch(r: Request): Promise<Response> } },
): Promise<Response> {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "upgrade_required", "connect with a WebSocket upgrade");
  const id = c.req.param("id") ?? "";
  if (!z.uuid().safeParse(id).success) throw new ApiError(400, "validation_failed", `${kind} id must be a UUID`);
  const res = await ns.get(ns.idFromName(id)).fetch(asWatcherRequest(c.req.raw, c.var.principal!));
  if (res.status === 404) throw new ApiError(404, "not_found", `${kind} ${id} not found`);
  return res;
}
