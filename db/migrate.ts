/**
 * Applies the drizzle-kit migrations in db/migrations. Used by `npm run
 * db:migrate` (DATABASE_URL), by `npm start` and by the test harnesses, so every
 * database the Worker sees was shaped the same way.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate as runMigrations } from "drizzle-orm/node-postgres/migrator";

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");

export async function migrate(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    // drizzle logs NOTICEs ("schema already exists") through pg; keep start-up output clean.
    client.on("notice", () => {});
    await runMigrations(drizzle(client), { migrationsFolder });
  } finally {
    await client.end();
  }
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error("db:migrate: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/redforge)");
    process.exit(1);
  }
  migrate(url).then(
    () => console.log("db:migrate: schema is up to date"),
    (err: Error) => { console.error(`db:migrate failed: ${err.message}`); process.exit(1); },
  );
}
