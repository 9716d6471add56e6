/**
 * AI decision logs: the bridge's signed batch webhook (forged, oversized and
 * foreign batches store nothing; a batch is stored once), cost from the price
 * table, the team's daily token counter, and the query/totals API with its
 * prompt redaction for roles without ai_prompts:read.
 */
import { env } from "cloudflare:test";
import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { aiDecisionLogs, instances } from "../../db/schema.ts";
import { tokensUsed } from "../../core/governance/tokenUsage.ts";
import { openKv } from "../../core/platform/kv.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let operator: TestUser;
let viewer: TestUser;

interface Cluster { id: string; webhookSecret: string }

async function send(cluster: Cluster, records: unknown[], opts: { secret?: string; batchId?: string } = {}) {
  const text = JSON.stringify({ batchId: opts.batchId ?? crypto.randomUUID(), records });
  const headers = await webhookHeaders(opts.secret ?? cluster.webhookSecret, text);
  return api("POST", `/api/webhooks/clusters/${cluster.id}/ai-decisions`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

/** A cluster with one instance in a team of its own (so token counters are this test's alone). */
async function setup() {
  const cluster = await createCluster(admin.token);
  const instance = await createInstance(admin.token, cluster.id);
  const team = unique("team");
  await withDb((db) => db.update(instances).set({ team }).where(eq(instances.id, instance.id)));
  return { cluster, instanceId: instance.id, team };
}

const record = (instanceId: string, extra: Record<string, unknown> = {}) => ({
  instanceId, provider: "openai", model: "gpt-4o-mini", flowName: "support", prompt: "hello?", response: "hi!",
  inputTokens: 100, outputTokens: 50, finishReason: "stop", latencyMs: 420, timeToFirstTokenMs: 80,
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736", ...extra,
});

const storedFor = (instanceId: string) =>
  withDb(async (db) => (await db.select({ n: sql<number>`count(*)::int` }).from(aiDecisionLogs).where(eq(aiDecisionLogs.instanceId, instanceId)))[0]!.n);

async function setPrice(model: string, input: number, output: number, provider = "openai") {
  const res = await api("PUT", "/api/ai/prices", { token: admin.token, body: { provider, model, inputUsdPerMtok: input, outputUsdPerMtok: output } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { id: string };
}

beforeAll(async () => {
  [admin, operator, viewer] = await Promise.all([createUser("admin"), createUser("operator"), createUser("viewer")]);
  await setPrice("gpt-4o-mini", 0.15, 0.6);
});

describe("AI decision webhook", () => {
  it("a forged batch is 401 and stores nothing", async () => {
    const { cluster, instanceId } = await setup();
    const other = await createCluster(admin.token);
    const res = await send(cluster, [record(instanceId)], { secret: other.webhookSecret });
    expect(res.status).toBe(401);
    expectErrorShape(res.body, "invalid_signature");
    expect(await storedFor(instanceId)).toBe(0);
  });

  it("stores a batch of 500 with cost from the price table and counts the team's tokens", async () => {
    const { cluster, instanceId, team } = await setup();
    const records = Array.from({ length: 500 }, (_, i) => record(instanceId, { inputTokens: 1000 + i, outputTokens: 200 }));
    const res = await send(cluster, records);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ accepted: true, stored: 500, duplicate: false, tokensCounted: true });
    expect(await storedFor(instanceId)).toBe(500);

    const [first] = await withDb((db) => db.select().from(aiDecisionLogs)
      .where(sql`${aiDecisionLogs.instanceId} = ${instanceId} and ${aiDecisionLogs.inputTokens} = 1000`));
    // 1000 × 0.15 / 1e6 + 200 × 0.6 / 1e6
    expect(Number(first!.costUsd)).toBeCloseTo(0.00027, 8);
    expect(first).toMatchObject({ tokensUsed: 1200, provider: "openai", model: "gpt-4o-mini", operationName: "chat", finishReason: "stop", latencyMs: 420 });

    const expectedTokens = records.reduce((n, r) => n + r.inputTokens + r.outputTokens, 0);
    expect(await tokensUsed(openKv(env), team, new Date())).toBe(expectedTokens);
  });

  it("a batch of 501 is 400 and stores nothing", async () => {
    const { cluster, instanceId } = await setup();
    const res = await send(cluster, Array.from({ length: 501 }, () => record(instanceId)));
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "validation_failed");
    expect(await storedFor(instanceId)).toBe(0);
  });

  it("a batch naming another cluster's instance is 403 and stores none of it", async () => {
    const mine = await setup();
    const theirs = await setup();
    const res = await send(mine.cluster, [record(mine.instanceId), record(theirs.instanceId)]);
    expect(res.status).toBe(403);
    expectErrorShape(res.body, "instance_not_in_cluster");
    expect(res.body.error.details.instanceIds).toEqual([theirs.instanceId]);
    expect(await storedFor(mine.instanceId)).toBe(0);
    expect(await storedFor(theirs.instanceId)).toBe(0);
  });

  it("a retried batch (same batchId, new webhook id) is stored and counted once", async () => {
    const { cluster, instanceId, team } = await setup();
    const batchId = crypto.randomUUID();
    expect((await send(cluster, [record(instanceId)], { batchId })).status).toBe(202);
    const again = await send(cluster, [record(instanceId)], { batchId });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ duplicate: true, stored: 0 });
    expect(await storedFor(instanceId)).toBe(1);
    expect(await tokensUsed(openKv(env), team, new Date())).toBe(150);
  });

  it("an unknown model is stored with cost null", async () => {
    const { cluster, instanceId } = await setup();
    const model = unique("unpriced");
    const extra = { model, metadata: { ticket: 42, tags: ["vip"] }, spanId: "00f067aa0ba902b7", responseId: "chatcmpl-1", timestamp: "2026-03-01T10:00:00.000Z" };
    expect((await send(cluster, [record(instanceId, extra)])).status).toBe(202);
    const res = await api("GET", `/api/ai/decisions?instanceId=${instanceId}`, { token: admin.token });
    expect(res.body.items).toHaveLength(1);
    expect(res.body.items[0]).toMatchObject({ ...extra, costUsd: null, inputTokens: 100, timeToFirstTokenMs: 80, confidence: null });
  });

  it("bad records are 400 with the failing path, never 500", async () => {
    const { cluster, instanceId } = await setup();
    const res = await send(cluster, [record(instanceId, { inputTokens: -1 })]);
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe("records.0.inputTokens");
    const notJson = await (async () => {
      const text = "{not json";
      const headers = await webhookHeaders(cluster.webhookSecret, text);
      return api("POST", `/api/webhooks/clusters/${cluster.id}/ai-decisions`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
    })();
    expect(notJson.status).toBe(400);
    expectErrorShape(notJson.body, "malformed_json");
  });
});

