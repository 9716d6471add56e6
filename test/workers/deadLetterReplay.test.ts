/**
 * Replaying a dead letter: POST /api/dead-letters/:id/replay keeps the request
 * pending on the row (who, when, audited), the cluster's bridge collects it
 * through the signed replays webhook with where to send the input, reports
 * the outcome, and a second replay is 409 already_replayed unless ?force.
 * Viewers may not replay; another cluster's bridge neither sees nor settles it.
 */
import { and, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs, deadLetters, instances } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let operator: TestUser;
let viewer: TestUser;

interface Cluster { id: string; webhookSecret: string }

const hex64 = () => Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");

async function signed(cluster: Cluster, path: string, body: unknown) {
  const text = JSON.stringify(body);
  const headers = await webhookHeaders(cluster.webhookSecret, text);
  return api("POST", `/api/webhooks/clusters/${cluster.id}${path}`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

const collect = (cluster: Cluster, results: unknown[] = []) => signed(cluster, "/dead-letters/replays", { results });

async function setup(extra: Record<string, unknown> = {}) {
  const cluster = await createCluster(admin.token);
  const instance = await createInstance(admin.token, cluster.id);
  await withDb((db) => db.update(instances).set({ endpoints: { admin: "http://127.0.0.1:41880", front: "http://127.0.0.1:41881/" } }).where(eq(instances.id, instance.id)));
  const letter = {
    letterId: hex64(), instanceId: instance.id, flowId: "wf-7", primitive: "memory", nodeRedFlow: "rfmem-tab",
    failedAt: "2026-12-02T10:00:03.100Z", error: { code: "store_unavailable", message: "ECONNREFUSED", attempts: 1 },
    input: { payload: { action: "recall", conversationId: "c-1" }, metadata: { flowId: "wf-7", timestamp: "2026-12-02T10:00:00.000Z" } },
    ...extra,
  };
  const stored = await signed(cluster, "/dead-letters", { letters: [letter] });
  expect(stored.status, JSON.stringify(stored.body)).toBe(202);
  const [row] = await withDb((db) => db.select().from(deadLetters).where(eq(deadLetters.letterId, letter.letterId)));
  return { cluster, instanceId: instance.id as string, id: row!.id, letter };
}

const replay = (token: string, id: number | string, query = "") => api("POST", `/api/dead-letters/${id}/replay${query}`, { token });

beforeAll(async () => {
  [admin, operator, viewer] = await Promise.all([createUser("admin"), createUser("operator"), createUser("viewer")]);
});

describe("dead-letter replay", () => {
  it("an operator's replay is pending, audited, handed to the cluster's bridge with the primitive's URL, and settled by its report", async () => {
    const { cluster, id, letter, instanceId } = await setup();
    const res = await replay(operator.token, id);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ id, replayState: "pending", replayedBy: operator.id, replayCount: 1, replayResult: null, input: letter.input });
    expect(Date.parse(res.body.replayedAt)).toBeGreaterThan(Date.now() - 60_000);

    const audit = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.action, "DEAD_LETTER_REPLAY_REQUESTED"), eq(auditLogs.resourceId, String(id)))));
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ userId: operator.id, resourceType: "dead_letters", details: { instanceId, primitive: "memory", errorCode: "store_unavailable", force: false } });

    // Another cluster's bridge neither sees it nor can settle it.
    const other = await setup();
    const foreign = await collect(other.cluster, [{ id, ok: true, status: 200 }]);
    expect(foreign.status, JSON.stringify(foreign.body)).toBe(200);
    expect(foreign.body).toEqual({ applied: 0, replays: [] });

    const first = await collect(cluster);
    expect(first.body.replays).toEqual([{ id, instanceId, target: { kind: "http", url: "http://127.0.0.1:41881/agents/memory" }, input: letter.input }]);
    // Collected and not reported yet: not handed out twice.
    expect((await collect(cluster)).body.replays).toEqual([]);
    const done = await collect(cluster, [{ id, ok: true, status: 200 }]);
    expect(done.body).toEqual({ applied: 1, replays: [] });

    const list = await api("GET", `/api/dead-letters?instanceId=${instanceId}&replayState=succeeded`, { token: viewer.token });
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({ id, replayState: "succeeded", replayedBy: operator.id, replayResult: { ok: true, status: 200 }, input: null, redacted: true });
    expect(list.body.items[0]).not.toHaveProperty("replaySentAt");
  });

  it("a second replay is 409 already_replayed; ?force=true sends it again; a pending one is 409 replay_pending even with force", async () => {
    const { cluster, id } = await setup();
    expect((await replay(admin.token, id)).status).toBe(202);
    const pending = await replay(admin.token, id, "?force=true");
    expect(pending.status).toBe(409);
    expectErrorShape(pending.body, "replay_pending");
    await collect(cluster);
    await collect(cluster, [{ id, ok: false, status: 503, code: "store_unavailable", message: "still down" }]);
    const again = await replay(admin.token, id);
    expect(again.status).toBe(409);
    expectErrorShape(again.body, "already_replayed");
    expect(again.body.error.details).toMatchObject({ replayState: "failed" });
    const forced = await replay(operator.token, id, "?force=true");
    expect(forced.status, JSON.stringify(forced.body)).toBe(202);
    expect(forced.body).toMatchObject({ replayState: "pending", replayCount: 2, replayResult: null });
    expect((await collect(cluster)).body.replays.map((r: { id: number }) => r.id)).toEqual([id]);
  });

  it("a letter without a primitive goes to the instance's MQTT ingest", async () => {
    const { cluster, id, instanceId } = await setup({ primitive: undefined });
    expect((await replay(admin.token, id)).status).toBe(202);
    expect((await collect(cluster)).body.replays[0]).toMatchObject({ id, target: { kind: "mqtt", topic: `redforge/ingest/${instanceId}` } });
  });

  it("viewers get 403; unknown id 404; bad id or query 400; a truncated or missing input 409 input_unavailable", async () => {
    const { id } = await setup();
    const denied = await replay(viewer.token, id);
    expect(denied.status).toBe(403);
    expect((await replay(admin.token, 987654321)).status).toBe(404);
    expect((await replay(admin.token, "abc")).status).toBe(400);
    expect((await replay(admin.token, id, "?force=maybe")).status).toBe(400);
    expect((await replay(admin.token, id, "?other=1")).status).toBe(400);
    const truncated = await setup({ input: { truncated: true, bytes: 70_000 } });
    const t = await replay(admin.token, truncated.id);
    expect(t.status).toBe(409);
    expectErrorShape(t.body, "input_unavailable");
    const none = await setup({ input: undefined });
    expectErrorShape((await replay(admin.token, none.id)).body, "input_unavailable");
    const rows = await withDb((db) => db.select().from(deadLetters).where(eq(deadLetters.id, id)));
    expect(rows[0]!.replayState).toBeNull();
  });

  it("the replays webhook refuses a forged call and a bad body", async () => {
    const { cluster } = await setup();
    const other = await createCluster(admin.token);
    const text = JSON.stringify({ results: [] });
    const forged = await api("POST", `/api/webhooks/clusters/${cluster.id}/dead-letters/replays`, { raw: text, headers: { ...(await webhookHeaders(other.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(forged.status).toBe(401);
    const bad = await collect(cluster, [{ id: "x", ok: "yes" }]);
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "validation_failed");
  });
});
