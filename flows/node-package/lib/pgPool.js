/**
 * One node-postgres pool per connection string for the whole Node-RED
 * process (storage and memory nodes share it; it outlives redeploys), and
 * the SQL identifier rules for the tables those nodes create.
 * `pg` is bundled with this package (bundleDependencies), so an instance
 * installs it offline from the tarball.
 */
"use strict";

const { StoreError, fromPgError } = require("./storeError.js");

const pools = new Map();

function pgModule() {
  try {
    return require("pg");
  } catch (err) {
    throw new StoreError("store_unavailable", `the pg module is not installed with the RedForge node package (${err.message})`);
  }
}

/** The shared pool for `url` (created on first use). Idle clients that fail are logged, not thrown. */
function poolFor(url, onError) {
  if (!url) throw new StoreError("store_unavailable", "no Postgres connection string: set STORE_POSTGRES_URL / MEMORY_POSTGRES_URL or DATABASE_URL");
  let pool = pools.get(url);
  if (!pool) {
    const { Pool } = pgModule();
    pool = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000, query_timeout: 30_000 });
    pool.on("error", (err) => onError && onError(err));
    pools.set(url, pool);
  }
  return pool;
}

/** Closes every pool (tests; Node-RED keeps them for the process' life). */
async function closePools() {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.end().catch(() => {})));
}

/**
 * A table name from configuration as a quoted SQL identifier: `name` or
 * `schema.name`, lower-case letters, digits and underscores only (it is
 * spliced into DDL, so nothing else is accepted).
 */
function tableIdent(name) {
  const m = /^(?:([a-z_][a-z0-9_]{0,62})\.)?([a-z_][a-z0-9_]{0,62})$/.exec(String(name || ""));
  if (!m) throw new StoreError("store_rejected", `table name ${JSON.stringify(name)} must be [schema.]name of lower-case letters, digits and _`);
  return { schema: m[1], table: m[2], sql: m[1] ? `"${m[1]}"."${m[2]}"` : `"${m[2]}"`, bare: m[2] };
}

/** A store kept in one Postgres table of its own (vectors, memory): its identifier and queries through the shared pool. */
class PostgresTable {
  constructor({ url, table, onError }, defaultTable) {
    this.url = url;
    this.ident = tableIdent(table || defaultTable);
    this.onError = onError;
  }

  get backend() {
    return "postgres";
  }

  /** A Postgres error becomes the primitive's store error (`what` says which operation). */
  async query(sql, params, what) {
    try {
      return await poolFor(this.url, this.onError).query(sql, params);
    } catch (err) {
      throw fromPgError(err, what);
    }
  }
}

module.exports = { poolFor, closePools, tableIdent, PostgresTable };
