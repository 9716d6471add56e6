import { and, desc, eq, lt, ne, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import type { Db } from "../../db/client.ts";
import { users } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { hashPassword } from "../../core/crypto/passwords.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { transact } from "../middleware/auditTrail.ts";
import { recordRead } from "../middleware/auditRead.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { ADMIN_ROLE, assertAdminRemains, lockAdminSet } from "../rbac/lastAdmin.ts";
import { assertCanGrant, currentPermissions, permissionsForAssignment } from "../rbac/grants.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { userSchema } from "../../protocol/api/access.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { markAccessChanged } from "../../core/platform/watcherAccess.ts";
import { forgetPrincipal } from "../../core/platform/principalCache.ts";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
type Row = typeof users.$inferSelect;

const username = z.string().trim().min(1).max(255).regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, "letters, digits and . _ @ - only");
// Lower-cased so the unique index also catches Alice@x vs alice@x.
const email = z.email().max(255).transform((e) => e.toLowerCase());
const password = z.string().min(12, "at least 12 characters").max(1024);
const roleName = z.string().min(1).max(100);

const createBody = z.strictObject({ username, email, password, role: roleName });
const patchBody = z.strictObject({
  role: roleName.optional(),
  email: email.optional(),
  disabled: z.boolean().optional(),
  password: password.optional(),
}).refine((b) => Object.keys(b).length > 0, "send at least one of role, email, disabled, password");
const listQuery = z.strictObject({
  ...pageQuery,
  role: roleName.optional(),
  disabled: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
});
const idParam = z.object({ id: z.uuid() });

/** Never the password hash. */
const view = (r: Row) => ({
  id: r.id, username: r.username, email: r.email, role: r.role, team: r.team, disabled: r.disabled,
  createdAt: r.createdAt, updatedAt: r.updatedAt, lastLogin: r.lastLogin,
});

/** The target locked for the change; the caller must hold everything the target's role holds (no takeover of wider accounts). */
async function lockTarget(c: import("hono").Context<AppEnv>, tx: Tx, id: string): Promise<Row> {
  const [row] = await tx.select().from(users).where(eq(users.id, id)).for("update").limit(1);
  if (!row) throw notFound("user", id);
  assertCanGrant(c.var.principal!, await currentPermissions(tx, row.role), `changes to ${row.username} (role ${row.role})`);
  return row;
}

const doc = describe("Users");

