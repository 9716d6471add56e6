import { openDb, type Batch, type Db } from "../../db/client.ts";
import { loadRuntimeConfig, type RuntimeConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { openKv, type KvStore } from "./kv.ts";

/**
 * What a request may reach, opened lazily: a health check that never touches
 * Postgres never opens a pool. The pool is closed after the response.
 */
export class Services {
  private cfg?: RuntimeConfig;
  private dbHandle?: ReturnType<typeof openDb>;
  private kvHandle?: KvStore;

  constructor(readonly env: Env) {}

  /** Throws ApiError 503 `misconfigured` when a required secret is missing. */
  get config(): RuntimeConfig {
    return (this.cfg ??= loadRuntimeConfig(this.env));
  }

  get db(): Db {
    this.dbHandle ??= openDb(this.config.databaseUrl, this.config.neonLocalProxy);
    return this.dbHandle.db;
  }

  /** One HTTP round trip running `queries` as one transaction (db/client.ts Batch). */
  get batch(): Batch {
    this.dbHandle ??= openDb(this.config.databaseUrl, this.config.neonLocalProxy);
    return this.dbHandle.batch;
  }

  get kv(): KvStore {
    return (this.kvHandle ??= openKv(this.env));
  }

  async close(): Promise<void> {
    await this.dbHandle?.close().catch(() => {});
  }
}
