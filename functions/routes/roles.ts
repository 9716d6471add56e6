import { and, asc, count, eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { roles, users, type Permission } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { forgetPrincipal } from "../../core/platform/principalCache.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { assertCanGrant } from "../rbac/grants.ts";
import { ACTIONS, BUILTIN_ROLES, RESOURCES, isBuiltinRole } from "../rbac/permissions.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { roleSchema } from "../../protocol/api/access.ts";
import { listOf } from "../../protocol/api/common.ts";

const permission = z.strictObject({
  resource: z.enum([...RESOURCES, "*"]),
  action: z.enum([...ACTIONS, "*"]),
});
/** Duplicates are dropped so the stored list reads as the set it is. */
const permissions = z.array(permission).min(1).max(100).transform((list) =>
  list.filter((p, i) => list.findIndex((q) => q.resource === p.resource && q.action === p.action) === i));
// Role names end up in users.role and api_keys.role (varchar 100).
const name = z.string().min(1).max(100).regex(/^[a-z][a-z0-9_-]*$/, "lower-case letters, digits, _ and - (starting with a letter)");

const createBody = z.strictObject({ name, permissions });
const patchBody = z.strictObject({ permissions });
const nameParam = z.object({ name: z.string().min(1).max(100) });

const builtinViews = () => Object.entries(BUILTIN_ROLES).map(([n, p]) => ({ name: n, permissions: p, builtin: true, createdAt: null }));
const view = (r: typeof roles.$inferSelect) => ({ name: r.name, permissions: r.permissions, builtin: false, createdAt: r.createdAt });

function refuseBuiltin(roleName: string): void {
  if (isBuiltinRole(roleName)) throw new ApiError(409, "builtin_role", `${roleName} is a built-in role and cannot be changed`);
}

const doc = describe("Roles");

/**
 * Built-in roles live in code (rbac/permissions.ts) and are read-only here;
 * the `roles` table also holds copies of them from bootstrap, which this API
 * ignores. Custom roles are plain rows; authenticate reads them per request,
 * so an edit applies to every holder at once.
 */
export const roleRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List built-in and custom roles", responses: { 200: listOf(roleSchema) } }), requirePermission("roles", "read"), async (c) => {
    const custom = await c.var.services.db.select().from(roles).where(eq(roles.builtin, false)).orderBy(asc(roles.name));
    return c.json({ items: [...builtinViews(), ...custom.filter((r) => !isBuiltinRole(r.name)).map(view)] });
  })
  .post("/", doc({ summary: "Create a custom role (no wider than the caller)", responses: { 201: roleSchema }, errors: [409] }), requirePermission("roles", "create"), validate("json", createBody), async (c) => {
    const body = c.req.valid("json");
    if (isBuiltinRole(body.name)) throw new ApiError(409, "role_exists", `${body.name} is a built-in role`);
    assertCanGrant(c.var.principal!, body.permissions, `role ${body.name}`);
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(roles).values({ name: body.name, permissions: body.permissions }).onConflictDoNothing().returning();
      if (!created) throw new ApiError(409, "role_exists", `a role named ${body.name} already exists`);
      record({ action: "ROLE_CREATED", resourceType: "role", resourceId: body.name, details: { permissions: body.permissions } });
      return created;
    });
    // Holders of a role name that did not exist yet (API keys, users) held nothing; now they hold this.
    await forgetPrincipal(c.var.services.kv, { role: body.name });
    return c.json(view(row), 201);
  })
  .patch("/:name", doc({ summary: "Replace a custom role's permissions", description: "Built-in roles → 409 `builtin_role`.", responses: { 200: roleSchema }, errors: [404, 409] }), requirePermission("roles", "update"), validate("param", nameParam), validate("json", patchBody), async (c) => {
    const roleName = c.req.valid("param").name;
    const next: Permission[] = c.req.valid("json").permissions;
    refuseBuiltin(roleName);
    const row = await transact(c, async (tx, record) => {
      const [before] = await tx.select().from(roles).where(and(eq(roles.name, roleName), eq(roles.builtin, false))).for("update").limit(1);
      if (!before) throw notFound("role", roleName);
      // Both what it had and what it gets: editing must not be a way to widen or to strip a wider role.
      assertCanGrant(c.var.principal!, [...before.permissions, ...next], `role ${roleName}`);
      const [updated] = await tx.update(roles).set({ permissions: next }).where(eq(roles.id, before.id)).returning();
      record({ action: "ROLE_UPDATED", resourceType: "role", resourceId: roleName, details: { from: before.permissions, to: next } });
      return updated!;
    });
    // Every holder's next request gets the new permissions.
    await forgetPrincipal(c.var.services.kv, { role: roleName });
    return c.json(view(row));
  })
  .delete("/:name", doc({ summary: "Delete a custom role nobody holds", description: "409 `role_in_use` while users have it; built-in roles → 409 `builtin_role`.", responses: { 204: null }, errors: [404, 409] }), requirePermission("roles", "delete"), validate("param", nameParam), async (c) => {
    const roleName = c.req.valid("param").name;
    refuseBuiltin(roleName);
    await transact(c, async (tx, record) => {
      // The row lock first: a user being given this role (grants.ts share-locks it) either commits before the count or fails after.
      const [target] = await tx.select().from(roles).where(and(eq(roles.name, roleName), eq(roles.builtin, false))).for("update").limit(1);
      if (!target) throw notFound("role", roleName);
      assertCanGrant(c.var.principal!, target.permissions, `role ${roleName}`);
      const [holders] = await tx.select({ n: count() }).from(users).where(eq(users.role, roleName));
      if (holders!.n > 0) throw new ApiError(409, "role_in_use", `${holders!.n} user(s) still have role ${roleName}`, { users: holders!.n });
      await tx.delete(roles).where(eq(roles.id, target.id));
      record({ action: "ROLE_DELETED", resourceType: "role", resourceId: roleName, details: { permissions: target.permissions } });
    });
    // API keys minted with this role now hold nothing.
    await forgetPrincipal(c.var.services.kv, { role: roleName });
    return c.body(null, 204);
  });
