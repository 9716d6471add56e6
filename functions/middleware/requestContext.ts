import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../core/app-env.ts";
import { Services } from "../../core/platform/services.ts";

/** Request id (echoed as X-Request-Id) and the lazily opened services, closed after the response. */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const incoming = c.req.header("X-Request-Id");
  const requestId = incoming && /^[\w.-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID();
  c.set("requestId", requestId);
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
