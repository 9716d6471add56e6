/**
 * CI webhooks: a hook's secret is shown once, a delivery signed with it
 * (Standard Webhooks or GitHub's X-Hub-Signature-256) starts the hook's
 * action as the hook's creator, and a forged, stale or replayed one is
 * refused before its body is read, with no rollout started and a trace in
 * the audit log.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { keyId, sealedKeyId } from "../../core/crypto/secretBox.ts";
import worker from "../../functions/index.ts";
import { randomBytes, toBase64 } from "../../protocol/encoding.ts";
import { githubSignature } from "../../protocol/githubWebhooks.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let operator: TestUser;
let viewer: TestUser;

const flowFile = (label: string) => [{ id: "t1", type: "tab", label }, { id: "n1", type: "inject", z: "t1", wires: [] }];

async function labelledInstance(value: string): Promise<string> {
  const cluster = await createCluster(admin.token);
  const inst = await createInstance(admin.token, cluster.id);
  await withDb((db) => db.execute(sql`update instances set labels = ${JSON.stringify({ ci: value })}::jsonb where id = ${inst.id}`));
  return inst.id;
}

const rolloutIds = async (selector: string) =>
  withDb(async (db) => ((await db.execute(sql`select id from rollouts where selector = ${selector} order by created_at`)).rows as { id: string }[]).map((r) => r.id));

const auditOf = async (hookId: string) =>
  withDb(async (db) => (await db.execute(sql`select action, user_id, details from audit_logs where resource_type = 'ci_hook' and resource_id = ${hookId} order by id`)).rows as { action: string; user_id: string | null; details: any }[]);

async function rolloutHook(selector: string) {
  const res = await api("POST", "/api/webhooks/ci", { token: operator.token, body: { name: unique("hook"), action: { kind: "rollout", selector, rollout: { waves: ["100%"] } } } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; secret: string; url: string };
}

const deliver = (hookId: string, body: string, headers: Record<string, string>) =>
  api("POST", `/api/webhooks/ci/${hookId}`, { raw: body, headers: { "Content-Type": "application/json", ...headers } });

const standard = async (hookId: string, secret: string, body: string, id = `msg_${crypto.randomUUID()}`, now = Date.now()) =>
  deliver(hookId, body, await webhookHeaders(secret, body, id, now));

const github = async (hookId: string, secret: string, body: string, delivery: string = crypto.randomUUID(), extra: Record<string, string> = {}) =>
  deliver(hookId, body, { "X-Hub-Signature-256": await githubSignature(secret, body), "X-GitHub-Delivery": delivery, "X-GitHub-Event": "push", ...extra });

/** The Worker under another encryption key ring (as test/workers/keyRotation.test.ts runs it). */
async function withKeys(keys: { current: string; previous?: string[] }, method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`http://redforge.test${path}`, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) }),
    { ...env, REDFORGE_ENCRYPTION_KEY: keys.current, REDFORGE_ENCRYPTION_KEYS_PREVIOUS: (keys.previous ?? []).join(",") },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  [admin, operator, viewer] = await Promise.all([createUser("admin"), createUser("operator"), createUser("viewer")]);
});

