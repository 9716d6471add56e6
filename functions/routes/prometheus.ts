import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { uniqueSymbol } from "hono-openapi";
import { describe } from "../../core/openapi/describe.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { collect } from "../../core/metrics/collect.ts";
import { CONTENT_TYPES, negotiate, render } from "../../core/metrics/exposition.ts";
import { timingSafeEqual } from "../../protocol/encoding.ts";
import { authenticate } from "../middleware/authenticate.ts";
import { requirePermission } from "../middleware/requirePermission.ts";

const encoder = new TextEncoder();
/** A configured scrape token shorter than this is ignored: it would be guessable. */
export const MIN_METRICS_TOKEN_LENGTH = 32;

/**
 * GET /metrics for Prometheus (docs/observability.md). Scraped with either the
 * configured REDFORGE_METRICS_TOKEN or any API key / session with metrics:read;
 * scrapes are not audited (one every 15 s would drown the log), nor rate
 * limited per principal beyond the per-address limit in front.
 */
const scrapeAuth = Object.assign(createMiddleware<AppEnv>(async (c, next) => {
  const token = c.env.REDFORGE_METRICS_TOKEN;
  const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "")?.[1];
  if (token && token.length >= MIN_METRICS_TOKEN_LENGTH && bearer && timingSafeEqual(encoder.encode(bearer), encoder.encode(token))) {
    return next();
  }
  return authenticate(c, async () => { await requirePermission("metrics", "read")(c, next); });
}), { [uniqueSymbol]: { spec: { "x-permission": "metrics:read" } } });

export const prometheusRoutes = new Hono<AppEnv>()
  .get("/", describe("Metrics")({
    summary: "Prometheus scrape: the fleet, deployments, API latency, AI usage and more",
    description: "Prometheus text format 0.0.4, or OpenMetrics 1.0 when `Accept` names `application/openmetrics-text`. Credentials: a session or API key with `metrics:read`, or the configured `REDFORGE_METRICS_TOKEN` as a bearer token. Series and their labels: docs/observability.md.",
    responses: { 200: { description: "The exposition", media: ["text/plain", "application/openmetrics-text"] } },
  }), scrapeAuth, async (c) => {
    const format = negotiate(c.req.header("Accept"));
    const body = render(await collect(c.env, c.var.services.db), format);
    return c.body(body, 200, { "Content-Type": CONTENT_TYPES[format], "Cache-Control": "no-store" });
  });
