/**
 * The Worker's only way to Postgres. Two paths behind one `Db`:
 *  - every statement outside a transaction goes over Neon's SQL-over-HTTP
 *    (`neon()`, drizzle `neon-http`): one HTTP round trip, no connection
 *    set-up and no password handshake (with a Pool that was ~120 ms per
 *    request against the dev stack's SCRAM Postgres: docs/performance.md);
 *  - `db.transaction()` opens the Neon `Pool` over WebSocket, lazily, the
 *    first time a request needs one: interactive transactions (read, decide,
 *    write, append the audit row) need one session.
 * Routes do not choose: they call `db.select()` or `db.transaction()` as
 * before. A Pool may not outlive its request in Workers (I/O is bound to the
 * request), so it is made per request and ended after it.
 *
 * Production may put Cloudflare Hyperdrive in front of the Pool path (pooled,
 * already-authenticated connections near the database): wrangler.toml shows
 * the binding; `openDb(url)` then gets `HYPERDRIVE.connectionString`
 * (docs/performance.md "Hyperdrive").
 */
import { Pool, neon, neonConfig } from "@neondatabase/serverless";
import { drizzle as drizzleHttp, type NeonHttpDatabase } from "drizzle-orm/neon-http";
import { drizzle as drizzlePool, type NeonDatabase } from "drizzle-orm/neon-serverless";
import type * as schema from "./schema.ts";

export type Db = NeonDatabase<typeof schema>;

/**
 * Statements run over HTTP as ONE non-interactive transaction (Neon's
 * `sql.transaction([...])`: one round trip, all or nothing). For writes
 * whose statements need no answer from an earlier one (ids made in the
 * Worker): instance creation (functions/routes/instances.ts).
 */
export type Batch = NeonHttpDatabase<typeof schema>["batch"];

/**
 * Dev only: route the driver through dev/neon-relay (plain ws). The relay logs
 * in to Postgres for the driver as Neon's proxy does (it asks for the password
 * in cleartext), so the driver never runs its pure-JS SCRAM PBKDF2 (~140 ms of
 * CPU per connect). No pipelining: the relay's "tunnel" mode (the driver does
 * SCRAM against a stock Postgres, which a pipelined password breaks) must keep
 * working, so bench/api can measure both modes against one Worker; the relay
 * also accepts the pipelined password of Neon's default (test/dev/neon-relay.test.ts).
 */
function useLocalRelay(relay: string): void {
  neonConfig.wsProxy = (host, port) => `${relay}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
  neonConfig.fetchEndpoint = `http://${relay}/sql`;
}

export interface DbHandle {
  db: Db;
  batch: Batch;
  /** Whether this request opened the Pool (it took a transaction). */
  readonly pooled: boolean;
  close(): Promise<void>;
}

/**
 * The HTTP path holds no I/O object (each query is its own fetch), so one per
 * URL serves every request of the isolate. Drizzle gets no `schema`: nothing
 * uses its relational query API (`db.query.*`), and with a schema every
 * drizzle() walked all tables to build that API's config: ~2 ms of workerd CPU
 * per drizzle() (twice per write request: HTTP and Pool), the largest single
 * JS cost in a profile of instance creation (docs/performance-writes.md).
 */
const httpByUrl = new Map<string, NeonHttpDatabase<typeof schema>>();

export function openDb(databaseUrl: string, localRelay?: string): DbHandle {
  if (localRelay) useLocalRelay(localRelay);
  let http = httpByUrl.get(databaseUrl);
  if (!http) {
    http = drizzleHttp(neon(databaseUrl)) as NeonHttpDatabase<typeof schema>;
    httpByUrl.set(databaseUrl, http);
  }
  const httpDb = http;
  // neon-http's query builder answers exactly as neon-serverless's (same drizzle mappers, the same
  // { rows, rowCount, fields } from execute); only transaction() differs, and that goes to the Pool.
  const overHttp = httpDb as unknown as Db;
  let pool: Pool | undefined;
  let overPool: Db | undefined;
  const pooled = (): Db => {
    if (!overPool) {
      pool = new Pool({ connectionString: databaseUrl, max: 4, connectionTimeoutMillis: 5_000 });
      // An idle client erroring (server restart) must not crash the isolate.
      pool.on("error", () => {});
      overPool = drizzlePool(pool) as unknown as Db;
    }
    return overPool;
  };
  const db = new Proxy(overHttp, {
    get(target, prop, receiver) {
      if (prop === "transaction") return ((run, config) => pooled().transaction(run, config)) satisfies Db["transaction"];
      return Reflect.get(target, prop, receiver);
    },
  });
  return {
    db,
    batch: (queries) => httpDb.batch(queries),
    get pooled() { return pool !== undefined; },
    close: async () => { await pool?.end(); },
  };
}
