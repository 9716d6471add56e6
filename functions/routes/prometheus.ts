import { Hono } from "hono";
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
export const prometheusRoutes = new Hono<AppEnv>()
  .use("/", async (c, next) => {
    const token = c.env.REDFORGE_METRICS_TOKEN;
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "")?.[1];
    if (token && token.length >= MIN_METRICS_TOKEN_LENGTH && bearer && timingSafeEqual(encoder.encode(bearer), encoder.encode(token))) {
      return next();
    }
    return authenticate(c, async () => { await requirePermission("metrics", "read")(c, next); });
  })
  .get("/", async (c) => {
    const format = negotiate(c.req.header("Accept"));
    const body = render(await collect(c.env, c.var.services.db), format);
    return c.body(body, 200, { "Content-Type": CONTENT_TYPES[format], "Cache-Control": "no-store" });
  });
