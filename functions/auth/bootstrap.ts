import type { Db } from "../../db/client.ts";
import { roles, users } from "../../db/schema.ts";
import type { RuntimeConfig } from "../../core/config.ts";
import { hashPassword } from "../../core/crypto/passwords.ts";
import { BUILTIN_ROLES } from "../rbac/permissions.ts";

/**
 * First start of a database: the built-in roles are inserted and, in the same
 * transaction, the `admin` user from REDFORGE_ADMIN_PASSWORD. "First start"
 * means the roles were not there yet, so a deleted admin is never silently
 * re-created from an environment variable later. Runs once per isolate
 * (retried after a failure); concurrent isolates race safely on the insert.
 */
let done: Promise<void> | undefined;

export function ensureBootstrap(db: Db, cfg: RuntimeConfig): Promise<void> {
  done ??= run(db, cfg).catch((err) => {
    done = undefined;
    throw err;
  });
  return done;
}

async function run(db: Db, cfg: RuntimeConfig): Promise<void> {
  const passwordHash = await hashPassword(cfg.adminPassword);
  await db.transaction(async (tx) => {
    const inserted = await tx.insert(roles)
      .values(Object.entries(BUILTIN_ROLES).map(([name, permissions]) => ({ name, permissions, builtin: true })))
      .onConflictDoNothing()
      .returning({ id: roles.id });
    if (inserted.length === 0) return;
    await tx.insert(users).values({ username: "admin", email: "admin@localhost", passwordHash, role: "admin" }).onConflictDoNothing();
  });
}
