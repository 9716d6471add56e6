import pg from "pg";

/**
 * Creates an empty database on an existing server (the machine's Postgres in
 * CI) so a suite never sees another run's rows. Returns its connection string.
 */
export async function freshDatabase(serverUrl: string, prefix: string): Promise<string> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
