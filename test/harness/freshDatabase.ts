import pg from "pg";

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface FreshDatabase {
  url: string;
  /** Drops it again, so CI runs against the machine's Postgres leave nothing behind. */
  drop(): Promise<void>;
}

/**
 * Creates an empty database on an existing server (the machine's Postgres in
 * CI) so a suite never sees another run's rows.
 */
export async function freshDatabase(serverUrl: string, prefix: string): Promise<FreshDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  await onServer(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  // FORCE: a pool the Worker left open must not keep the database alive.
  return { url: url.toString(), drop: () => onServer(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {}) };
}
