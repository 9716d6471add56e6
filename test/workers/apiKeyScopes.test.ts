/**
 * API keys with scopes: a key does only what its scopes AND its owner's
 * current role allow; a scope wider than the owner's role is refused at
 * creation; revocation, a password change and disabling the owner end it at once.
 */
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { users } from "../../db/schema.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, withDb, type TestUser } from "./helpers.ts";

async function newKey(owner: TestUser, body: Record<string, unknown>) {
  const res = await api("POST", "/api/api-keys", { token: owner.token, body: { name: "scoped", ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; key: string; scopes: unknown };
}

describe("API key scopes", () => {
  it("a scoped key is denied outside its scopes though its owner is allowed", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const inst = await createInstance(admin.token, cluster.id);
    const operator = await createUser("operator");
    const key = await newKey(operator, { scopes: [{ resource: "instances", action: "read" }] });
    expect(key.scopes).toEqual([{ resource: "instances", action: "read" }]);

    expect((await api("GET", `/api/instances/${inst.id}`, { token: key.key })).status).toBe(200);
    // The operator may scale; the key may not.
    const scale = await api("POST", `/api/instances/${inst.id}/scale`, { token: key.key, body: { replicas: 0 } });
    expect(scale.status).toBe(403);
    expectErrorShape(scale.body, "forbidden");
    expect((await api("POST", `/api/instances/${inst.id}/scale`, { token: operator.token, body: { replicas: 1 } })).status).toBe(202);
    // Outside the instances resource entirely.
    expect((await api("GET", "/api/audit?limit=1", { token: key.key })).status).toBe(403);
    const me = await api("GET", "/api/auth/me", { token: key.key });
    expect(me.body.permissions).toEqual([{ resource: "instances", action: "read" }]);
  });

  it("a scope wider than the owner's role is refused at creation, wildcards included", async () => {
    const viewer = await createUser("viewer");
    for (const scopes of [
      [{ resource: "instances", action: "update" }],
      [{ resource: "instances", action: "*" }],
      [{ resource: "*", action: "read" }],
      [{ resource: "instances", action: "read" }, { resource: "users", action: "read" }],
    ]) {
      const res = await api("POST", "/api/api-keys", { token: viewer.token, body: { name: "wide", scopes } });
      expect(res.status, JSON.stringify(scopes)).toBe(403);
      expectErrorShape(res.body, "scope_too_wide");
      expect(res.body.error.details.missing.length).toBeGreaterThan(0);
    }
    const listed = await api("GET", "/api/api-keys", { token: viewer.token });
    expect(listed.body.items).toHaveLength(0);
    // Wildcards an admin holds are fine.
    const admin = await createUser("admin");
    await newKey(admin, { scopes: [{ resource: "*", action: "read" }] });
  });

  it("bad scopes are a validation error, not a 500", async () => {
    const admin = await createUser("admin");
    for (const scopes of [[], [{ resource: "spaceships", action: "read" }], [{ resource: "instances" }], "instances:read"]) {
      const res = await api("POST", "/api/api-keys", { token: admin.token, body: { name: "bad", scopes } });
      expect(res.status, JSON.stringify(scopes)).toBe(400);
      expectErrorShape(res.body, "validation_failed");
    }
  });

  it("an API key cannot exceed its owner's role: demoting the owner narrows the key at once", async () => {
    const admin = await createUser("admin");
    const owner = await createUser("admin");
    const key = await newKey(owner, { scopes: [{ resource: "clusters", action: "*" }, { resource: "instances", action: "read" }] });
    const before = await api("POST", "/api/clusters", { token: key.key, body: { name: `k-${crypto.randomUUID().slice(0, 6)}` } });
    expect(before.status).toBe(201);

    const demote = await api("PATCH", `/api/users/${owner.id}`, { token: admin.token, body: { role: "viewer" } });
    expect(demote.status, JSON.stringify(demote.body)).toBe(200);
    const after = await api("POST", "/api/clusters", { token: key.key, body: { name: `k-${crypto.randomUUID().slice(0, 6)}` } });
    expect(after.status).toBe(403);
    // What is left is the overlap: clusters:read and instances:read.
    const me = await api("GET", "/api/auth/me", { token: key.key });
    expect(me.body.permissions).toEqual(expect.arrayContaining([{ resource: "clusters", action: "read" }, { resource: "instances", action: "read" }]));
    expect(me.body.permissions).toHaveLength(2);
  });

  it("an unscoped key of a custom-role owner follows the role's current permissions", async () => {
    const admin = await createUser("admin");
    const roleName = `keys-${crypto.randomUUID().slice(0, 6)}`;
    expect((await api("POST", "/api/roles", { token: admin.token, body: { name: roleName, permissions: [{ resource: "audit", action: "read" }, { resource: "apikeys", action: "create" }] } })).status).toBe(201);
    const owner = await createUser(roleName);
    const key = await newKey(owner, {});
    expect((await api("GET", "/api/audit?limit=1", { token: key.key })).status).toBe(200);
    await api("PATCH", `/api/roles/${roleName}`, { token: admin.token, body: { permissions: [{ resource: "apikeys", action: "create" }] } });
    expect((await api("GET", "/api/audit?limit=1", { token: key.key })).status).toBe(403);
  });

  it("revocation is effective on the very next request", async () => {
    const op = await createUser("operator");
    const key = await newKey(op, { scopes: [{ resource: "instances", action: "read" }] });
    expect((await api("GET", "/api/instances", { token: key.key })).status).toBe(200);
    expect((await api("DELETE", `/api/api-keys/${key.id}`, { token: op.token })).status).toBe(200);
    const res = await api("GET", "/api/instances", { token: key.key });
    expect(res.status).toBe(401);
    expectErrorShape(res.body, "invalid_api_key");
  });

  it("a password change ends the owner's keys; a key made afterwards works", async () => {
    const admin = await createUser("admin");
    const op = await createUser("operator");
    const key = await newKey(op, {});
    expect((await api("GET", "/api/instances", { token: key.key })).status).toBe(200);
    const change = await api("PATCH", `/api/users/${op.id}`, { token: admin.token, body: { password: "a-brand-new-password" } });
    expect(change.status).toBe(200);
    const res = await api("GET", "/api/instances", { token: key.key });
    expect(res.status).toBe(401);
    expectErrorShape(res.body, "invalid_api_key");

    const login = await api("POST", "/api/auth/login", { body: { username: op.username, password: "a-brand-new-password" } });
    const fresh = await api("POST", "/api/api-keys", { token: login.body.token, body: { name: "after" } });
    expect(fresh.status).toBe(201);
    expect((await api("GET", "/api/instances", { token: fresh.body.key })).status).toBe(200);
  });

  it("disabling the owner ends the keys, and re-enabling does not bring them back", async () => {
    const admin = await createUser("admin");
    const op = await createUser("operator");
    const key = await newKey(op, {});
    expect((await api("PATCH", `/api/users/${op.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await api("GET", "/api/instances", { token: key.key })).status).toBe(401);
    expect((await api("PATCH", `/api/users/${op.id}`, { token: admin.token, body: { disabled: false } })).status).toBe(200);
    const [row] = await withDb((db) => db.select().from(users).where(eq(users.id, op.id)));
    expect(row!.disabled).toBe(false);
    expect((await api("GET", "/api/instances", { token: key.key })).status).toBe(401);
  });
});
