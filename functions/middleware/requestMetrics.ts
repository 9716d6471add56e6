import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "../../core/app-env.ts";
import { recordFromRequest, requestObserved } from "../../core/metrics/record.ts";

/**
 * The route template that answered (`/api/instances/:id`), never the raw path:
 * label cardinality stays the size of the route table. Middleware matches
 * (method ALL) are not routes; a request no route matched is "unmatched".
 */
export function routeTemplate(c: Context<AppEnv>): string {
  const route = matchedRoutes(c).filter((r) => r.method !== "ALL").at(-1);
  return route?.path ?? "unmatched";
}

const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]);

/** Times every API answer, errors included (onError has set the response by the time next() returns). */
export const requestMetrics = createMiddleware<AppEnv>(async (c, next) => {
  if (c.env.REDFORGE_REQUEST_METRICS === "off") return next();
  const t0 = performance.now();
  try {
    await next();
  } finally {
    // On Workers the clock advances only across I/O (a Spectre mitigation): pure CPU time reads as 0, I/O waits are counted.
    const seconds = Math.max(0, (performance.now() - t0) / 1000);
    const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
    recordFromRequest(c, requestObserved(routeTemplate(c), method, c.res.status, seconds));
  }
});