describe("prices", () => {
  it("a price edit changes the cost of records that arrive after it, not before", async () => {
    const { cluster, instanceId } = await setup();
    const model = unique("m");
    await setPrice(model, 1, 2);
    expect((await send(cluster, [record(instanceId, { model, inputTokens: 1_000_000, outputTokens: 1_000_000, flowName: "before" })])).status).toBe(202);
    const updated = await setPrice(model, 10, 20);
    expect((await send(cluster, [record(instanceId, { model, inputTokens: 1_000_000, outputTokens: 1_000_000, flowName: "after" })])).status).toBe(202);
    const list = await api("GET", `/api/ai/decisions?instanceId=${instanceId}`, { token: admin.token });
    const cost = (flow: string) => Number(list.body.items.find((r: any) => r.flowName === flow).costUsd);
    expect(cost("before")).toBe(3);
    expect(cost("after")).toBe(30);

    const prices = await api("GET", "/api/ai/prices", { token: viewer.token });
    expect(prices.body.items.find((p: any) => p.model === model)).toMatchObject({ provider: "openai", inputUsdPerMtok: 10, outputUsdPerMtok: 20 });
    expect((await api("DELETE", `/api/ai/prices/${updated.id}`, { token: admin.token })).status).toBe(204);
    expect((await api("DELETE", `/api/ai/prices/${updated.id}`, { token: admin.token })).status).toBe(404);
    expect((await send(cluster, [record(instanceId, { model, flowName: "deleted" })])).status).toBe(202);
    const after = await api("GET", `/api/ai/decisions?instanceId=${instanceId}&flowName=deleted`, { token: admin.token });
    expect(after.body.items[0].costUsd).toBeNull();
  });

  it("rejects negative prices and is audited", async () => {
    const res = await api("PUT", "/api/ai/prices", { token: admin.token, body: { provider: "openai", model: "x", inputUsdPerMtok: -1, outputUsdPerMtok: 1 } });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "validation_failed");
    const model = unique("audited");
    await setPrice(model, 1, 1);
    const audit = await api("GET", "/api/audit?action=AI_PRICE_SET&limit=20", { token: admin.token });
    expect(audit.body.items.some((r: any) => r.details.model === model)).toBe(true);
  });
});

