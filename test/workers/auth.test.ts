import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../functions/app.ts";
import { api, adminLogin, createUser, expectErrorShape } from "./helpers.ts";

describe("login", () => {
  it("the bootstrap admin logs in with REDFORGE_ADMIN_PASSWORD and gets a short-lived token", async () => {
    const res = await api("POST", "/api/auth/login", { body: { username: "admin", password: env.REDFORGE_ADMIN_PASSWORD } });
    expect(res.status).toBe(200);
    expect(res.body.token.split(".")).toHaveLength(3);
    const ttl = new Date(res.body.expiresAt).getTime() - Date.now();
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(900_000);
    const me = await api("GET", "/api/auth/me", { token: res.body.token });
    expect(me.body).toMatchObject({ username: "admin", role: "admin", via: "token" });
  });

  it("a wrong password and an unknown user get the same 401", async () => {
    const wrong = await api("POST", "/api/auth/login", { body: { username: "admin", password: "nope" } });
    const unknown = await api("POST", "/api/auth/login", { body: { username: "nobody-here", password: "nope" } });
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expectErrorShape(res.body, "invalid_credentials");
    }
  });

  it("a disabled user cannot log in, and their live token stops working", async () => {
    const { withDb } = await import("./helpers.ts");
    const { users } = await import("../../db/schema.ts");
    const { eq } = await import("drizzle-orm");
    const u = await createUser("operator");
    expect((await api("GET", "/api/auth/me", { token: u.token })).status).toBe(200);
    // Through the API, which replaces the KV's copy of the principal (a row edited behind the API's back
    // is seen once the cache entry expires, within PRINCIPAL_CACHE_TTL_SECONDS; principalCache.test.ts).
    const admin = await createUser("admin");
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await withDb((db) => db.select().from(users).where(eq(users.id, u.id))))[0]!.disabled).toBe(true);
    expect((await api("POST", "/api/auth/login", { body: { username: u.username, password: u.password } })).status).toBe(401);
    expect((await api("GET", "/api/auth/me", { token: u.token })).status).toBe(401);
  });
});

describe("API keys", () => {
  it("a key is shown once, works as a bearer credential, and stops working when revoked", async () => {
    const token = await adminLogin();
    const created = await api("POST", "/api/api-keys", { token, body: { name: "ci-pipeline", role: "operator" } });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^rf_[A-Za-z0-9_-]{43}$/);
    const listed = await api("GET", "/api/api-keys", { token });
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
    expect(listed.body.items.find((k: any) => k.id === created.body.id).prefix).toBe(created.body.key.slice(0, 10));

    const me = await api("GET", "/api/auth/me", { token: created.body.key });
    expect(me.body).toMatchObject({ role: "operator", via: "api_key" });
    // An operator key cannot do what only admins can, though its owner is admin.
    expect((await api("POST", "/api/clusters", { token: created.body.key, body: { name: "from-key" } })).status).toBe(403);

    expect((await api("DELETE", `/api/api-keys/${created.body.id}`, { token })).status).toBe(200);
    const after = await api("GET", "/api/auth/me", { token: created.body.key });
    expect(after.status).toBe(401);
    expectErrorShape(after.body, "invalid_api_key");
  });

  it("a key can never be wider than its owner's role", async () => {
    const viewer = await createUser("viewer");
    const res = await api("POST", "/api/api-keys", { token: viewer.token, body: { name: "escalate", role: "admin" } });
    expect(res.status).toBe(403);
    expectErrorShape(res.body, "role_too_wide");
  });

  it("an API key cannot mint further keys", async () => {
    const op = await createUser("operator");
    const key = (await api("POST", "/api/api-keys", { token: op.token, body: { name: "k" } })).body.key;
    const res = await api("POST", "/api/api-keys", { token: key, body: { name: "k2" } });
    expect(res.status).toBe(403);
  });

  it("another user's key cannot be revoked", async () => {
    const a = await createUser("operator");
    const b = await createUser("operator");
    const key = (await api("POST", "/api/api-keys", { token: a.token, body: { name: "mine" } })).body;
    expect((await api("DELETE", `/api/api-keys/${key.id}`, { token: b.token })).status).toBe(404);
    expect((await api("GET", "/api/auth/me", { token: key.key })).status).toBe(200);
  });
});

describe("production configuration", () => {
  it("refuses to serve with a missing or dev-default admin password", async () => {
    const app = createApp();
    const base = { ...env, ENVIRONMENT: "production" };
    const missing = await app.request("/api/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username: "admin", password: "x" }),
    }, { ...base, REDFORGE_ADMIN_PASSWORD: undefined });
    expect(missing.status).toBe(503);
    const body = await missing.json<any>();
    expectErrorShape(body, "misconfigured");
    expect(body.error.details.missing).toContain("REDFORGE_ADMIN_PASSWORD");

    const devDefault = await app.request("/api/instances", { headers: { Authorization: "Bearer x" } }, { ...base, REDFORGE_ADMIN_PASSWORD: "redforge-dev-admin" });
    expect(devDefault.status).toBe(503);
    expect(JSON.stringify(await devDefault.json())).not.toContain("redforge-dev-admin");
  });
});
