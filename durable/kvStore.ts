import { DurableObject } from "cloudflare:workers";
import type { Env } from "../core/env.ts";
import type { KvStoreApi } from "../core/objects.ts";
import { bucketTtlSeconds, type KvOp } from "../core/platform/kv.ts";

/**
 * The Redis stand-in used when no Upstash credentials are configured: a
 * SQLite-backed Durable Object with the few commands core/platform/kv.ts
 * needs. A DO runs one call at a time, so SET NX and INCR are atomic here
 * exactly as in Redis. Expired keys are dropped lazily and by an alarm.
 */
export class KvStoreObject extends DurableObject<Env> implements KvStoreApi {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER)",
    );
  }

  private live(key: string): string | null {
    const row = this.sql.exec<{ value: string; expires_at: number | null }>(
      "SELECT value, expires_at FROM kv WHERE key = ?", key,
    ).toArray()[0];
    if (!row) return null;
    if (row.expires_at !== null && row.expires_at <= Date.now()) {
      this.sql.exec("DELETE FROM kv WHERE key = ?", key);
      return null;
    }
    return row.value;
  }

  private async write(key: string, value: string, ttlSeconds: number | null): Promise<void> {
    const expiresAt = ttlSeconds ? Date.now() + ttlSeconds * 1000 : null;
    this.sql.exec(
      "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
      key, value, expiresAt,
    );
    if (expiresAt !== null) await this.scheduleSweep(expiresAt);
  }

  private async scheduleSweep(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  async get(key: string): Promise<string | null> {
    return this.live(key);
  }

  async set(key: string, value: string, nx: boolean, ttlSeconds: number): Promise<boolean> {
    if (nx && this.live(key) !== null) return false;
    await this.write(key, value, ttlSeconds > 0 ? ttlSeconds : null);
    return true;
  }

  async incr(key: string, ttlSeconds: number): Promise<number> {
    return this.incrBy(key, 1, ttlSeconds);
  }

  async incrBy(key: string, by: number, ttlSeconds: number): Promise<number> {
    const current = this.live(key);
    const n = (current === null ? 0 : Number(current)) + by;
    if (current === null) {
      await this.write(key, String(n), ttlSeconds > 0 ? ttlSeconds : null);
    } else {
      this.sql.exec("UPDATE kv SET value = ? WHERE key = ?", String(n), key);
    }
    return n;
  }

  async del(key: string): Promise<void> {
    this.sql.exec("DELETE FROM kv WHERE key = ?", key);
  }

  /** The bucket is stored as "tokens:lastRefillMs"; one call at a time makes take-and-refill atomic. */
  async take(key: string, perSecond: number, burst: number): Promise<number> {
    const now = Date.now();
    const [storedTokens, storedAt] = (this.live(key) ?? "").split(":").map(Number);
    let tokens = Number.isFinite(storedTokens) && Number.isFinite(storedAt) ? storedTokens! : burst;
    const at = Number.isFinite(storedAt) ? storedAt! : now;
    tokens = Math.min(burst, tokens + (Math.max(0, now - at) * perSecond) / 1000);
    let wait = 0;
    if (tokens >= 1) tokens -= 1;
    else wait = Math.ceil(((1 - tokens) * 1000) / perSecond);
    await this.write(key, `${tokens}:${now}`, bucketTtlSeconds(perSecond, burst));
    return wait;
  }

  /** One call for what a request needs at one point (KvStore.batch): each command as if called alone. */
  async batch(ops: readonly KvOp[]): Promise<(string | number | null)[]> {
    const results: (string | number | null)[] = [];
    for (const o of ops) results.push(o.op === "get" ? this.live(o.key) : await this.take(o.key, o.perSecond, o.burst));
    return results;
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", now);
    const next = this.sql.exec<{ at: number | null }>(
      "SELECT MIN(expires_at) AS at FROM kv WHERE expires_at IS NOT NULL",
    ).one().at;
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }
}
