/**
 * One migrated Postgres cluster per test run, copied into each integration
 * stack's state dir. Without it every stack runs initdb (bootstrap, post-
 * bootstrap, fsync of the new cluster) and every migration; with ~60 stacks
 * per `npm test` that was minutes of CPU on the 2-core machine. A copy is a
 * cluster initdb would have produced with the migrations applied, so the
 * stack's own `migrate()` finds nothing to do, and a suite still gets a
 * server and database of its own.
 *
 * The node layer's global setup (test/node.globalSetup.ts) makes the template
 * and names it in REDFORGE_TEST_PG_TEMPLATE; without that variable (benches,
 * scripts importing the harness) stacks initialise their own cluster as before.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { migrate } from "../../db/migrate.ts";
import { loadConfig } from "../../dev/config.ts";
import { freePort } from "../../dev/ports.ts";
import { startEmbeddedPostgres } from "../../dev/postgres.ts";

export const PG_TEMPLATE_ENV = "REDFORGE_TEST_PG_TEMPLATE";

export interface PgTemplate {
  /** The cluster's data dir (stopped cleanly, so no postmaster.pid). */
  dataDir: string;
  remove(): Promise<void>;
}

/** initdb + migrations once, then a clean shutdown: what every stack would otherwise do itself. */
export async function createPgTemplate(): Promise<PgTemplate> {
  const cfg = loadConfig();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pg-template-"));
  // As root, embedded Postgres runs as "postgres", which must be able to enter the dir.
  await fs.chmod(root, 0o755);
  const dataDir = path.join(root, "postgres");
  const remove = () => fs.rm(root, { recursive: true, force: true });
  try {
    const pg = await startEmbeddedPostgres({ ...cfg, stateDir: root }, { dataDir, port: await freePort() });
    try {
      await migrate(pg.connectionString);
    } finally {
      await pg.close();
    }
    // Test clusters need no durability across an OS crash: no fsync on commit or checkpoint (a
    // killed Postgres process loses nothing either way; the OS still has its writes). On the
    // loaded 2-core machine an fsync per commit and per shutdown checkpoint was noticeable.
    await fs.appendFile(path.join(dataDir, "postgresql.conf"),
      "\n# test/harness/pgTemplate.ts: a throwaway test cluster\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
  } catch (err) {
    await remove();
    throw err;
  }
  return { dataDir, remove };
}

/**
 * Copies the run's template cluster to `${stateDir}/postgres`, where the
 * stack's embedded Postgres looks for its data. `cp -a` keeps owner and modes:
 * as root the cluster belongs to the "postgres" user and must stay 0700.
 * Returns false (and copies nothing) when no template was made for this run.
 */
export async function seedPostgresFromTemplate(stateDir: string): Promise<boolean> {
  const template = process.env[PG_TEMPLATE_ENV];
  if (!template) return false;
  await promisify(execFile)("cp", ["-a", template, path.join(stateDir, "postgres")]);
  return true;
}
