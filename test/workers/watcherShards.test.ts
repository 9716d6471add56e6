/**
 * /ws/fleet past REDFORGE_WATCHERS_PER_OBJECT (durable/watcherShards.ts): the
 * "fleet" object keeps that many watchers and places the rest on WatcherShard
 * objects; every watcher still gets `fleet:hello` first, every event in
 * publish order, `fleet:alert` only with alerts:read, and 4401 when its access
 * changes, wherever it sits.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createUser, openStream, unique, type TestUser } from "./helpers.ts";

const WAIT = { timeout: 20_000, interval: 25 };
const PER_OBJECT = 2;

// One isolate per test file: the Worker and its objects read this env object.
const saved = env.REDFORGE_WATCHERS_PER_OBJECT;
beforeAll(() => { (env as { REDFORGE_WATCHERS_PER_OBJECT?: string }).REDFORGE_WATCHERS_PER_OBJECT = String(PER_OBJECT); });
afterAll(() => { (env as { REDFORGE_WATCHERS_PER_OBJECT?: string }).REDFORGE_WATCHERS_PER_OBJECT = saved; });

async function watch(token: string) {
  const s = await openStream("/ws/fleet", token);
  return { ...s, statusReasons: () => s.events.filter((e) => e.event === "instance:status").map((e) => e.data.reason) };
}

async function oneInstance(admin: TestUser) {
  const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("ws") } })).body;
  const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("ws"), clusterId: cluster.id } })).body;
  return async (state: string, reason: string) => {
    const text = JSON.stringify({ type: "instance.status", instanceId: inst.id, state, reason });
    const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(res.status).toBeLessThan(300);
  };
}

/** How many watchers the "fleet" object holds itself, and how many shards it has opened. */
async function placement() {
  const stub = env.FLEET_EVENTS.get(env.FLEET_EVENTS.idFromName("fleet"));
  return runInDurableObject(stub, async (_o, state) => ({
    local: state.getWebSockets("watcher").length,
    shards: (await state.storage.get<number>("watchers:shards")) ?? 0,
  }));
}

describe("/ws/fleet over several objects", () => {
  it("watchers past the per-object limit land on shards and get hello first, then every event in order", async () => {
    const admin = await createUser("admin");
    const publish = await oneInstance(admin);
    const viewer = await createUser("viewer");
    const sockets = [];
    for (let i = 0; i < 7; i++) sockets.push(await watch(i % 2 ? viewer.token : admin.token));
    const where = await placement();
    expect(where.local).toBeLessThanOrEqual(PER_OBJECT + 1); // another test's socket may still be closing
    expect(where.shards).toBeGreaterThanOrEqual(2); // 7 watchers, 2 per object

    for (const s of sockets) await vi.waitFor(() => expect(s.events.length).toBeGreaterThanOrEqual(1), WAIT);
    for (const s of sockets) expect(s.events[0].event).toBe("fleet:hello");

    const reasons = ["r1", "r2", "r3", "r4"];
    for (const [i, r] of reasons.entries()) await publish(i % 2 ? "running" : "failed", r);
    for (const s of sockets) await vi.waitFor(() => expect(s.statusReasons()).toEqual(reasons), WAIT);
    for (const s of sockets) s.ws.close();
  });

  it("a watcher on a shard is closed with 4401 when its access changes; the others keep streaming", async () => {
    const admin = await createUser("admin");
    const publish = await oneInstance(admin);
    const bystanders = [];
    for (let i = 0; i < PER_OBJECT + 1; i++) bystanders.push(await watch((await createUser("viewer")).token));
    // These join once the object is full: on shards.
    const leavers = await Promise.all([createUser("viewer"), createUser("operator")]);
    const leaving = [];
    for (const u of leavers) leaving.push(await watch(u.token));
    expect((await placement()).shards).toBeGreaterThanOrEqual(1);

    await publish("failed", "before");
    for (const s of [...bystanders, ...leaving]) await vi.waitFor(() => expect(s.statusReasons()).toEqual(["before"]), WAIT);
    expect((await api("PATCH", `/api/users/${leavers[0].id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await api("PATCH", `/api/users/${leavers[1].id}`, { token: admin.token, body: { role: "viewer" } })).status).toBe(200);
    await publish("running", "after");
    for (const s of bystanders) await vi.waitFor(() => expect(s.statusReasons()).toEqual(["before", "after"]), WAIT);
    for (const s of leaving) await vi.waitFor(() => expect(s.closed()).toBe(4401), WAIT);
    for (const s of leaving) expect(s.statusReasons()).toEqual(["before"]);
    for (const s of bystanders) s.ws.close();
  });
});
