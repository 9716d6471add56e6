/**
 * The narrow Redis surface the control plane needs (counters, nonces, cache).
 * Production: Upstash Redis over REST. Without Upstash credentials: the
 * KvStoreObject Durable Object, same semantics. Callers never know which.
 */
import { Redis } from "@upstash/redis/cloudflare";
import type { Env } from "../env.ts";
import type { KvOp } from "../objects.ts";

export interface SetOptions {
  /** Only set when the key does not exist (Redis SET NX). */
  nx?: boolean;
  /** Expire after this many seconds (Redis EX). */
  ex?: number;
}

/** One command of a batch (KvStore.batch): what a request needs from the KV at one point, in one round trip. */
// Defined beside the KV object's interface (core/objects.ts), which env.ts imports: defining it here
// would close a cycle env.ts → objects.ts → kv.ts → env.ts.
export type { KvOp };

/** A batch's answers, one per command in order: `get` as get(), `take` as take(). */
export type KvResults<T extends readonly KvOp[]> = { -readonly [I in keyof T]: T[I] extends { op: "get" } ? string | null : number };

export interface KvStore {
  readonly backend: "upstash" | "durable-object";
  get(key: string): Promise<string | null>;
  /** Returns false when `nx` was asked and the key already existed. */
  set(key: string, value: string, opts?: SetOptions): Promise<boolean>;
  /** Increments and returns the new value; `ttlSeconds` is applied when the key is created. */
  incr(key: string, ttlSeconds?: number): Promise<number>;
  /** Adds `n` (Redis INCRBY) and returns the new value; `ttlSeconds` is applied when the key is created. */
  incrBy(key: string, n: number, ttlSeconds?: number): Promise<number>;
  del(key: string): Promise<void>;
  /**
   * Token bucket (capacity `burst`, refilled at `perSecond`): takes one token atomically and
   * answers 0, or, when the bucket is empty, the milliseconds until the next token (nothing taken).
   */
  take(key: string, perSecond: number, burst: number): Promise<number>;
  /**
   * Several commands in one round trip, each with exactly its own command's semantics (a take is as
   * atomic as take()); not a transaction across keys. The round trip is one only when the keys live
   * together: on the Durable-Object backend keys spread over shards, so keys meant to be batched
   * share a hash tag (see shardOf); keys on different shards cost one call per shard, in parallel.
   */
  batch<const T extends readonly KvOp[]>(ops: T): Promise<KvResults<T>>;
  ping(): Promise<void>;
}

/** Seconds after which an untouched bucket is full again, so its key can go. */
export const bucketTtlSeconds = (perSecond: number, burst: number) => Math.ceil(burst / perSecond) + 1;

// Redis's own clock (TIME), so isolates with skewed clocks share one bucket correctly.
const TAKE_SCRIPT = `
local rate, burst, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(v[1]), tonumber(v[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ttl)
return wait`;

class UpstashKv implements KvStore {
  readonly backend = "upstash" as const;
  constructor(private readonly redis: Redis) {}
  get(key: string) {
    return this.redis.get<string>(key);
  }
  async set(key: string, value: string, opts: SetOptions = {}) {
    const res = opts.nx
      ? await this.redis.set(key, value, opts.ex ? { nx: true, ex: opts.ex } : { nx: true })
      : await this.redis.set(key, value, opts.ex ? { ex: opts.ex } : undefined);
    return res === "OK";
  }
  async incr(key: string, ttlSeconds?: number) {
    // One round trip; EXPIRE NX keeps the window fixed from the first increment.
    const p = this.redis.multi().incr(key);
    if (ttlSeconds) p.expire(key, ttlSeconds, "NX");
    const [n] = await p.exec<[number, ...unknown[]]>();
    return n;
  }
  async incrBy(key: string, n: number, ttlSeconds?: number) {
    const p = this.redis.multi().incrby(key, n);
    if (ttlSeconds) p.expire(key, ttlSeconds, "NX");
    const [total] = await p.exec<[number, ...unknown[]]>();
    return total;
  }
  async del(key: string) {
    await this.redis.del(key);
  }
  async take(key: string, perSecond: number, burst: number) {
    return Number(await this.redis.eval(TAKE_SCRIPT, [key], [perSecond, burst, bucketTtlSeconds(perSecond, burst)]));
  }
  async batch<const T extends readonly KvOp[]>(ops: T): Promise<KvResults<T>> {
    // One REST request (a pipeline): each command runs as it would alone.
    const p = this.redis.pipeline();
    for (const o of ops) {
      if (o.op === "get") p.get(o.key);
      else p.eval(TAKE_SCRIPT, [o.key], [o.perSecond, o.burst, bucketTtlSeconds(o.perSecond, o.burst)]);
    }
    const raw = await p.exec<unknown[]>();
    return ops.map((o, i) => (o.op === "get" ? (raw[i] as string | null) ?? null : Number(raw[i]))) as KvResults<T>;
  }
  async ping() {
    await this.redis.ping();
  }
}

