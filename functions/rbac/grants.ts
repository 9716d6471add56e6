/**
 * What a caller may hand out. Holding `users:update` or `roles:create` must not
 * be a way to escalate: a role can be assigned, created or edited only by a
 * caller who already holds every permission in it (admins hold `*:*`).
 */
import { eq } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { roles, type Permission } from "../../db/schema.ts";
import type { Principal } from "../../core/app-env.ts";
import { ApiError } from "../../core/errors.ts";
import { BUILTIN_ROLES, allows, isBuiltinRole } from "./permissions.ts";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/**
 * The permissions of a role a user is about to get, or 400 `unknown_role`.
 * Inside a transaction the custom role's row is share-locked, so a concurrent
 * DELETE /api/roles/:name either sees the new user or finds no role.
 */
export async function permissionsForAssignment(tx: Tx, role: string): Promise<Permission[]> {
  if (isBuiltinRole(role)) return BUILTIN_ROLES[role];
  const [row] = await tx.select({ permissions: roles.permissions }).from(roles)
    .where(eq(roles.name, role)).for("share").limit(1);
  if (!row) throw new ApiError(400, "unknown_role", `role ${role} does not exist`);
  return row.permissions;
}

/** A role's permissions as they stand (none for a role that no longer exists). */
export async function currentPermissions(tx: Tx, role: string): Promise<Permission[]> {
  if (isBuiltinRole(role)) return BUILTIN_ROLES[role];
  const [row] = await tx.select({ permissions: roles.permissions }).from(roles).where(eq(roles.name, role)).limit(1);
  return row?.permissions ?? [];
}

/** 403 `role_too_wide` unless the caller holds every permission listed. */
export function assertCanGrant(caller: Principal, permissions: readonly Permission[], what: string): void {
  const missing = permissions.filter((p) => !allows(caller.permissions, p.resource, p.action));
  if (missing.length > 0) {
    throw new ApiError(403, "role_too_wide", `you cannot grant ${what}: it holds permissions you do not`, { missing });
  }
}
