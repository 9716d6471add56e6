import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { canonicalJson } from "../../db/auditChain.ts";
import { hashPassword, verifyPassword } from "../../core/crypto/passwords.ts";
import { open, seal } from "../../core/crypto/secretBox.ts";
import { openKv } from "../../core/platform/kv.ts";
import type { KvStoreObject } from "../../durable/kvStore.ts";

const relay = inject("upstashRelay");
const backends = [
  { name: "durable-object", env: { ...env, UPSTASH_REDIS_REST_URL: undefined } },
  { name: "upstash", env: { ...env, UPSTASH_REDIS_REST_URL: relay.url, UPSTASH_REDIS_REST_TOKEN: relay.token }, skip: !relay.url },
];

// One contract, both implementations: the Upstash client through the relay
// (when a redis-server is reachable) and the Durable-Object stand-in.
describe.each(backends)("KV store contract: $name", (backend) => {
  const kv = openKv(backend.env);
  const it_ = backend.skip ? it.skip : it;

  it_("reports its backend", () => expect(kv.backend).toBe(backend.name));

  it_("SET NX admits exactly one writer", async () => {
    const key = `rf-test:nonce:${crypto.randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 10 }, () => kv.set(key, "1", { nx: true, ex: 300 })));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await kv.get(key)).toBe("1");
    await kv.del(key);
    expect(await kv.get(key)).toBeNull();
  });

  it_("INCR counts atomically and ping answers", async () => {
    const key = `rf-test:ctr:${crypto.randomUUID()}`;
    await Promise.all(Array.from({ length: 25 }, () => kv.incr(key, 60)));
    expect(await kv.get(key)).toBe("25");
    await kv.ping();
    await kv.del(key);
  });

  it_("INCRBY adds atomically (the daily LLM token counter)", async () => {
    const key = `rf-test:tokens:${crypto.randomUUID()}`;
    const totals = await Promise.all(Array.from({ length: 10 }, (_, i) => kv.incrBy(key, i + 1, 60)));
    expect(Math.max(...totals)).toBe(55);
    expect(await kv.get(key)).toBe("55");
    await kv.del(key);
  });

  it_("TAKE (token bucket) hands parallel callers exactly the burst, then says when the next token comes", async () => {
    // One token per 100 s: however slow the machine, no token refills during the test.
    const key = `rf-test:bucket:${crypto.randomUUID()}`;
    const waits = await Promise.all(Array.from({ length: 12 }, () => kv.take(key, 0.01, 8)));
    expect(waits.filter((w) => w === 0)).toHaveLength(8);
    for (const w of waits.filter((w) => w !== 0)) {
      expect(w).toBeGreaterThan(0);
      expect(w).toBeLessThanOrEqual(100_000);
    }
    // Refill: whatever the bucket says to wait, a token is there after that wait (no assumption about speed).
    const fast = `rf-test:bucket:${crypto.randomUUID()}`;
    let wait = 0;
    for (let i = 0; i < 10 && wait === 0; i++) wait = await kv.take(fast, 20, 1);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(50);
    await new Promise((r) => setTimeout(r, wait + 20));
    expect(await kv.take(fast, 20, 1)).toBe(0);
  });

  it_("a key set with EX expires", async () => {
    const key = `rf-test:exp:${crypto.randomUUID()}`;
    const setAt = Date.now();
    await kv.set(key, "v", { ex: 1 });
    const read = await kv.get(key);
    // Only a read inside the second can expect the value: on a loaded machine the read may come later.
    if (Date.now() - setAt < 900) expect(read).toBe("v");
    await new Promise((r) => setTimeout(r, 2100));
    expect(await kv.get(key)).toBeNull();
  });
});

describe("Durable-Object KV store (the Redis stand-in)", () => {
  const kv = openKv({ ...env, UPSTASH_REDIS_REST_URL: undefined });

  it("SET NX admits exactly one writer", async () => {
    const key = `nonce:${crypto.randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 10 }, () => kv.set(key, "1", { nx: true, ex: 300 })));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await kv.get(key)).toBe("1");
  });

  it("INCR counts atomically", async () => {
    const key = `ctr:${crypto.randomUUID()}`;
    await Promise.all(Array.from({ length: 25 }, () => kv.incr(key, 60)));
    expect(await kv.get(key)).toBe("25");
  });

  it("expired keys disappear, and the alarm sweeps them", async () => {
    const key = `short:${crypto.randomUUID()}`;
    expect(kv.backend).toBe("durable-object");
    const setAt = Date.now();
    await kv.set(key, "v", { ex: 1 });
    const read = await kv.get(key);
    if (Date.now() - setAt < 900) expect(read).toBe("v");
    await new Promise((r) => setTimeout(r, 1100));
    expect(await kv.get(key)).toBeNull();
    // A key nobody reads again is still removed by the alarm.
    const other = `short:${crypto.randomUUID()}`;
    await kv.set(other, "v", { ex: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    for (let s = 0; s < 8; s++) {
      const stub = env.KV_STORE.get(env.KV_STORE.idFromName(`kv-${s}`));
      await runDurableObjectAlarm(stub);
      const rows = await runInDurableObject(stub, (_obj: KvStoreObject, state) =>
        state.storage.sql.exec("SELECT count(*) AS n FROM kv WHERE key = ?", other).one().n);
      expect(rows).toBe(0);
    }
  });
});

describe("crypto", () => {
  it("PBKDF2 password hashes verify, are salted, and reject a wrong password", async () => {
    const a = await hashPassword("s3cret");
    const b = await hashPassword("s3cret");
    expect(a).not.toBe(b);
    expect(a.startsWith("pbkdf2-sha256$100000$")).toBe(true);
    expect(await verifyPassword("s3cret", a)).toBe(true);
    expect(await verifyPassword("s3cret!", a)).toBe(false);
    expect(await verifyPassword("s3cret", "garbage")).toBe(false);
  });

  it("sealed secrets open with the right key only", async () => {
    const key = env.REDFORGE_ENCRYPTION_KEY!;
    const sealed = await seal("whsec_abc", key);
    expect(sealed).not.toContain("whsec_abc");
    expect(await open(sealed, key)).toBe("whsec_abc");
    const otherKey = btoa("x".repeat(32));
    await expect(open(sealed, otherKey)).rejects.toThrow();
  });

  it("canonical JSON ignores key order", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, { y: 2, z: 1 }] }, b: 1 }));
  });
});
