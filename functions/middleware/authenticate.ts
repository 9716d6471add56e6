import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import type { Db } from "../../db/client.ts";
import { apiKeys, roles, users, type Permission } from "../../db/schema.ts";
import type { AppEnv, Principal } from "../../core/app-env.ts";
import type { KvStore } from "../../core/platform/kv.ts";
import { cachedPrincipalPart, cachedPrincipalPartWith } from "../../core/platform/principalCache.ts";
import { hashApiKey, looksLikeApiKey } from "../auth/apiKeys.ts";
import { ensureBootstrap } from "../auth/bootstrap.ts";
import { verifySessionToken } from "../auth/tokens.ts";
import { ApiError } from "../../core/errors.ts";
import { BUILTIN_ROLES, ROLE_RANK, intersect, isBuiltinRole } from "../rbac/permissions.ts";
import { principalTake } from "./rateLimit.ts";

// Built once: a zod schema built per request was ~1 % of the Worker's samples (docs/performance-writes.md "Session 11").
const userIdSchema = z.uuid();

const unauthenticated = (code: string, message: string) =>
  new ApiError(401, code, message, undefined, { "WWW-Authenticate": 'Bearer realm="redforge"' });

export async function permissionsOf(db: Db, role: string): Promise<Permission[]> {
  if (isBuiltinRole(role)) return BUILTIN_ROLES[role];
  const [row] = await db.select({ permissions: roles.permissions }).from(roles).where(eq(roles.name, role)).limit(1);
  return row?.permissions ?? [];
}

/** The user fields a principal is made of (dates as epoch ms: they travel through the KV as JSON). */
interface UserState {
  id: string;
  username: string;
  team: string;
  role: string;
  disabled: boolean;
  sessionsValidAfterMs: number | null;
}

/** An API key's fields a principal is made of; only live (unrevoked) keys are cached. */
interface KeyState {
  id: string;
  userId: string;
  role: string;
  scopes: Permission[] | null;
  createdAtMs: number;
  expiresAtMs: number | null;
  lastUsedAtMs: number | null;
}

// lastUsedAt is written when a key's cache entry is filled, so it is exact to the cache's TTL (a minute),
// not a write per request.
const ms = (d: Date | null) => (d ? d.getTime() : null);

const loadUserState = (db: Db, userId: string) => async (): Promise<UserState | undefined> => {
  const [u] = await db.select().from(users).where(eq(users.id, userId)).limit(1);
  return u && { id: u.id, username: u.username, team: u.team, role: u.role, disabled: u.disabled, sessionsValidAfterMs: ms(u.sessionsValidAfter) };
};

function userState(kv: KvStore, db: Db, userId: string): Promise<UserState | undefined> {
  return cachedPrincipalPart(kv, { userId }, loadUserState(db, userId));
}

/** A role's permissions: built-in roles from the table in code, custom roles from the KV or Postgres. */
async function rolePermissions(kv: KvStore, db: Db, role: string): Promise<Permission[]> {
  if (isBuiltinRole(role)) return BUILTIN_ROLES[role];
  return (await cachedPrincipalPart(kv, { role }, async () => permissionsOf(db, role))) ?? [];
}

/** An API key never acts with more than its owner has now (a demoted owner demotes the key). */
function narrower(keyRole: string, ownerRole: string): string {
  if (isBuiltinRole(keyRole) && isBuiltinRole(ownerRole)) return ROLE_RANK[keyRole] <= ROLE_RANK[ownerRole] ? keyRole : ownerRole;
  return keyRole === ownerRole ? keyRole : "viewer";
}

