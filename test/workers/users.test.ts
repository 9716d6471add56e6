import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { Db } from "../../db/client.ts";
import { auditLogs, users } from "../../db/schema.ts";
import { ApiError } from "../../core/errors.ts";
import { assertAdminRemains, lockAdminSet } from "../../functions/rbac/lastAdmin.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type ApiResponse } from "./helpers.ts";

const PASSWORD = "a-long-enough-password";

async function newUser(token: string, role: string, password = PASSWORD) {
  const username = unique("u");
  const res = await api("POST", "/api/users", { token, body: { username, email: `${username}@Example.test`, password, role } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; username: string; email: string; role: string; disabled: boolean };
}

async function login(username: string, password: string) {
  return api("POST", "/api/auth/login", { body: { username, password } });
}

describe("users API", () => {
  it("creates a user who can log in; the hash is never returned; the audit row has no password", async () => {
    const admin = await createUser("admin");
    const u = await newUser(admin.token, "operator");
    expect(u).toMatchObject({ role: "operator", disabled: false });
    expect(u.email).toBe(u.email.toLowerCase());
    expect(JSON.stringify(u)).not.toMatch(/password|pbkdf2/i);
    expect((await login(u.username, PASSWORD)).status).toBe(200);

    const got = await api("GET", `/api/users/${u.id}`, { token: admin.token });
    expect(got.status).toBe(200);
    expect(JSON.stringify(got.body)).not.toMatch(/pbkdf2|passwordHash/);

    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, u.id)));
    expect(rows.map((r) => r.action)).toContain("USER_CREATED");
    expect(JSON.stringify(rows)).not.toContain(PASSWORD);
  });

  it("rejects short passwords, unknown roles and duplicates", async () => {
    const admin = await createUser("admin");
    const name = unique("u");
    const short = await api("POST", "/api/users", { token: admin.token, body: { username: name, email: `${name}@x.test`, password: "short", role: "viewer" } });
    expect(short.status).toBe(400);
    expectErrorShape(short.body, "validation_failed");
    const badRole = await api("POST", "/api/users", { token: admin.token, body: { username: name, email: `${name}@x.test`, password: PASSWORD, role: "wizard" } });
    expect(badRole.status).toBe(400);
    expectErrorShape(badRole.body, "unknown_role");
    const u = await newUser(admin.token, "viewer");
    const dupName = await api("POST", "/api/users", { token: admin.token, body: { username: u.username, email: `${name}@x.test`, password: PASSWORD, role: "viewer" } });
    expect(dupName.status).toBe(409);
    expectErrorShape(dupName.body, "user_exists");
    const dupEmail = await api("POST", "/api/users", { token: admin.token, body: { username: name, email: u.email.toUpperCase(), password: PASSWORD, role: "viewer" } });
    expect(dupEmail.status).toBe(409);
    expectErrorShape(dupEmail.body, "user_exists");
  });

  it("lists with cursor pagination and filters by role and disabled", async () => {
    const admin = await createUser("admin");
    const role = unique("listing");
    expect((await api("POST", "/api/roles", { token: admin.token, body: { name: role, permissions: [{ resource: "metrics", action: "read" }] } })).status).toBe(201);
    const made = [await newUser(admin.token, role), await newUser(admin.token, role), await newUser(admin.token, role)];
    await api("PATCH", `/api/users/${made[0]!.id}`, { token: admin.token, body: { disabled: true } });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: ApiResponse = await api("GET", `/api/users?role=${role}&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: admin.token });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((u: { id: string }) => u.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(made.map((u) => u.id).sort());

    const disabled = await api("GET", `/api/users?role=${role}&disabled=true`, { token: admin.token });
    expect(disabled.body.items.map((u: { id: string }) => u.id)).toEqual([made[0]!.id]);
    const enabled = await api("GET", `/api/users?role=${role}&disabled=false`, { token: admin.token });
    expect(enabled.body.items).toHaveLength(2);
  });

  it("disabling revokes the user's tokens and keys for good: enabling lets them log in again, old tokens stay revoked", async () => {
    const admin = await createUser("admin");
    const op = await createUser("operator");
    const key = await api("POST", "/api/api-keys", { token: op.token, body: { name: unique("k") } });
    expect(key.status, JSON.stringify(key.body)).toBe(201);
    expect((await api("GET", "/api/auth/me", { token: op.token })).status).toBe(200);
    const res = await api("PATCH", `/api/users/${op.id}`, { token: admin.token, body: { disabled: true } });
    expect(res.status).toBe(200);
    expect(res.body.disabled).toBe(true);
    expect((await api("GET", "/api/auth/me", { token: op.token })).status).toBe(401);
    expect((await api("GET", "/api/auth/me", { token: key.body.key })).status).toBe(401);
    expect((await login(op.username, op.password)).status).toBe(401);
    await api("PATCH", `/api/users/${op.id}`, { token: admin.token, body: { disabled: false } });
    // However fast the enable follows the disable (same second, same millisecond as the token's issue).
    const old = await api("GET", "/api/auth/me", { token: op.token });
    expect(old.status).toBe(401);
    expectErrorShape(old.body, "token_revoked");
    expect((await api("GET", "/api/auth/me", { token: key.body.key })).status).toBe(401);
    const again = await login(op.username, op.password);
    expect(again.status).toBe(200);
    expect((await api("GET", "/api/auth/me", { token: again.body.token })).status).toBe(200);
    const actions = await withDb((db) => db.select({ action: auditLogs.action }).from(auditLogs).where(eq(auditLogs.resourceId, op.id)));
    expect(actions.map((a) => a.action)).toEqual(expect.arrayContaining(["USER_DISABLED", "USER_ENABLED"]));
  });

  it("an operator demoted to viewer gets 403 on the next write", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const instance = await createInstance(admin.token, cluster.id);
    const op = await createUser("operator");
    expect((await api("POST", `/api/instances/${instance.id}/stop`, { token: op.token })).status).toBe(202);
    const res = await api("PATCH", `/api/users/${op.id}`, { token: admin.token, body: { role: "viewer" } });
    expect(res.status).toBe(200);
    expect(res.body.role).toBe("viewer");
    const denied = await api("POST", `/api/instances/${instance.id}/start`, { token: op.token });
    expect(denied.status).toBe(403);
    expectErrorShape(denied.body, "forbidden");
    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, op.id)));
    expect(rows.find((r) => r.action === "ROLE_ASSIGNED")?.details).toMatchObject({ from: "operator", to: "viewer" });
  });

  it("a password change works for login and is audited without the password", async () => {
    const admin = await createUser("admin");
    const u = await newUser(admin.token, "viewer");
    const next = "another-long-password";
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { password: next } })).status).toBe(200);
    expect((await login(u.username, PASSWORD)).status).toBe(401);
    expect((await login(u.username, next)).status).toBe(200);
    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, u.id)));
    expect(rows.map((r) => r.action)).toContain("PASSWORD_CHANGED");
    expect(JSON.stringify(rows)).not.toContain(next);
  });

  it("a password change ends the sessions issued before it", async () => {
    const { env } = await import("cloudflare:test");
    const admin = await createUser("admin");
    const u = await createUser("operator");
    // A session from a minute ago, as a stolen token would be.
    const { SignJWT } = await import("jose");
    const past = Math.floor(Date.now() / 1000) - 60;
    const old = await new SignJWT({ username: u.username, role: u.role }).setProtectedHeader({ alg: "HS256" }).setSubject(u.id)
      .setIssuer("redforge").setAudience("redforge-api").setIssuedAt(past).setExpirationTime(past + 900)
      .sign(new TextEncoder().encode(env.JWT_SECRET!));
    expect((await api("GET", "/api/auth/me", { token: old })).status).toBe(200);
    expect((await api("PATCH", `/api/users/${u.id}`, { token: admin.token, body: { password: "a-brand-new-password" } })).status).toBe(200);
    const after = await api("GET", "/api/auth/me", { token: old });
    expect(after.status).toBe(401);
    expectErrorShape(after.body, "token_revoked");
    // A fresh login works at once.
    const fresh = await login(u.username, "a-brand-new-password");
    expect((await api("GET", "/api/auth/me", { token: fresh.body.token })).status).toBe(200);
  });

  it("changes email (409 when another user has it) and deletes users", async () => {
    const admin = await createUser("admin");
    const a = await newUser(admin.token, "viewer");
    const b = await newUser(admin.token, "viewer");
    const clash = await api("PATCH", `/api/users/${a.id}`, { token: admin.token, body: { email: b.email } });
    expect(clash.status).toBe(409);
    expectErrorShape(clash.body, "user_exists");
    const moved = await api("PATCH", `/api/users/${a.id}`, { token: admin.token, body: { email: `${a.username}@new.test` } });
    expect(moved.body.email).toBe(`${a.username}@new.test`);

    expect((await api("DELETE", `/api/users/${a.id}`, { token: admin.token })).status).toBe(204);
    expect((await api("GET", `/api/users/${a.id}`, { token: admin.token })).status).toBe(404);
    expect((await api("DELETE", `/api/users/${a.id}`, { token: admin.token })).status).toBe(404);
    expect((await login(a.username, PASSWORD)).status).toBe(401);
  });

  it("a caller without every permission of a role cannot hand it out or take over a wider account", async () => {
    const admin = await createUser("admin");
    const role = unique("usermgr");
    await api("POST", "/api/roles", { token: admin.token, body: { name: role, permissions: [{ resource: "users", action: "*" }] } });
    const mgr = await createUser(role);
    const other = await createUser("admin");
    const escalate = await api("POST", "/api/users", { token: mgr.token, body: { username: unique("u"), email: `${unique("e")}@x.test`, password: PASSWORD, role: "admin" } });
    expect(escalate.status).toBe(403);
    expectErrorShape(escalate.body, "role_too_wide");
    const takeover = await api("PATCH", `/api/users/${other.id}`, { token: mgr.token, body: { password: "mine-now-mine-now" } });
    expect(takeover.status).toBe(403);
    expect((await api("PATCH", `/api/users/${mgr.id}`, { token: mgr.token, body: { role: "admin" } })).status).toBe(403);
  });
});

describe("last admin", () => {
  it("demoting, disabling or deleting an admin is fine while another enabled admin remains", async () => {
    const admin = await createUser("admin");
    const a = await createUser("admin");
    const b = await createUser("admin");
    const c = await createUser("admin");
    expect((await api("PATCH", `/api/users/${a.id}`, { token: admin.token, body: { role: "operator" } })).status).toBe(200);
    expect((await api("PATCH", `/api/users/${b.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await api("DELETE", `/api/users/${c.id}`, { token: admin.token })).status).toBe(204);
  });

  /**
   * Other test files share this database and its many admins, so "only one
   * enabled admin left" is staged inside a transaction that is rolled back.
   */
  it("the last enabled admin cannot be taken away (409 last_admin)", async () => {
    const target = await createUser("admin");
    const rollback = new Error("rollback");
    const outcome = await withDb((db) => db.transaction(async (tx) => {
      await lockAdminSet(tx);
      await tx.update(users).set({ disabled: true }).where(eq(users.role, "admin"));
      const [row] = await tx.update(users).set({ disabled: false }).where(eq(users.id, target.id)).returning();
      const err = await assertAdminRemains(tx, row!).then(() => null, (e: unknown) => e);
      // With one more enabled admin, the same check passes.
      await createUserIn(tx);
      const passes = await assertAdminRemains(tx, row!).then(() => true, () => false);
      throw Object.assign(rollback, { err, passes });
    }).catch((e: unknown) => e as typeof rollback & { err: unknown; passes: boolean }));
    expect(outcome.err).toBeInstanceOf(ApiError);
    expect((outcome.err as ApiError).status).toBe(409);
    expect((outcome.err as ApiError).code).toBe("last_admin");
    expect(outcome.passes).toBe(true);
    // Rolled back: the shared admins are still enabled.
    expect((await api("GET", "/api/auth/me", { token: target.token })).status).toBe(200);
  });
});

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
async function createUserIn(tx: Tx) {
  const username = unique("admin");
  await tx.insert(users).values({ username, email: `${username}@x.test`, passwordHash: "x", role: "admin" });
}
