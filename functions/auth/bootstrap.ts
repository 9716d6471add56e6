import { count } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { roles, users } from "../../db/schema.ts";
import type { RuntimeConfig } from "../config.ts";
import { hashPassword } from "../crypto/passwords.ts";
import { BUILTIN_ROLES } from "../rbac/permissions.ts";

/**
 * First start: the built-in roles exist and, while there are no users at all,
 * an `admin` is created from REDFORGE_ADMIN_PASSWORD. Runs once per isolate
 * (retried after a failure); inserts are idempotent across isolates.
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
  await db.insert(roles)
    .values(Object.entries(BUILTIN_ROLES).map(([name, permissions]) => ({ name, permissions, builtin: true })))
    .onConflictDoNothing();
  const [row] = await db.select({ n: count() }).from(users);
  if ((row?.n ?? 0) > 0) return;
  await db.insert(users).values({
    username: "admin",
    email: "admin@localhost",
    passwordHash: await hashPassword(cfg.adminPassword),
    role: "admin",
  }).onConflictDoNothing();
}
