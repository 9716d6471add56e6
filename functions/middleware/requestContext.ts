import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../core/app-env.ts";
import { Services } from "../../core/platform/services.ts";
import { inetText } from "../../db/auditChain.ts";

/**
 * The caller's address, from CF-Connecting-IP only: Cloudflare's edge sets it
 * and overwrites a client's own. `wrangler dev` passes on whatever the client
 * sent, so outside production it counts only when REDFORGE_TRUST_CLIENT_IP says
 * a trusted proxy sets it. X-Forwarded-For is never read (any client can write
 * it). The text is Postgres's inet form: the audit hash and the throttle keys
 * see one spelling per address.
 */
export function clientAddressOf(c: Context<AppEnv>): string | null {
  const production = (c.env.ENVIRONMENT ?? "production") !== "development";
  if (!production && c.env.REDFORGE_TRUST_CLIENT_IP !== "true") return null;
  const raw = c.req.header("CF-Connecting-IP")?.trim();
  return raw ? inetText(raw) : null;
}

/** Request id (echoed as X-Request-Id), the client address, and the lazily opened services, closed after the response. */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const incoming = c.req.header("X-Request-Id");
  const requestId = incoming && /^[\w.-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID();
  c.set("requestId", requestId);
  c.set("clientAddress", clientAddressOf(c));
  const services = new Services(c.env);
  c.set("services", services);
  try {
    await next();
  } finally {
    c.header("X-Request-Id", requestId);
    const closing = services.close();
    try {
      c.executionCtx.waitUntil(closing);
    } catch {
      await closing; // no ExecutionContext (e.g. app.request in a unit test)
    }
  }
});
