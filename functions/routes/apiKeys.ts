import { and, desc, eq, isNull } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { apiKeys, type Permission } from "../../db/schema.ts";
import type { AppEnv, Principal } from "../../core/app-env.ts";
import { generateApiKey } from "../auth/apiKeys.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { ACTIONS, RESOURCES, ROLE_RANK, covers, isBuiltinRole } from "../rbac/permissions.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { apiKeyCreatedSchema, apiKeySchema } from "../../protocol/api/access.ts";
import { listOf } from "../../protocol/api/common.ts";
import { markAccessChanged } from "../../core/platform/watcherAccess.ts";
import { forgetPrincipal } from "../../core/platform/principalCache.ts";

const scope = z.strictObject({
  resource: z.enum([...RESOURCES, "*"]),
  action: z.enum([...ACTIONS, "*"]),
});
const createBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  /** Defaults to the caller's role; may only narrow it. */
  role: z.string().min(1).max(100).optional(),
  /** Narrows the key further: it may do only what these AND its owner's current role allow. */
  scopes: z.array(scope).min(1).max(100).optional(),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
const idParam = z.object({ id: z.uuid() });

function assertNoWider(caller: Principal, requested: string): void {
  const ok = requested === caller.role ||
    (isBuiltinRole(requested) && isBuiltinRole(caller.role) && ROLE_RANK[requested] <= ROLE_RANK[caller.role]);
  if (!ok) throw new ApiError(403, "role_too_wide", `an API key cannot have role ${requested}: yours is ${caller.role}`);
}

/** 403 `scope_too_wide` naming each scope the caller's role does not cover (wildcards included). */
function assertScopesWithin(caller: Principal, scopes: readonly Permission[]): void {
  const missing = scopes.filter((s) => !covers(caller.permissions, s));
  if (missing.length > 0) {
    throw new ApiError(403, "scope_too_wide", `an API key cannot hold scopes your role ${caller.role} does not: ${missing.map((m) => `${m.resource}:${m.action}`).join(", ")}`, { missing });
  }
}

const view = (k: typeof apiKeys.$inferSelect) => ({
  id: k.id, name: k.name, prefix: k.prefix, role: k.role, scopes: k.scopes, userId: k.userId,
  createdAt: k.createdAt, expiresAt: k.expiresAt, lastUsedAt: k.lastUsedAt, revokedAt: k.revokedAt,
});

const doc = describe("API keys");

/** Self-service keys for CI: each caller manages their own, shown in full exactly once. */
export const apiKeyRoutes = new Hono<AppEnv>()
  .post("/", doc({
    summary: "Create an API key (shown in full only in this answer)",
    description: "Its role defaults to the caller's and may only narrow it; `scopes` narrow it further. Only a password session may create keys.",
    responses: { 201: apiKeyCreatedSchema },
  }), requirePermission("apikeys", "create"), validate("json", createBody), async (c) => {
    const p = c.var.principal!;
    if (p.via === "api_key") throw new ApiError(403, "api_key_cannot_mint", "log in with a password to create API keys");
    const body = c.req.valid("json");
    const role = body.role ?? p.role;
    assertNoWider(p, role);
    if (body.scopes) assertScopesWithin(p, body.scopes);
    const scopes = body.scopes ?? null;
    const { key, prefix, hash } = await generateApiKey();
    const expiresAt = body.expiresInDays ? new Date(Date.now() + body.expiresInDays * 86_400_000) : null;
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(apiKeys).values({ userId: p.userId, name: body.name, prefix, keyHash: hash, role, scopes, expiresAt }).returning();
      record({ action: "API_KEY_CREATED", resourceType: "api_key", resourceId: created!.id, details: { name: body.name, role, scopes } });
      return created!;
    });
    return c.json({ ...view(row), key }, 201);
  })
  .get("/", doc({ summary: "List the caller's API keys", responses: { 200: listOf(apiKeySchema) } }), requirePermission("apikeys", "read"), async (c) => {
    const rows = await c.var.services.db.select().from(apiKeys)
      .where(eq(apiKeys.userId, c.var.principal!.userId)).orderBy(desc(apiKeys.createdAt)).limit(200);
    return c.json({ items: rows.map(view) });
  })
  .delete("/:id", doc({ summary: "Revoke one of the caller's API keys", responses: { 200: apiKeySchema }, errors: [404] }), requirePermission("apikeys", "delete"), validate("param", idParam), async (c) => {
    const p = c.var.principal!;
    const { id } = c.req.valid("param");
    const revoked = await transact(c, async (tx, record) => {
      const [row] = await tx.update(apiKeys).set({ revokedAt: new Date() })
        .where(and(eq(apiKeys.id, id), eq(apiKeys.userId, p.userId), isNull(apiKeys.revokedAt))).returning();
      if (row) record({ action: "API_KEY_REVOKED", resourceType: "api_key", resourceId: id });
      return row;
    });
    if (!revoked) throw notFound("api_key", id);
    // The key's next request reads the revoked row; streams opened with it close before their next event.
    await forgetPrincipal(c.var.services.kv, { apiKeyHash: revoked.keyHash });
    await markAccessChanged(c.var.services.kv, { apiKeyId: id });
    return c.json(view(revoked));
  });
