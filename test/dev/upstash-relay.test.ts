import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis as Upstash } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { freePort, isReachable } from "../../dev/ports.ts";
import { startUpstashRelay } from "../../dev/upstash-relay.ts";
import type { RunningService } from "../../dev/config.ts";

const REDIS_URL = "redis://127.0.0.1:6379";
const TOKEN = "test-upstash-token";
const reachable = await isReachable(6379);
if (!reachable) console.warn("upstash relay suite skipped: no redis-server on 127.0.0.1:6379");

describe.skipIf(!reachable)(`upstash relay in front of redis 127.0.0.1:6379 (${reachable ? "reachable" : "skipped: not reachable"})`, () => {
  const prefix = `redforge-test:${randomUUID()}:`;
  const k = (name: string) => prefix + name;
  let relay: RunningService;
  let url: string;
  let redis: Upstash;

  beforeAll(async () => {
    const port = await freePort();
    relay = await startUpstashRelay({ port, redisUrl: REDIS_URL, token: TOKEN });
    url = `http://127.0.0.1:${port}`;
    redis = new Upstash({ url, token: TOKEN, enableTelemetry: false });
  });

  afterAll(async () => {
    await relay?.close();
    // Clean up behind the relay's back, so a relay bug cannot leave keys behind.
    const direct = new IORedis(REDIS_URL);
    try {
      const keys = await direct.keys(`${prefix}*`);
      if (keys.length) await direct.del(...keys);
    } finally {
      direct.disconnect();
    }
  });

  it("round-trips JSON values and UTF-8 strings through base64 encoding", async () => {
    const value = { name: "flow", tags: ["a", "b"], n: 3, nested: { ok: true } };
    expect(await redis.set(k("json"), value)).toBe("OK");
    expect(await redis.get(k("json"))).toEqual(value);
    expect(await redis.set(k("utf8"), "héllo ✓ 日本")).toBe("OK");
    expect(await redis.get(k("utf8"))).toBe("héllo ✓ 日本");
    expect(await redis.get(k("missing"))).toBeNull();
  });

  it("implements SET NX EX: the second NX is refused and the key expires", async () => {
    expect(await redis.set(k("lock"), "owner-1", { nx: true, ex: 30 })).toBe("OK");
    expect(await redis.set(k("lock"), "owner-2", { nx: true, ex: 30 })).toBeNull();
    expect(await redis.get(k("lock"))).toBe("owner-1");
    const ttl = await redis.ttl(k("lock"));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30);
  });

  it("keeps integers as numbers: incr, expire, ttl", async () => {
    expect(await redis.incr(k("counter"))).toBe(1);
    expect(await redis.incrby(k("counter"), 5)).toBe(6);
    expect(await redis.ttl(k("counter"))).toBe(-1);
    expect(await redis.expire(k("counter"), 100)).toBe(1);
    const ttl = await redis.ttl(k("counter"));
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
  });

  it("returns hashes in the RESP2 shape the client expects", async () => {
    await redis.hset(k("hash"), { a: "1", b: "two" });
    expect(await redis.hgetall(k("hash"))).toEqual({ a: 1, b: "two" });
  });

  it("runs a pipeline, keeping per-command errors", async () => {
    const p = redis.pipeline();
    p.set(k("p"), 10);
    p.incr(k("p"));
    p.get(k("p"));
    expect(await p.exec()).toEqual(["OK", 11, 11]);

    const bad = redis.pipeline();
    bad.incr(k("hash")); // WRONGTYPE
    bad.get(k("p"));
    const res = await bad.exec({ keepErrors: true });
    expect(res[0]?.error).toMatch(/WRONGTYPE/);
    expect(res[1]).toEqual({ result: 11, error: undefined });
  });

  it("runs multi as a transaction", async () => {
    const tx = redis.multi();
    tx.set(k("tx"), "a");
    tx.append(k("tx"), "b");
    tx.get(k("tx"));
    expect(await tx.exec()).toEqual(["OK", 2, "ab"]);
    // A command rejected while queueing aborts everything.
    const res = await fetch(`${url}/multi-exec`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify([["SET", k("tx2"), "x"], ["SET", k("tx2")]]),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/EXECABORT/);
    expect(await redis.exists(k("tx2"))).toBe(0);
  });

  it("runs eval and scripts (evalsha falls back on NOSCRIPT)", async () => {
    expect(await redis.eval("return {KEYS[1], ARGV[1], 3}", [k("e")], ["x"])).toEqual([k("e"), "x", 3]);
    const script = redis.createScript<string>(`return ARGV[1] .. '-${randomUUID()}'`);
    expect(await script.exec([], ["hi"])).toMatch(/^hi-/);
  });

  it("scans keys by pattern to completion", async () => {
    const names = Array.from({ length: 25 }, (_, i) => k(`scan:${i}`));
    for (const n of names) await redis.set(n, 1);
    const seen = new Set<string>();
    let cursor: string | number = 0;
    do {
      const [next, keys]: [string | number, string[]] = await redis.scan(cursor, { match: `${prefix}scan:*`, count: 10 });
      keys.forEach((key) => seen.add(key));
      cursor = next;
    } while (String(cursor) !== "0");
    expect([...seen].sort()).toEqual([...names].sort());
  });

  it("deletes keys and reports the count", async () => {
    await redis.set(k("d1"), 1);
    await redis.set(k("d2"), 2);
    expect(await redis.del(k("d1"), k("d2"), k("never"))).toBe(2);
    expect(await redis.exists(k("d1"), k("d2"))).toBe(0);
  });

  it("runs a blocking command on its own connection, without stalling other requests", async () => {
    const blpop = fetch(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(["BLPOP", k("queue"), 5]),
    }).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    expect(await redis.rpush(k("queue"), "job-1")).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await blpop).toEqual({ result: [k("queue"), "job-1"] });
  });

  it("surfaces command errors (HTTP 400) as client errors", async () => {
    await redis.set(k("text"), "not a number");
    await expect(redis.incr(k("text"))).rejects.toThrow(/not an integer/);
  });

  it("rejects a wrong token with 401", async () => {
    const intruder = new Upstash({ url, token: "wrong-token", enableTelemetry: false, retry: false });
    await expect(intruder.get(k("json"))).rejects.toThrow(/Unauthorized/);
    const res = await fetch(url, { method: "POST", body: JSON.stringify(["PING"]) });
    expect(res.status).toBe(401);
  });

  it("serves the GET path form and plain (non-base64) responses", async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const set = await fetch(`${url}/set/${encodeURIComponent(k("path"))}/${encodeURIComponent("a b/c")}`, { headers: auth });
    expect(await set.json()).toEqual({ result: "OK" });
    const get = await fetch(`${url}/get/${encodeURIComponent(k("path"))}`, { headers: auth });
    expect(await get.json()).toEqual({ result: "a b/c" });
    const b64 = await fetch(`${url}/get/${encodeURIComponent(k("path"))}`, { headers: { ...auth, "Upstash-Encoding": "base64" } });
    expect(await b64.json()).toEqual({ result: Buffer.from("a b/c").toString("base64") });
    const bad = await fetch(url, { method: "POST", headers: auth, body: JSON.stringify(["NOSUCHCOMMAND"]) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/unknown command/i);
  });
});