// Keys spread over a few objects so one hot counter does not serialise every nonce check.
const DO_SHARDS = 8;

/**
 * The shard of a key: a hash of the whole key, or, as in Redis Cluster, of its hash tag (the text
 * inside the first non-empty `{...}`) when it has one, so keys that a request batches can be put
 * on one shard: `rl:user:{principal:v1:user:<id>}` lives with `principal:v1:user:<id>`.
 */
export function shardOf(key: string): string {
  const open = key.indexOf("{");
  const close = open < 0 ? -1 : key.indexOf("}", open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let h = 2166136261;
  for (let i = 0; i < hashed.length; i++) h = Math.imul(h ^ hashed.charCodeAt(i), 16777619);
  return `kv-${(h >>> 0) % DO_SHARDS}`;
}

class DurableObjectKv implements KvStore {
  readonly backend = "durable-object" as const;
  constructor(private readonly ns: Env["KV_STORE"]) {}
  private stub(key: string) {
    return this.ns.get(this.ns.idFromName(shardOf(key)));
  }
  async batch<const T extends readonly KvOp[]>(ops: T): Promise<KvResults<T>> {
    // One call per shard, all at once; a shard runs its commands in order with no other call between them.
    const byShard = new Map<string, number[]>();
    ops.forEach((o, i) => {
      const shard = shardOf(o.key);
      byShard.set(shard, [...(byShard.get(shard) ?? []), i]);
    });
    const results: (string | number | null)[] = new Array(ops.length);
    await Promise.all([...byShard].map(async ([shard, indices]) => {
      const answers = await this.ns.get(this.ns.idFromName(shard)).batch(indices.map((i) => ops[i]!));
      indices.forEach((i, n) => { results[i] = answers[n]!; });
    }));
    return results as KvResults<T>;
  }
  get(key: string) {
    return this.stub(key).get(key);
  }
  set(key: string, value: string, opts: SetOptions = {}) {
    return this.stub(key).set(key, value, opts.nx ?? false, opts.ex ?? 0);
  }
  incr(key: string, ttlSeconds?: number) {
    return this.stub(key).incr(key, ttlSeconds ?? 0);
  }
  incrBy(key: string, n: number, ttlSeconds?: number) {
    return this.stub(key).incrBy(key, n, ttlSeconds ?? 0);
  }
  async del(key: string) {
    await this.stub(key).del(key);
  }
  take(key: string, perSecond: number, burst: number) {
    return this.stub(key).take(key, perSecond, burst);
  }
  async ping() {
    await this.stub("ping").get("__ping__");
  }
}

export function openKv(env: Env): KvStore {
  if (env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN) {
    return new UpstashKv(new Redis({
      url: env.UPSTASH_REDIS_REST_URL,
      token: env.UPSTASH_REDIS_REST_TOKEN,
      automaticDeserialization: false,
      retry: { retries: 2, backoff: (n) => 50 * 2 ** n },
    }));
  }
  return new DurableObjectKv(env.KV_STORE);
}