describe("queries", () => {
  it("filters, paginates and totals by instance, flow and model", async () => {
    const a = await setup();
    const b = await createInstance(admin.token, a.cluster.id);
    const model = unique("q");
    await setPrice(model, 1, 1, "acme");
    const at = (min: number) => new Date(Date.UTC(2026, 0, 1, 12, min)).toISOString();
    const records = [
      record(a.instanceId, { provider: "acme", model, flowName: "triage", inputTokens: 10, outputTokens: 1, timestamp: at(0) }),
      record(a.instanceId, { provider: "acme", model, flowName: "triage", inputTokens: 20, outputTokens: 2, timestamp: at(1) }),
      record(a.instanceId, { provider: "acme", model, flowName: "reply", inputTokens: 30, outputTokens: 3, timestamp: at(2) }),
      record(b.id, { provider: "acme", model, flowName: "triage", inputTokens: 40, outputTokens: 4, timestamp: at(3) }),
      record(b.id, { provider: "acme", model: `${model}-free`, flowName: "triage", inputTokens: 50, outputTokens: 5, timestamp: at(4) }),
    ];
    expect((await send(a.cluster, records)).status).toBe(202);

    const page1 = await api("GET", `/api/ai/decisions?provider=acme&flowName=triage&limit=2&from=${at(0)}&to=${at(59)}`, { token: admin.token });
    expect(page1.status).toBe(200);
    expect(page1.body.items).toHaveLength(2);
    const page2 = await api("GET", `/api/ai/decisions?provider=acme&flowName=triage&limit=2&from=${at(0)}&to=${at(59)}&cursor=${page1.body.nextCursor}`, { token: admin.token });
    expect(page2.body.items).toHaveLength(2);
    expect(page2.body.nextCursor).toBeNull();
    const tokens = [...page1.body.items, ...page2.body.items].map((r: any) => r.inputTokens).sort((x: number, y: number) => x - y);
    expect(tokens).toEqual([10, 20, 40, 50]);
    const window = await api("GET", `/api/ai/decisions?instanceId=${a.instanceId}&from=${at(1)}&to=${at(1)}`, { token: admin.token });
    expect(window.body.items.map((r: any) => r.inputTokens)).toEqual([20]);

    const byInstance = await api("GET", `/api/ai/decisions/totals?groupBy=instance&provider=acme&from=${at(0)}&to=${at(59)}`, { token: viewer.token });
    expect(byInstance.status).toBe(200);
    const ofA = byInstance.body.items.find((r: any) => r.key.instanceId === a.instanceId);
    expect(ofA).toMatchObject({ calls: 3, inputTokens: 60, outputTokens: 6, unpricedCalls: 0 });
    expect(Number(ofA.costUsd)).toBeCloseTo(66 / 1e6, 10);
    const ofB = byInstance.body.items.find((r: any) => r.key.instanceId === b.id);
    expect(ofB).toMatchObject({ calls: 2, inputTokens: 90, outputTokens: 9, unpricedCalls: 1 });

    const byFlow = await api("GET", `/api/ai/decisions/totals?groupBy=flow&provider=acme&from=${at(0)}&to=${at(59)}`, { token: admin.token });
    expect(byFlow.body.items.find((r: any) => r.key.flowName === "triage")).toMatchObject({ calls: 4, inputTokens: 120, outputTokens: 12 });
    expect(byFlow.body.items.find((r: any) => r.key.flowName === "reply")).toMatchObject({ calls: 1, inputTokens: 30 });

    const byModel = await api("GET", `/api/ai/decisions/totals?groupBy=model&provider=acme&from=${at(0)}&to=${at(59)}`, { token: admin.token });
    expect(byModel.body.items.find((r: any) => r.key.model === model)).toMatchObject({ calls: 4, inputTokens: 100, key: { provider: "acme", model } });
    expect(byModel.body.items.find((r: any) => r.key.model === `${model}-free`)).toMatchObject({ calls: 1, costUsd: null, unpricedCalls: 1 });

    const bad = await api("GET", "/api/ai/decisions/totals?groupBy=team", { token: admin.token });
    expect(bad.status).toBe(400);
    expect((await api("GET", "/api/ai/decisions?cursor=nope", { token: admin.token })).status).toBe(400);
  });

  it("viewers get records without prompt and response text; operators and admins get the text", async () => {
    const { cluster, instanceId } = await setup();
    expect((await send(cluster, [record(instanceId, { prompt: "patient 123 has...", response: "diagnosis..." })])).status).toBe(202);
    const path = `/api/ai/decisions?instanceId=${instanceId}`;
    const asViewer = (await api("GET", path, { token: viewer.token })).body.items[0];
    expect(asViewer).toMatchObject({ prompt: null, response: null, redacted: true, inputTokens: 100 });
    for (const who of [operator, admin]) {
      const item = (await api("GET", path, { token: who.token })).body.items[0];
      expect(item).toMatchObject({ prompt: "patient 123 has...", response: "diagnosis...", redacted: false });
    }
  });

  it("a prompt read filtered by time is audited, and the audit chain still verifies", async () => {
    // The read's audit row carries its filters; a Date among them once hashed as {} and broke the chain.
    const { cluster, instanceId } = await setup();
    expect((await send(cluster, [record(instanceId, { prompt: "p", response: "r" })])).status).toBe(202);
    const read = await api("GET", `/api/ai/decisions?instanceId=${instanceId}&from=2000-01-01T00:00:00Z`, { token: admin.token });
    expect(read.body.items[0]).toMatchObject({ prompt: "p", redacted: false });
    const verify = await api("GET", "/api/audit/verify", { token: admin.token });
    expect(verify.body, JSON.stringify(verify.body)).toMatchObject({ ok: true });
  });
});
