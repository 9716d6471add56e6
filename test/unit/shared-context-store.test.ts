/**
 * The shared context store (flows/node-package/lib/sharedContextStore.js)
 * against a real redis-server behind the Upstash REST relay: Node-RED's store
 * contract (callbacks, array keys, nested property paths, undefined deletes,
 * keys, delete, clean) and its failure answers.
 */
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisServerAvailable, startUpstashStandIn, type UpstashStandIn } from "../harness/redisServer.ts";

const require = createRequire(import.meta.url);
const sharedContextStore = require("../../flows/node-package/lib/sharedContextStore.js") as (config: unknown) => Store;

interface Store {
  open(): Promise<void>;
  close(): Promise<void>;
  get(scope: string, key: string | string[], cb: (err: Error | null, ...values: unknown[]) => void): void;
  set(scope: string, key: string | string[], value: unknown, cb?: (err: Error | null) => void): void;
  keys(scope: string, cb: (err: Error | null, keys?: string[]) => void): void;
  delete(scope: string): Promise<void>;
  clean(active: string[]): Promise<void>;
}

const get = (s: Store, scope: string, key: string | string[]) =>
  new Promise<unknown[]>((resolve, reject) => s.get(scope, key, (err, ...values) => (err ? reject(err) : resolve(values))));
const set = (s: Store, scope: string, key: string | string[], value: unknown) =>
  new Promise<void>((resolve, reject) => s.set(scope, key, value, (err) => (err ? reject(err) : resolve())));
const keys = (s: Store, scope: string) =>
  new Promise<string[]>((resolve, reject) => s.keys(scope, (err, k) => (err ? reject(err) : resolve(k ?? []))));

if (!redisServerAvailable) console.warn("shared context store suite skipped: no redis-server binary");

describe.skipIf(!redisServerAvailable)("shared context store over Upstash REST", () => {
  let redis: UpstashStandIn;
  let store: Store;
  let other: Store;

  beforeAll(async () => {
    redis = await startUpstashStandIn();
    const prefix = `redforge:context:${randomUUID()}:`;
    store = sharedContextStore({ url: redis.url, token: redis.token, prefix });
    // Another colour of the same instance: same prefix, its own store object.
    other = sharedContextStore({ url: redis.url, token: redis.token, prefix });
    await store.open();
  }, 60_000);

  afterAll(async () => redis?.close());

  it("what one store object sets, another with the same prefix reads (JSON values kept)", async () => {
    await set(store, "flow-1", "count", 41);
    await set(store, "flow-1", "user", { name: "Ada", tags: ["a", "b"] });
    expect(await get(other, "flow-1", "count")).toEqual([41]);
    expect(await get(other, "flow-1", "user")).toEqual([{ name: "Ada", tags: ["a", "b"] }]);
    expect(await get(other, "flow-1", "missing")).toEqual([undefined]);
    expect(await get(other, "flow-2", "count"), "scopes are apart").toEqual([undefined]);
  });

  it("array keys get and set several at once, in order", async () => {
    await set(store, "global", ["a", "b"], [1, "two"]);
    expect(await get(store, "global", ["b", "a", "c"])).toEqual(["two", 1, undefined]);
  });

  it("nested property paths read and write inside a top-level value", async () => {
    await set(store, "flow-3", "cfg.retry.max", 3);
    await set(store, "flow-3", "cfg.hosts[1]", "b.example");
    expect(await get(store, "flow-3", "cfg")).toEqual([{ retry: { max: 3 }, hosts: [null, "b.example"] }]);
    expect(await get(store, "flow-3", "cfg.retry.max")).toEqual([3]);
    expect(await get(store, "flow-3", 'cfg["retry"]')).toEqual([{ max: 3 }]);
    await set(store, "flow-3", "cfg.retry", undefined);
    expect(await get(store, "flow-3", "cfg")).toEqual([{ hosts: [null, "b.example"] }]);
  });

  it("undefined deletes a key; keys lists them; delete drops the scope; clean keeps everything", async () => {
    await set(store, "flow-4", "x", 1);
    await set(store, "flow-4", "y", 2);
    await set(store, "flow-4", "x", undefined);
    expect((await keys(store, "flow-4")).sort()).toEqual(["y"]);
    await store.clean([]);
    expect(await get(store, "flow-4", "y")).toEqual([2]);
    await store.delete("flow-4");
    expect(await keys(store, "flow-4")).toEqual([]);
  });

  it("answers errors through the callback: a wrong token, an invalid key; sync use throws", async () => {
    const wrong = sharedContextStore({ url: redis.url, token: "not-the-token", prefix: "x:" });
    await expect(get(wrong, "s", "k")).rejects.toThrow(/GET|HGET.*401/);
    await expect(wrong.open()).rejects.toThrow(/401/);
    await expect(set(store, "s", "a..b", 1)).rejects.toThrow(/invalid context key/);
    expect(() => store.get("s", "k", undefined as never)).toThrow(/asynchronous/);
    expect(() => sharedContextStore({ url: "redis://x", token: "t" })).toThrow(/http/);
    expect(() => sharedContextStore({ url: redis.url })).toThrow(/token/);
  });
});