export const userRoutes = new Hono<AppEnv>()
  .post("/", doc({ summary: "Create a user", responses: { 201: userSchema }, errors: [409] }), requirePermission("users", "create"), validate("json", createBody), async (c) => {
    const body = c.req.valid("json");
    const passwordHash = await hashPassword(body.password);
    const row = await transact(c, async (tx, record) => {
      assertCanGrant(c.var.principal!, await permissionsForAssignment(tx, body.role), `role ${body.role}`);
      const [created] = await tx.insert(users)
        .values({ username: body.username, email: body.email, passwordHash, role: body.role }).onConflictDoNothing().returning();
      if (!created) throw new ApiError(409, "user_exists", "a user with this username or email already exists");
      record({ action: "USER_CREATED", resourceType: "user", resourceId: created.id, details: { username: created.username, email: created.email, role: created.role } });
      return created;
    });
    return c.json(view(row), 201);
  })
  .get("/", doc({ summary: "List users, newest first", responses: { 200: pageOf(userSchema) } }), requirePermission("users", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(users).where(and(
      q.role ? eq(users.role, q.role) : undefined,
      q.disabled !== undefined ? eq(users.disabled, q.disabled) : undefined,
      cursor ? or(lt(users.createdAt, cursor.createdAt), and(eq(users.createdAt, cursor.createdAt), lt(users.id, cursor.id))) : undefined,
    )).orderBy(desc(users.createdAt), desc(users.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    // Who can sign in and with which role: an access review's population, so reading it is on record.
    await recordRead(c, { action: "USERS_LISTED", resourceType: "user", details: { count: items.length, role: q.role ?? null, disabled: q.disabled ?? null, page: q.cursor ? "next" : "first" } });
    return c.json({ items: items.map(view), nextCursor });
  })
  .get("/:id", doc({ summary: "A user", responses: { 200: userSchema }, errors: [404] }), requirePermission("users", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(users).where(eq(users.id, id)).limit(1);
    if (!row) throw notFound("user", id);
    await recordRead(c, { action: "USER_READ", resourceType: "user", resourceId: id });
    return c.json(view(row));
  })
  .patch("/:id", doc({
    summary: "Change a user's role, email, password or disabled flag",
    description: "A new password or disabling ends every session and API key issued before. The last admin cannot be demoted or disabled.",
    responses: { 200: userSchema },
    errors: [404, 409],
  }), requirePermission("users", "update"), validate("param", idParam), validate("json", patchBody), async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const passwordHash = body.password ? await hashPassword(body.password) : undefined;
    const mayRemoveAdmin = (body.role !== undefined && body.role !== ADMIN_ROLE) || body.disabled === true;
    const row = await transact(c, async (tx, record) => {
      if (mayRemoveAdmin) await lockAdminSet(tx);
      const before = await lockTarget(c, tx, id);
      const audit = (action: string, details?: unknown) => record({ action, resourceType: "user", resourceId: id, details: { username: before.username, ...(details ?? {}) } });
      if (body.role !== undefined) {
        assertCanGrant(c.var.principal!, await permissionsForAssignment(tx, body.role), `role ${body.role}`);
        audit("ROLE_ASSIGNED", { from: before.role, to: body.role });
      }
      if (mayRemoveAdmin) await assertAdminRemains(tx, before);
      if (body.disabled !== undefined) audit(body.disabled ? "USER_DISABLED" : "USER_ENABLED");
      if (body.email !== undefined) {
        const [taken] = await tx.select({ id: users.id }).from(users).where(and(eq(users.email, body.email), ne(users.id, id))).limit(1);
        if (taken) throw new ApiError(409, "user_exists", "another user already has this email");
        audit("USER_UPDATED", { fields: ["email"], from: before.email, to: body.email });
      }
      // Who changed it and when; never the password or its hash.
      if (passwordHash) audit("PASSWORD_CHANGED");
      const [updated] = await tx.update(users).set({
        ...(body.role !== undefined ? { role: body.role } : {}),
        ...(body.email !== undefined ? { email: body.email } : {}),
        ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
        // A new password ends every session and API key issued under the old one; so does
        // disabling, so re-enabling the user does not bring old keys back.
        ...(passwordHash ? { passwordHash } : {}),
        ...(passwordHash || body.disabled === true ? { sessionsValidAfter: new Date() } : {}),
        updatedAt: new Date(),
      }).where(eq(users.id, id)).returning();
      return updated!;
    });
    // The next request of this user reads the row just committed (role, disabled, sessions-valid-after).
    await forgetPrincipal(c.var.services.kv, { userId: id });
    // Whatever this user's open streams were allowed to see may have changed: they close before their next event.
    if (body.role !== undefined || body.disabled === true || passwordHash) await markAccessChanged(c.var.services.kv, { userId: id });
    return c.json(view(row));
  })
  .delete("/:id", doc({ summary: "Delete a user (their API keys go too)", responses: { 204: null }, errors: [404, 409] }), requirePermission("users", "delete"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    await transact(c, async (tx, record) => {
      await lockAdminSet(tx);
      const target = await lockTarget(c, tx, id);
      await assertAdminRemains(tx, target);
      // API keys go with the user (FK cascade); audit rows keep the id as plain text.
      await tx.delete(users).where(eq(users.id, id));
      record({ action: "USER_DELETED", resourceType: "user", resourceId: id, details: { username: target.username, role: target.role } });
    });
    await forgetPrincipal(c.var.services.kv, { userId: id });
    await markAccessChanged(c.var.services.kv, { userId: id });
    return c.body(null, 204);
  });
