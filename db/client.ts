/**
 * The Worker's only way to Postgres: the Neon driver's Pool over WebSocket,
 * as in production. A Pool may not outlive its request in Workers (I/O is
 * bound to the request), so one is made per request and ended after it.
 */
import { Pool, neonConfig } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import * as schema from "./schema.ts";

export type Db = NeonDatabase<typeof schema>;

/**
 * Dev only: route the driver through dev/neon-relay (plain ws, no pipelining —
 * pipelined connect fails against SCRAM auth on a stock Postgres; FACTS.md).
 */
function useLocalRelay(relay: string): void {
  neonConfig.wsProxy = (host, port) => `${relay}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
  neonConfig.fetchEndpoint = `http://${relay}/sql`;
}

export function openDb(databaseUrl: string, localRelay?: string): { db: Db; close(): Promise<void> } {
  if (localRelay) useLocalRelay(localRelay);
  const pool = new Pool({ connectionString: databaseUrl, max: 4, connectionTimeoutMillis: 5_000 });
  // An idle client erroring (server restart) must not crash the isolate.
  pool.on("error", () => {});
  return { db: drizzle(pool, { schema }), close: () => pool.end() };
}
