import { createMiddleware } from "hono/factory";
import { uniqueSymbol } from "hono-openapi";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError } from "../../core/errors.ts";
import { allows, type Action, type Resource } from "../rbac/permissions.ts";

/** The only authorisation check a route declares: `requirePermission("instances", "create")`. */
export function requirePermission(resource: Resource, action: Action) {
  const middleware = createMiddleware<AppEnv>(async (c, next) => {
    const p = c.var.principal;
    if (!p) throw new ApiError(401, "unauthenticated", "authentication required");
    if (!allows(p.permissions, resource, action)) {
      throw new ApiError(403, "forbidden", `role ${p.role} may not ${action} ${resource}`, { resource, action, role: p.role });
    }
    await next();
  });
  // The OpenAPI document names it on the operation (functions/openapi/document.ts turns it into security scopes).
  return Object.assign(middleware, { [uniqueSymbol]: { spec: { "x-permission": `${resource}:${action}` } } });
}