describe("CI hooks", () => {
  it("show their secret once: list and get never carry it; viewers cannot create them", async () => {
    const hook = await rolloutHook(`ci=${unique("s")}`);
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(hook.url).toMatch(new RegExp(`/api/webhooks/ci/${hook.id}$`));
    const got = await api("GET", `/api/webhooks/ci/${hook.id}`, { token: viewer.token });
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty("secret");
    expect(got.body).toMatchObject({ actorId: operator.id, action: { kind: "rollout" } });
    const list = await api("GET", "/api/webhooks/ci?limit=200", { token: viewer.token });
    expect(JSON.stringify(list.body)).not.toContain(hook.secret);
    const stored = await withDb(async (db) => (await db.execute(sql`select secret_sealed from ci_hooks where id = ${hook.id}`)).rows[0] as { secret_sealed: string });
    expect(stored.secret_sealed).not.toContain(hook.secret.slice(6));
    expect((await api("POST", "/api/webhooks/ci", { token: viewer.token, body: { name: unique("hook"), action: { kind: "rollout", selector: "a=b" } } })).status).toBe(403);
    const bad = await api("POST", "/api/webhooks/ci", { token: operator.token, body: { name: unique("hook"), action: { kind: "rollout", selector: "a in (" } } });
    expectErrorShape(bad.body, "invalid_selector");
    const noPipeline = await api("POST", "/api/webhooks/ci", { token: operator.token, body: { name: unique("hook"), action: { kind: "promote", pipelineId: crypto.randomUUID(), stage: "prod" } } });
    expect(noPipeline.status).toBe(404);
  });

  it("a Standard Webhooks delivery and a GitHub-signed one each start a rollout, as the hook's creator", async () => {
    const selector = `ci=${unique("ok")}`;
    await labelledInstance(selector.slice(3));
    const hook = await rolloutHook(selector);
    const body = JSON.stringify({ flows: flowFile("v2") });
    const a = await standard(hook.id, hook.secret, body);
    expect(a.status, JSON.stringify(a.body)).toBe(202);
    expect(a.body).toMatchObject({ hookId: hook.id, rolloutId: expect.any(String), promotionId: null });
    const b = await github(hook.id, hook.secret, JSON.stringify({ flows: flowFile("v3"), description: "sha abc123" }));
    expect(b.status, JSON.stringify(b.body)).toBe(202);
    expect(await rolloutIds(selector)).toEqual([a.body.rolloutId, b.body.rolloutId]);
    const started = await withDb(async (db) => (await db.execute(sql`select user_id, details from audit_logs where action = 'ROLLOUT_STARTED' and resource_id = ${a.body.rolloutId}`)).rows[0] as any);
    expect(started).toMatchObject({ user_id: operator.id, details: { via: `ci_webhook:${hook.id}` } });
    const trail = await auditOf(hook.id);
    expect(trail.filter((r) => r.action === "CI_HOOK_DELIVERED").map((r) => [r.user_id, r.details.scheme])).toEqual([[operator.id, "standard-webhooks"], [operator.id, "github"]]);
    expect((await api("GET", `/api/webhooks/ci/${hook.id}`, { token: viewer.token })).body.lastDeliveryAt).not.toBeNull();
  });

  it("forged, stale and replayed deliveries are refused before parsing, and start nothing", async () => {
    const selector = `ci=${unique("no")}`;
    await labelledInstance(selector.slice(3));
    const hook = await rolloutHook(selector);
    const other = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
    const body = JSON.stringify({ flows: flowFile("v2") });
    const refusals: [string, Awaited<ReturnType<typeof api>>, number, string][] = [];
    refusals.push(["standard, wrong secret", await standard(hook.id, other, body), 401, "invalid_signature"]);
    refusals.push(["github, wrong secret", await github(hook.id, other, body), 401, "invalid_signature"]);
    const signedOther = await webhookHeaders(hook.secret, JSON.stringify({ flows: flowFile("v9") }));
    refusals.push(["standard, body swapped", await deliver(hook.id, body, signedOther), 401, "invalid_signature"]);
    refusals.push(["github, body swapped", await deliver(hook.id, body, { "X-Hub-Signature-256": await githubSignature(hook.secret, "{}"), "X-GitHub-Delivery": crypto.randomUUID() }), 401, "invalid_signature"]);
    refusals.push(["github, no delivery id", await deliver(hook.id, body, { "X-Hub-Signature-256": await githubSignature(hook.secret, body) }), 401, "invalid_signature"]);
    refusals.push(["unsigned", await deliver(hook.id, body, {}), 401, "invalid_signature"]);
    refusals.push(["unknown hook", await standard(crypto.randomUUID(), hook.secret, body), 401, "invalid_signature"]);
    refusals.push(["stale", await standard(hook.id, hook.secret, body, "msg_stale", Date.now() - 6 * 60_000), 401, "stale_timestamp"]);
    refusals.push(["future", await standard(hook.id, hook.secret, body, "msg_future", Date.now() + 6 * 60_000), 401, "stale_timestamp"]);
    // A body that is not even JSON is refused for its signature first: nothing reads it unsigned.
    refusals.push(["forged garbage", await deliver(hook.id, "{not json", { "X-Hub-Signature-256": `sha256=${"0".repeat(64)}`, "X-GitHub-Delivery": "x" }), 401, "invalid_signature"]);
    for (const [what, res, status, code] of refusals) {
      expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(status);
      expectErrorShape(res.body, code);
    }
    expect(await rolloutIds(selector)).toEqual([]);

    // Replays: the first delivery of an id runs, the second is 409 and runs nothing.
    const first = await standard(hook.id, hook.secret, body, "msg_once");
    expect(first.status).toBe(202);
    const replay = await standard(hook.id, hook.secret, body, "msg_once");
    expect(replay.status).toBe(409);
    expectErrorShape(replay.body, "replayed");
    const gh = await github(hook.id, hook.secret, body, "gh-delivery-1");
    expect(gh.status).toBe(202);
    const ghReplay = await github(hook.id, hook.secret, body, "gh-delivery-1");
    expect(ghReplay.status).toBe(409);
    expectErrorShape(ghReplay.body, "replayed");
    expect(await rolloutIds(selector)).toEqual([first.body.rolloutId, gh.body.rolloutId]);

    const refused = (await auditOf(hook.id)).filter((r) => r.action === "CI_HOOK_REFUSED").map((r) => r.details.code).sort();
    expect(refused).toEqual([...Array(7).fill("invalid_signature"), "replayed", "replayed", "stale_timestamp", "stale_timestamp"].sort());
    // Counters reach /metrics within the isolate's flush window (core/metrics/record.ts), not at once.
    await vi.waitFor(async () => {
      const metrics = await api("GET", "/metrics", { token: admin.token });
      expect(String(metrics.body)).toMatch(/redforge_webhook_verification_failures_total\{reason="ci_invalid_signature"\}/);
    }, { timeout: 30_000, interval: 500 });
  // About 20 requests in sequence: the clean-clone CI once ran past 30 s with the machine loaded.
  }, 120_000);

  it("a signed payload without a flow file (a GitHub push event) is 400, starts nothing, and its delivery id stays usable", async () => {
    const selector = `ci=${unique("push")}`;
    await labelledInstance(selector.slice(3));
    const hook = await rolloutHook(selector);
    const push = JSON.stringify({ ref: "refs/heads/main", after: "abc123", commits: [] });
    const res = await github(hook.id, hook.secret, push, "gh-push-1");
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "validation_failed");
    expect(await rolloutIds(selector)).toEqual([]);
    const retry = await github(hook.id, hook.secret, JSON.stringify({ flows: flowFile("v2") }), "gh-push-1");
    expect(retry.status, JSON.stringify(retry.body)).toBe(202);
    const ping = await github(hook.id, hook.secret, JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1 }), crypto.randomUUID(), { "X-GitHub-Event": "ping" });
    expect(ping.status).toBe(200);
    expect(ping.body.status).toBe("pong");
  });

  it("a promote hook puts the flow file on a pipeline stage, and its approval rule applies", async () => {
    const tag = unique("pp");
    await labelledInstance(`${tag}-prod`);
    const pipeline = await api("POST", "/api/pipelines", { token: operator.token, body: { name: unique("pl"), stages: [{ name: "prod", selector: `ci=${tag}-prod`, requiresApproval: true }] } });
    expect(pipeline.status).toBe(201);
    const hook = await api("POST", "/api/webhooks/ci", { token: operator.token, body: { name: unique("hook"), action: { kind: "promote", pipelineId: pipeline.body.id, stage: "prod" } } });
    expect(hook.status).toBe(201);
    const res = await standard(hook.body.id, hook.body.secret, JSON.stringify({ flows: flowFile("v2") }));
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ promotionId: expect.any(String), rolloutId: null, status: "awaiting_approval" });
    // The hook acts as the operator who made it: that operator is the requester, so cannot approve it either way.
    const promotion = await api("GET", `/api/pipelines/promotions/${res.body.promotionId}`, { token: viewer.token });
    expect(promotion.body.requestedBy).toBe(operator.id);
    const approved = await api("POST", `/api/pipelines/promotions/${res.body.promotionId}/approve`, { token: admin.token });
    expect(approved.status, JSON.stringify(approved.body)).toBe(202);
    expect(await rolloutIds(`ci=${tag}-prod`)).toEqual([approved.body.rolloutId]);
  });

  it("a rotated secret replaces the old one at once; a deleted hook refuses everything; a disabled creator stops the hook", async () => {
    const selector = `ci=${unique("rot")}`;
    await labelledInstance(selector.slice(3));
    const hook = await rolloutHook(selector);
    const rotated = await api("POST", `/api/webhooks/ci/${hook.id}/rotate`, { token: operator.token });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(hook.secret);
    const body = JSON.stringify({ flows: flowFile("v2") });
    expectErrorShape((await standard(hook.id, hook.secret, body)).body, "invalid_signature");
    expect((await standard(hook.id, rotated.body.secret, body)).status).toBe(202);

    const creator = await createUser("operator");
    const own = await api("POST", "/api/webhooks/ci", { token: creator.token, body: { name: unique("hook"), action: { kind: "rollout", selector, rollout: { waves: ["100%"] } } } });
    await withDb((db) => db.execute(sql`update users set disabled = true where id = ${creator.id}`));
    const stopped = await standard(own.body.id, own.body.secret, body);
    expect(stopped.status).toBe(403);
    expectErrorShape(stopped.body, "hook_actor_disabled");

    expect((await api("DELETE", `/api/webhooks/ci/${hook.id}`, { token: operator.token })).status).toBe(204);
    expectErrorShape((await standard(hook.id, rotated.body.secret, body)).body, "invalid_signature");
    expect((await rolloutIds(selector)).length).toBe(1);
  });

  it("re-seal moves a hook's secret onto a new encryption key; deliveries verify under the new key alone", async () => {
    const a = toBase64(randomBytes(32)), b = toBase64(randomBytes(32));
    const selector = `ci=${unique("key")}`;
    await labelledInstance(selector.slice(3));
    const created = await withKeys({ current: a }, "POST", "/api/webhooks/ci", { token: operator.token, body: { name: unique("hook"), action: { kind: "rollout", selector, rollout: { waves: ["100%"] } } } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const sealedKid = async () => sealedKeyId(((await withDb((db) => db.execute(sql`select secret_sealed from ci_hooks where id = ${created.body.id}`))).rows[0] as { secret_sealed: string }).secret_sealed);
    expect(await sealedKid()).toBe(await keyId(a));
    const resealed = await withKeys({ current: b, previous: [a] }, "POST", "/api/admin/reseal", { token: admin.token, body: {} });
    expect(resealed.status, JSON.stringify(resealed.body)).toBe(200);
    expect(resealed.body.columns["ci_hooks.secret_sealed"].resealed).toBeGreaterThanOrEqual(1);
    expect(await sealedKid()).toBe(await keyId(b));
    const body = JSON.stringify({ flows: flowFile("v2") });
    const delivered = await withKeys({ current: b }, "POST", `/api/webhooks/ci/${created.body.id}`, { raw: body, headers: { "Content-Type": "application/json", ...(await webhookHeaders(created.body.secret, body)) } });
    expect(delivered.status, JSON.stringify(delivered.body)).toBe(202);
  });
});