async function fromApiKey(kv: KvStore, db: Db, key: string): Promise<Principal> {
  const apiKeyHash = await hashApiKey(key);
  const k = await cachedPrincipalPart<KeyState>(kv, { apiKeyHash }, async () => {
    const [row] = await db.select().from(apiKeys).where(and(eq(apiKeys.keyHash, apiKeyHash), isNull(apiKeys.revokedAt))).limit(1);
    if (!row) return undefined;
    const now = new Date();
    await db.update(apiKeys).set({ lastUsedAt: now }).where(eq(apiKeys.id, row.id));
    return { id: row.id, userId: row.userId, role: row.role, scopes: row.scopes, createdAtMs: row.createdAt.getTime(), expiresAtMs: ms(row.expiresAt), lastUsedAtMs: now.getTime() };
  });
  const user = k && await userState(kv, db, k.userId);
  if (!k || !user || user.disabled || (k.expiresAtMs !== null && k.expiresAtMs <= Date.now())) {
    throw unauthenticated("invalid_api_key", "API key is unknown, revoked, expired, or its owner is disabled");
  }
  // A password change ends every key minted under the old password, as it ends sessions.
  if (user.sessionsValidAfterMs !== null && k.createdAtMs < user.sessionsValidAfterMs) {
    throw unauthenticated("invalid_api_key", "the owner's password changed or the owner was disabled since this key was created; create a new key");
  }
  const role = narrower(k.role, user.role);
  // Exactly what the key's role, its scopes and the owner's role as it stands now all allow.
  const [keyRole, ownerRole] = await Promise.all([rolePermissions(kv, db, k.role), rolePermissions(kv, db, user.role)]);
  let permissions = intersect(keyRole, ownerRole);
  if (k.scopes) permissions = intersect(permissions, k.scopes);
  return {
    userId: user.id, username: user.username, team: user.team, role,
    permissions, via: "api_key", apiKeyId: k.id,
  };
}

/**
 * `take` is the user's rate-limit take (middleware/rateLimit.ts): it rides the user-state read's KV
 * round trip. Its answer (undefined when the round trip failed or no take was asked) goes to
 * limitByPrincipal, which takes by itself when there is none.
 */
async function fromSessionToken(
  kv: KvStore, db: Db, token: string, secret: string, take: (userId: string) => ReturnType<typeof principalTake>,
): Promise<{ principal: Principal; waitMs: number | undefined }> {
  const check = await verifySessionToken(token, secret);
  if (!check.ok) {
    throw check.reason === "expired"
      ? unauthenticated("token_expired", "session token has expired; log in again")
      : unauthenticated("invalid_token", "bearer token is not valid");
  }
  // Signed by us but not naming a user id (an old or foreign token): not a caller, not bad input.
  if (!userIdSchema.safeParse(check.userId).success) throw unauthenticated("invalid_token", "bearer token is not valid");
  const bucket = take(check.userId);
  const { value: user, alongside } = await cachedPrincipalPartWith(kv, { userId: check.userId }, loadUserState(db, check.userId), bucket ? [bucket] : []);
  if (!user || user.disabled) throw unauthenticated("invalid_token", "the token's user no longer exists or is disabled");
  // Millisecond precision: every session from before a password change or a disable ends, also
  // after re-enabling; a login right after the change works.
  if (user.sessionsValidAfterMs !== null && check.issuedAtMs < user.sessionsValidAfterMs) {
    throw unauthenticated("token_revoked", "the password changed or the user was disabled since this token was issued; log in again");
  }
  // The role as it stands now (the KV entry is replaced on every change): a role change takes effect at once.
  const principal: Principal = {
    userId: user.id, username: user.username, team: user.team, role: user.role,
    permissions: await rolePermissions(kv, db, user.role), via: "token",
  };
  return { principal, waitMs: alongside?.[0] };
}

function authenticator(opts: { principalTake: boolean }) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header("Authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1]) throw unauthenticated("unauthenticated", "send Authorization: Bearer <session token or API key>");
    const { db, kv, config } = c.var.services;
    await ensureBootstrap(db, config);
    const token = match[1];
    if (looksLikeApiKey(token)) {
      c.set("principal", await fromApiKey(kv, db, token));
    } else {
      const take = (userId: string) => (opts.principalTake ? principalTake(c.env, { userId }) : null);
      const { principal, waitMs } = await fromSessionToken(kv, db, token, config.jwtSecret, take);
      c.set("principal", principal);
      if (waitMs !== undefined) c.set("principalWaitMs", waitMs);
    }
    await next();
  });
}

/** Authentication alone: for routes that answer before the per-principal rate limit (GET /api/auth/me, /metrics, /ws). */
export const authenticate = authenticator({ principalTake: false });

/**
 * Every /api route except the explicitly public ones passes through here, then limitByPrincipal:
 * a session's take from its user's bucket rides the user-state read (one KV round trip, not two).
 */
export const authenticateThenLimit = authenticator({ principalTake: true });
