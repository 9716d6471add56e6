import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import type { Db } from "../../db/client.ts";
import { apiKeys, roles, users, type Permission } from "../../db/schema.ts";
import type { AppEnv, Principal } from "../../core/app-env.ts";
import { hashApiKey, looksLikeApiKey } from "../auth/apiKeys.ts";
import { ensureBootstrap } from "../auth/bootstrap.ts";
import { verifySessionToken } from "../auth/tokens.ts";
import { ApiError } from "../../core/errors.ts";
import { BUILTIN_ROLES, ROLE_RANK, intersect, isBuiltinRole } from "../rbac/permissions.ts";

const unauthenticated = (code: string, message: string) =>
  new ApiError(401, code, message, undefined, { "WWW-Authenticate": 'Bearer realm="redforge"' });

export async function permissionsOf(db: Db, role: string): Promise<Permission[]> {
  if (isBuiltinRole(role)) return BUILTIN_ROLES[role];
  const [row] = await db.select({ permissions: roles.permissions }).from(roles).where(eq(roles.name, role)).limit(1);
  return row?.permissions ?? [];
}

/** An API key never acts with more than its owner has now (a demoted owner demotes the key). */
function narrower(keyRole: string, ownerRole: string): string {
  if (isBuiltinRole(keyRole) && isBuiltinRole(ownerRole)) return ROLE_RANK[keyRole] <= ROLE_RANK[ownerRole] ? keyRole : ownerRole;
  return keyRole === ownerRole ? keyRole : "viewer";
}

async function fromApiKey(db: Db, key: string): Promise<Principal> {
  const [row] = await db
    .select({ key: apiKeys, user: users })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .where(and(eq(apiKeys.keyHash, await hashApiKey(key)), isNull(apiKeys.revokedAt)))
    .limit(1);
  if (!row || row.user.disabled || (row.key.expiresAt && row.key.expiresAt <= new Date())) {
    throw unauthenticated("invalid_api_key", "API key is unknown, revoked, expired, or its owner is disabled");
  }
  // A password change ends every key minted under the old password, as it ends sessions.
  if (row.user.sessionsValidAfter && row.key.createdAt < row.user.sessionsValidAfter) {
    throw unauthenticated("invalid_api_key", "the owner's password changed or the owner was disabled since this key was created; create a new key");
  }
  const role = narrower(row.key.role, row.user.role);
  await db.update(apiKeys).set({ lastUsedAt: new Date() }).where(eq(apiKeys.id, row.key.id));
  // Exactly what the key's role, its scopes and the owner's role as it stands now all allow.
  const [keyRole, ownerRole] = await Promise.all([permissionsOf(db, row.key.role), permissionsOf(db, row.user.role)]);
  let permissions = intersect(keyRole, ownerRole);
  if (row.key.scopes) permissions = intersect(permissions, row.key.scopes);
  return {
    userId: row.user.id, username: row.user.username, team: row.user.team, role,
    permissions, via: "api_key", apiKeyId: row.key.id,
  };
}

async function fromSessionToken(db: Db, token: string, secret: string): Promise<Principal> {
  const check = await verifySessionToken(token, secret);
  if (!check.ok) {
    throw check.reason === "expired"
      ? unauthenticated("token_expired", "session token has expired; log in again")
      : unauthenticated("invalid_token", "bearer token is not valid");
  }
  // Signed by us but not naming a user id (an old or foreign token): not a caller, not bad input.
  if (!z.uuid().safeParse(check.userId).success) throw unauthenticated("invalid_token", "bearer token is not valid");
  const [user] = await db.select().from(users).where(eq(users.id, check.userId)).limit(1);
  if (!user || user.disabled) throw unauthenticated("invalid_token", "the token's user no longer exists or is disabled");
  // Millisecond precision: every session from before a password change or a disable ends, also
  // after re-enabling; a login right after the change works.
  if (user.sessionsValidAfter && check.issuedAtMs < user.sessionsValidAfter.getTime()) {
    throw unauthenticated("token_revoked", "the password changed or the user was disabled since this token was issued; log in again");
  }
  // The role comes from the database, not the token: a role change takes effect at once.
  return {
    userId: user.id, username: user.username, team: user.team, role: user.role,
    permissions: await permissionsOf(db, user.role), via: "token",
  };
}

/** Every /api route except the explicitly public ones passes through here. */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("Authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw unauthenticated("unauthenticated", "send Authorization: Bearer <session token or API key>");
  const { db, config } = c.var.services;
  await ensureBootstrap(db, config);
  const token = match[1];
  c.set("principal", looksLikeApiKey(token) ? await fromApiKey(db, token) : await fromSessionToken(db, token, config.jwtSecret));
  await next();
});
