/**
 * Headers every answer carries, set after the handler (errors included):
 * no MIME sniffing, nothing cached that a caller's credentials opened, HSTS
 * in production, and a Content-Security-Policy on HTML. The console's HTML is
 * served by the asset router without the Worker, so its policy ships as
 * app/public/_headers, which must say CONSOLE_CSP (test/unit/consoleHeaders.test.ts checks it).
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../core/app-env.ts";
import { DOCUMENT_CSP } from "./contentSecurityPolicy.ts";

export { CONSOLE_CSP, DOCUMENT_CSP } from "./contentSecurityPolicy.ts";

const HSTS = "max-age=31536000; includeSubDomains";

export const securityHeaders = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  // A WebSocket upgrade's answer comes from a Durable Object and cannot be rebuilt.
  if (c.res.status === 101) return;
  const production = (c.env.ENVIRONMENT ?? "production") !== "development";
  const headers: Record<string, string> = { "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer" };
  if (production) headers["Strict-Transport-Security"] = HSTS;
  // Answers carry what a caller's credentials opened (or a fresh token): no shared or browser cache keeps them.
  if (!c.res.headers.has("Cache-Control")) headers["Cache-Control"] = "no-store";
  if (c.res.headers.get("Content-Type")?.startsWith("text/html")) {
    // A page with its own policy keeps it, but is never framed either.
    const own = c.res.headers.get("Content-Security-Policy");
    headers["Content-Security-Policy"] = !own ? DOCUMENT_CSP : /frame-ancestors/.test(own) ? own : `${own}; frame-ancestors 'none'`;
    headers["X-Frame-Options"] = "DENY";
  }
  try {
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  } catch {
    // Immutable headers (a response passed on from a binding): copy it once.
    c.res = new Response(c.res.body, c.res);
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  }
});
