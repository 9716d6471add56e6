/**
 * Authentication reads the principal from the KV (core/platform/principalCache.ts),
 * and every change that affects it reaches the very next request: each case
 * warms the cache with a request, changes the principal through the API, and
 * checks the next request. The first case shows the cache is really read
 * (a row changed behind the API's back is not seen until the entry goes).
 */
import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { users } from "../../db/schema.ts";
import { openKv } from "../../core/platform/kv.ts";
import { cachedPrincipalPart, forgetPrincipal } from "../../core/platform/principalCache.ts";
import { api, createUser, unique, withDb } from "./helpers.ts";

const me = (token: string) => api("GET", "/api/auth/me", { token });

async function customRole(token: string, permissions: { resource: string; action: string }[]) {
  const res = await api("POST", "/api/roles", { token, body: { name: unique("pc-role"), permissions } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.name as string;
}

async function apiKey(token: string, body: Record<string, unknown> = {}) {
  const res = await api("POST", "/api/api-keys", { token, body: { name: unique("k"), ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; key: string };
}

describe("principal cache", () => {
  it("serves the principal from the KV: a row changed behind the API stays unseen until its entry is forgotten", async () => {
    const u = await createUser("viewer");
    expect((await me(u.token)).body.role).toBe("viewer");
    await withDb((db) => db.update(users).set({ role: "operator" }).where(eq(users.id, u.id)));
    expect((await me(u.token)).body.role).toBe("viewer");
    await forgetPrincipal(openKv(env), { userId: u.id });
    expect((await me(u.token)).body.role).toBe("operator");
  });

  it("a fill that read the row before a change cannot put it back after the change", async () => {
    const kv = openKv(env);
    const subject = { userId: crypto.randomUUID() };
    let release!: () => void;
    let loading!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const loadStarted = new Promise<void>((r) => { loading = r; });
    // A reader that found no entry, loaded the old row and is slow to store it ...
    const slow = cachedPrincipalPart(kv, subject, async () => { loading(); await gate; return { role: "old" }; });
    await loadStarted;
    // ... while the change commits and forgets the entry.
    await forgetPrincipal(kv, subject);
    release();
    expect(await slow).toEqual({ role: "old" });
    expect(await cachedPrincipalPart(kv, subject, async () => ({ role: "new" }))).toEqual({ role: "new" });
  });

  it("a user's role change applies to the next request", async () => {
    const admin = await createUser("admin");
    const u = await createUser("operator");
    expect((await api("GET", "/api/clusters", { token: u.token })).status).toBe(200);
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { role: "viewer" } })).status).toBe(200);
    expect((await me(u.token)).body.role).toBe("viewer");
    expect((await api("POST", `/api/clusters`, { token: u.token, body: { name: unique("c") } })).status).toBe(403);
  });

  it("disabling ends the user's next request; enabling lets a fresh login in at once", async () => {
    const admin = await createUser("admin");
    const u = await createUser("viewer");
    expect((await me(u.token)).status).toBe(200);
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await me(u.token)).status).toBe(401);
    // The refused request above read the disabled row; enabling must not leave that behind.
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { disabled: false } })).status).toBe(200);
    const login = await api("POST", "/api/auth/login", { body: { username: u.username, password: u.password } });
    expect(login.status).toBe(200);
    expect((await me(login.body.token)).status).toBe(200);
  });

  it("a password change ends the old session and the keys minted under it at the next request", async () => {
    const admin = await createUser("admin");
    const u = await createUser("viewer");
    const key = await apiKey(u.token);
    expect((await me(u.token)).status).toBe(200);
    expect((await me(key.key)).status).toBe(200);
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { password: "a brand new password" } })).status).toBe(200);
    expect((await me(u.token)).body.error.code).toBe("token_revoked");
    expect((await me(key.key)).body.error.code).toBe("invalid_api_key");
  });

  it("a revoked key is refused at its next request", async () => {
    const u = await createUser("viewer");
    const key = await apiKey(u.token);
    expect((await me(key.key)).status).toBe(200);
    expect((await api("DELETE", `/api/api-keys/${key.id}`, { token: u.token })).status).toBe(200);
    expect((await me(key.key)).status).toBe(401);
  });

  it("a custom role's edit applies to its holders' next request, through a session and through a key", async () => {
    const admin = await createUser("admin");
    const role = await customRole(admin.token, [{ resource: "clusters", action: "read" }, { resource: "apikeys", action: "create" }]);
    const u = await createUser(role);
    const key = await apiKey(u.token);
    expect((await api("GET", "/api/clusters", { token: u.token })).status).toBe(200);
    expect((await api("GET", "/api/clusters", { token: key.key })).status).toBe(200);
    expect((await api("PATCH", `/api/roles/${role}`, { token: admin.token, body: { permissions: [{ resource: "metrics", action: "read" }] } })).status).toBe(200);
    expect((await api("GET", "/api/clusters", { token: u.token })).status).toBe(403);
    expect((await api("GET", "/api/clusters", { token: key.key })).status).toBe(403);
  });

  it("a deleted role takes its permissions from keys minted with it; re-created, its new permissions apply", async () => {
    const admin = await createUser("admin");
    const role = await customRole(admin.token, [{ resource: "clusters", action: "read" }, { resource: "apikeys", action: "create" }]);
    const holder = await createUser(role);
    const key = await apiKey(holder.token);
    expect((await api("GET", "/api/clusters", { token: key.key })).status).toBe(200);
    // The holder moves to another role (the key keeps its own role name), then the role goes.
    expect((await api("PATCH", `/api/users/${holder.id}`, { token: admin.token, body: { role: "viewer" } })).status).toBe(200);
    expect((await api("DELETE", `/api/roles/${role}`, { token: admin.token })).status).toBe(204);
    // The key's role and its owner's differ now: it acts as a viewer at most, and a missing role grants nothing.
    expect((await api("GET", "/api/clusters", { token: key.key })).status).toBe(403);
    // The refused request above cached "no such role"; re-creating it must replace that.
    const recreated = await api("POST", "/api/roles", { token: admin.token, body: { name: role, permissions: [{ resource: "clusters", action: "read" }] } });
    expect(recreated.status).toBe(201);
    expect((await api("GET", "/api/clusters", { token: key.key })).status).toBe(200);
  });

  it("a deleted user's session is refused at its next request", async () => {
    const admin = await createUser("admin");
    const u = await createUser("viewer");
    expect((await me(u.token)).status).toBe(200);
    expect((await api("DELETE", `/api/users/${u.id}`, { token: admin.token })).status).toBe(204);
    expect((await me(u.token)).status).toBe(401);
  });
});
