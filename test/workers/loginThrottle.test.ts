import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLogs } from "../../db/schema.ts";
import { openKv } from "../../core/platform/kv.ts";
import { createApp } from "../../functions/app.ts";
import { MAX_CLIENT_FAILURES, reserveLoginAttempt } from "../../functions/auth/loginThrottle.ts";
import { createUser, api, expectErrorShape, withDb } from "./helpers.ts";

const login = (username: string, password: string) => api("POST", "/api/auth/login", { body: { username, password } });

describe("login throttling", () => {
  it("the 6th attempt within the window is 429 with Retry-After, even with the right password", async () => {
    const u = await createUser("viewer");
    for (let i = 0; i < 5; i++) expect((await login(u.username, "wrong-password")).status).toBe(401);
    const sixth = await login(u.username, "wrong-password");
    expect(sixth.status).toBe(429);
    expectErrorShape(sixth.body, "too_many_attempts");
    const retryAfter = Number(sixth.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);

    const right = await login(u.username, u.password);
    expect(right.status).toBe(429);
    expect(right.body.token).toBeUndefined();

    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.action, "LOGIN_THROTTLED")));
    const mine = rows.filter((r) => (r.details as { username?: string } | null)?.username === u.username);
    expect(mine).toHaveLength(2);
    expect(mine[0]!.statusCode).toBe(429);
  });

  it("counts per username: another user's failures do not lock you, and fewer than 5 do not lock", async () => {
    const a = await createUser("viewer");
    const b = await createUser("viewer");
    for (let i = 0; i < 6; i++) await login(a.username, "wrong-password");
    expect((await login(a.username, a.password)).status).toBe(429);
    for (let i = 0; i < 4; i++) expect((await login(b.username, "wrong-password")).status).toBe(401);
    expect((await login(b.username, b.password)).status).toBe(200);
  });

  it("unknown usernames are throttled the same way (no hint which names exist)", async () => {
    const name = `nobody-${crypto.randomUUID().slice(0, 8)}`;
    for (let i = 0; i < 5; i++) expect((await login(name, "wrong-password")).status).toBe(401);
    expect((await login(name, "wrong-password")).status).toBe(429);
  });
});

/** The Worker with REDFORGE_TRUST_CLIENT_IP set, so CF-Connecting-IP is the client's address as in production. */
const trusted = createApp();
async function loginFrom(ip: string, username: string, password: string) {
  const res = await trusted.request("http://redforge.test/api/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json", "CF-Connecting-IP": ip }, body: JSON.stringify({ username, password }),
  }, { ...env, REDFORGE_TRUST_CLIENT_IP: "true" });
  return res.status;
}
const address = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}`;

describe("login throttling reserves each attempt before the password is checked", () => {
  it("40 parallel wrong attempts for one user: at most 5 passwords are checked, the rest are 429", async () => {
    const u = await createUser("viewer");
    const statuses = await Promise.all(Array.from({ length: 40 }, () => login(u.username, "wrong-password")).map((p) => p.then((r) => r.status)));
    // The promise is "at most 5 passwords checked": every other attempt is refused before the check.
    // 429 is the throttle's answer; on an overloaded machine the database can refuse first (503), which
    // checks no password either (a CI run at load 25 saw that), so both count as refused.
    expect(statuses.filter((s) => s === 401).length, `statuses ${statuses.join(",")}`).toBeLessThanOrEqual(5);
    expect(statuses.filter((s) => s === 429 || s === 503).length, `statuses ${statuses.join(",")}`).toBeGreaterThanOrEqual(35);
    expect(statuses.filter((s) => s === 200), `statuses ${statuses.join(",")}`).toEqual([]);
    const checked = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.action, "AUTH_FAILED")));
    expect(checked.filter((r) => (r.details as { username?: string } | null)?.username === u.username).length).toBeLessThanOrEqual(5);
  });

  it("an attacker at one address cannot lock out the user logging in from another", async () => {
    const u = await createUser("viewer");
    const attacker = address();
    for (let i = 0; i < 8; i++) await loginFrom(attacker, u.username, "wrong-password");
    expect(await loginFrom(attacker, u.username, u.password)).toBe(429);
    expect(await loginFrom("2001:db8::42", u.username, u.password)).toBe(200);
  });

  it("spraying passwords across usernames from one address is throttled per address", async () => {
    const sprayer = "203.0.113.77";
    let firstRefused = -1;
    for (let i = 0; i < MAX_CLIENT_FAILURES + 2 && firstRefused < 0; i++) {
      if (await loginFrom(sprayer, `spray-${crypto.randomUUID().slice(0, 8)}`, "Winter2026!") === 429) firstRefused = i;
    }
    expect(firstRefused).toBe(MAX_CLIENT_FAILURES);
    const u = await createUser("viewer");
    expect(await loginFrom(sprayer, u.username, u.password)).toBe(429);
    expect(await loginFrom("203.0.113.78", u.username, u.password)).toBe(200);
  });

  it("a client-supplied CF-Connecting-IP is not trusted in development: no address in the audit row", async () => {
    const name = `nobody-${crypto.randomUUID().slice(0, 8)}`;
    await api("POST", "/api/auth/login", { body: { username: name, password: "x" }, headers: { "CF-Connecting-IP": "192.0.2.66" } });
    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.action, "AUTH_FAILED")));
    const mine = rows.find((r) => (r.details as { username?: string } | null)?.username === name);
    expect(mine).toBeDefined();
    expect(mine!.ipAddress).toBeNull();
  });

  it("any username makes a safe throttle key (a lone surrogate, 255 characters, separators)", async () => {
    const kv = openKv(env);
    for (const name of ["\ud800", "a:b", "x".repeat(255), "ü/%"]) {
      const attempt = await reserveLoginAttempt(kv, name, "192.0.2.1");
      expect(attempt.retryAfter).toBeNull();
    }
  });
});
