import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { openKv, shardOf } from "../../core/platform/kv.ts";
import type { KvStoreObject } from "../../durable/kvStore.ts";

// KvStore.batch: what authenticate uses to read a user's cached principal and take from the user's
// rate-limit bucket in one round trip (docs/performance-writes.md, session 10).
const relay = inject("upstashRelay");
const backends = [
  { name: "durable-object", env: { ...env, UPSTASH_REDIS_REST_URL: undefined } },
  { name: "upstash", env: { ...env, UPSTASH_REDIS_REST_URL: relay.url, UPSTASH_REDIS_REST_TOKEN: relay.token }, skip: !relay.url },
];

describe.each(backends)("KV batch: $name", (backend) => {
  const kv = openKv(backend.env);
  const it_ = backend.skip ? it.skip : it;

  it_("answers each command in order, as the command alone would", async () => {
    const id = crypto.randomUUID();
    const entry = `rf-test:entry:${id}`, bucket = `rf-test:bucket:{rf-test:entry:${id}}`, other = `rf-test:other:${id}`;
    await kv.set(entry, "cached", { ex: 60 });
    const answers = await kv.batch([{ op: "get", key: entry }, { op: "take", key: bucket, perSecond: 0.01, burst: 2 }, { op: "get", key: other }]);
    expect(answers).toEqual(["cached", 0, null]);
    const [, second] = await kv.batch([{ op: "get", key: entry }, { op: "take", key: bucket, perSecond: 0.01, burst: 2 }]);
    expect(second).toBe(0);
    // The bucket is empty now: the batch's take says how long to wait, exactly as take() does.
    const [, third] = await kv.batch([{ op: "get", key: entry }, { op: "take", key: bucket, perSecond: 0.01, burst: 2 }]);
    expect(third).toBeGreaterThan(0);
    expect(third).toBeLessThanOrEqual(100_000);
    expect(await kv.take(bucket, 0.01, 2)).toBeGreaterThan(0);
    await kv.del(entry);
  });

  it_("takes from a bucket exactly under concurrency, batched and alone alike", async () => {
    const id = crypto.randomUUID();
    const entry = `rf-test:entry:${id}`, bucket = `rf-test:bucket:{rf-test:entry:${id}}`;
    const waits = await Promise.all(Array.from({ length: 16 }, (_, i) => i % 2
      ? kv.take(bucket, 0.01, 10)
      : kv.batch([{ op: "get", key: entry }, { op: "take", key: bucket, perSecond: 0.01, burst: 10 }]).then(([, w]) => w)));
    expect(waits.filter((w) => w === 0)).toHaveLength(10);
    expect(waits.filter((w) => w > 0)).toHaveLength(6);
  });
});

describe("KV hash tags (the Durable-Object backend's shards)", () => {
  it("a key tagged {k} lives on k's shard; untagged keys and empty tags hash the whole key", async () => {
    for (let i = 0; i < 50; i++) {
      const k = `principal:v1:user:${crypto.randomUUID()}`;
      expect(shardOf(`rl:user:{${k}}`)).toBe(shardOf(k));
    }
    const spread = new Set(Array.from({ length: 64 }, () => shardOf(`rl:user:{}${crypto.randomUUID()}`)));
    expect(spread.size).toBeGreaterThan(1);
  });

  it("a batch of tagged keys is stored by the one shard the tag names", async () => {
    const kv = openKv({ ...env, UPSTASH_REDIS_REST_URL: undefined });
    const entry = `principal:v1:user:${crypto.randomUUID()}`;
    const bucket = `rl:user:{${entry}}`;
    await kv.set(entry, "{}", { ex: 60 });
    await kv.batch([{ op: "get", key: entry }, { op: "take", key: bucket, perSecond: 1, burst: 5 }]);
    const stub = env.KV_STORE.get(env.KV_STORE.idFromName(shardOf(entry)));
    const keys = await runInDurableObject(stub, (_obj: KvStoreObject, state) =>
      state.storage.sql.exec<{ key: string }>("SELECT key FROM kv WHERE key IN (?, ?) ORDER BY key", entry, bucket).toArray().map((r) => r.key));
    expect(keys.sort()).toEqual([entry, bucket].sort());
  });
});
