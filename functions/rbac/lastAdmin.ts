/**
 * The fleet must always keep one enabled admin: no request may disable,
 * demote or delete the last one (409 `last_admin`).
 */
import { and, eq, ne, sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { users } from "../../db/schema.ts";
import { ApiError } from "../../core/errors.ts";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
type Row = typeof users.$inferSelect;

export const ADMIN_ROLE = "admin";

// Arbitrary constant naming "who the admins are" among advisory locks.
const ADMIN_SET_LOCK = 7_470_002;

/**
 * Serialises every change that could take away an admin: two admins demoting
 * each other at once must not both pass the count below. One lock, taken
 * before any row lock, so it cannot deadlock with them.
 */
export async function lockAdminSet(tx: Tx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${ADMIN_SET_LOCK})`);
}

/** 409 `last_admin` when `target` is the only enabled admin left (call under lockAdminSet). */
export async function assertAdminRemains(tx: Tx, target: Row): Promise<void> {
  if (target.role !== ADMIN_ROLE || target.disabled) return;
  const [other] = await tx.select({ id: users.id }).from(users)
    .where(and(eq(users.role, ADMIN_ROLE), eq(users.disabled, false), ne(users.id, target.id))).limit(1);
  if (!other) throw new ApiError(409, "last_admin", `${target.username} is the last enabled admin; make another admin first`);
}
