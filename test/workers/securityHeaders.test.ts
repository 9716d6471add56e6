/** Response headers on every answer, and the API rate limit (token buckets in the KV) per principal and per client. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../functions/app.ts";
import { api, createUser, expectErrorShape } from "./helpers.ts";

const app = createApp();
const call = (path: string, init: RequestInit, vars: Record<string, string>) =>
  app.request(`http://redforge.test${path}`, init, { ...env, ...vars });

describe("security headers", () => {
  it("nosniff on every answer; no-store on authenticated JSON", async () => {
    const viewer = await createUser("viewer");
    for (const res of [
      await api("GET", "/api/health"),
      await api("GET", "/api/nowhere"),
      await api("GET", "/api/instances"),
      await api("GET", "/api/instances", { token: viewer.token }),
      await api("POST", "/api/auth/login", { body: { username: "nobody-x", password: "x" } }),
    ]) {
      expect(res.headers.get("X-Content-Type-Options"), String(res.status)).toBe("nosniff");
    }
    const authed = await api("GET", "/api/instances", { token: viewer.token });
    expect(authed.headers.get("Cache-Control")).toBe("no-store");
    const me = await api("GET", "/api/auth/me", { token: viewer.token });
    expect(me.headers.get("Cache-Control")).toBe("no-store");
    const session = await api("POST", "/api/auth/login", { body: { username: viewer.username, password: viewer.password } });
    expect(session.headers.get("Cache-Control")).toBe("no-store");
  });

  it("HTML the Worker serves cannot be framed and runs no script; HSTS only in production", async () => {
    const docs = await api("GET", "/api/docs");
    expect(docs.status).toBe(200);
    const csp = docs.headers.get("Content-Security-Policy") ?? "";
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("script-src");
    expect(docs.headers.get("Strict-Transport-Security")).toBeNull();
    const prod = await call("/api/health", {}, { ENVIRONMENT: "production" });
    expect(prod.headers.get("Strict-Transport-Security")).toMatch(/^max-age=\d{8,}; includeSubDomains$/);
    expect(prod.headers.get("X-Content-Type-Options")).toBe("nosniff");
  });

  it("the console's policy: same-origin scripts, styles and connections only, never framed", async () => {
    const { CONSOLE_CSP } = await import("../../functions/middleware/securityHeaders.ts");
    for (const directive of ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"]) {
      expect(CONSOLE_CSP).toContain(directive);
    }
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });
});

describe("API rate limit", () => {
  it("a principal past its bucket gets 429 with Retry-After; another principal does not", async () => {
    const a = await createUser("viewer");
    const b = await createUser("viewer");
    const vars = { REDFORGE_RATE_LIMIT_PRINCIPAL: "0.01:3" };
    const get = (token: string) => call("/api/instances", { headers: { Authorization: `Bearer ${token}` } }, vars);
    for (let i = 0; i < 3; i++) expect((await get(a.token)).status).toBe(200);
    const limited = await get(a.token);
    expect(limited.status).toBe(429);
    expectErrorShape(await limited.json(), "rate_limited");
    const retryAfter = Number(limited.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(100);
    expect((await get(b.token)).status).toBe(200);
  });

  it("a client address past its bucket gets 429, whoever it claims to be; another address does not", async () => {
    const a = await createUser("viewer");
    const vars = { REDFORGE_RATE_LIMIT_CLIENT: "0.01:2", REDFORGE_TRUST_CLIENT_IP: "true" };
    const ip = `192.0.2.${Math.floor(Math.random() * 250) + 1}`;
    const from = (addr: string) => call("/api/health", { headers: { "CF-Connecting-IP": addr } }, vars);
    expect((await from(ip)).status).toBe(200);
    expect((await from(ip)).status).toBe(200);
    const limited = await call("/api/instances", { headers: { "CF-Connecting-IP": ip, Authorization: `Bearer ${a.token}` } }, vars);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await from("2001:db8::77")).status).toBe(200);
  });

  // 300 sequential requests: at load 25 they took over the pool's 30 s default.
  it("the defaults let 300 requests from one caller through at once-a-suite pace", { timeout: 180_000 }, async () => {
    const a = await createUser("viewer");
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      statuses.push(...await Promise.all(Array.from({ length: 10 }, () => api("GET", "/api/auth/me", { token: a.token }).then((r) => r.status))));
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});
