/**
 * Pipelines through the API: stages as selectors, a promotion that needs no
 * approval starts its rollout at once, one that does waits for a second
 * person with deployments:approve (the requester's own approval is 403
 * `self_approval`, an operator's is 403 `forbidden`), rejection, one open
 * promotion per stage, and the stage view (its last completed promotion),
 * which a later stage promotes from.
 */
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { roles } from "../../db/schema.ts";
import { sha256Hex } from "../../protocol/encoding.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let operator: TestUser;
let approverA: TestUser;
let approverB: TestUser;
let viewer: TestUser;

const WAIT = { timeout: 30_000, interval: 100 };
const flows = (label: string) => [{ id: "t1", type: "tab", label }, { id: "n1", type: "inject", z: "t1", wires: [] }];

/** Instances labelled `pl=<value>` (labels written directly: the labels API is tested with rollouts). */
async function labelledInstances(value: string, n: number): Promise<string[]> {
  const cluster = await createCluster(admin.token);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const inst = await createInstance(admin.token, cluster.id);
    await withDb((db) => db.execute(sql`update instances set labels = ${JSON.stringify({ pl: value })}::jsonb where id = ${inst.id}`));
    ids.push(inst.id);
  }
  return ids;
}

const rolloutCount = async (selector: string) =>
  withDb(async (db) => Number(((await db.execute(sql`select count(*)::int as n from rollouts where selector = ${selector}`)).rows[0] as { n: number }).n));

const rolloutRow = async (id: string) =>
  withDb(async (db) => (await db.execute(sql`select id, status, selector, created_by from rollouts where id = ${id}`)).rows[0] as { id: string; status: string; selector: string; created_by: string } | undefined);

/** Waits until the RolloutRun has finished the rollout, then writes `status` as its outcome. */
async function rolloutEnded(id: string, status: "completed" | "failed") {
  await vi.waitFor(async () => expect(["failed", "completed", "aborted"]).toContain((await rolloutRow(id))?.status), WAIT);
  const failure = status === "failed" ? JSON.stringify({ code: "failure_budget_exceeded", message: "wave 1: 1 of 1 instances failed" }) : null;
  await withDb((db) => db.execute(sql`update rollouts set status = ${status}, failure = ${failure}::jsonb where id = ${id}`));
}

async function newPipeline(tag: string) {
  const res = await api("POST", "/api/pipelines", {
    token: operator.token,
    body: {
      name: unique("pl"),
      stages: [
        { name: "dev", selector: `pl=${tag}-dev`, rollout: { waves: ["100%"] } },
        { name: "prod", selector: `pl=${tag}-prod`, requiresApproval: true, rollout: { waves: [1, "100%"], onFailure: "leave" } },
      ],
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

beforeAll(async () => {
  const grants = [{ resource: "deployments", action: "read" }, { resource: "deployments", action: "create" }, { resource: "deployments", action: "approve" }];
  await withDb((db) => db.insert(roles).values({ name: "release-approver", permissions: grants })
    .onConflictDoUpdate({ target: roles.name, set: { permissions: grants } }));
  [admin, operator, approverA, approverB, viewer] = await Promise.all([
    createUser("admin"), createUser("operator"), createUser("release-approver"), createUser("release-approver"), createUser("viewer"),
  ]);
});

describe("pipelines", () => {
  it("are created with their stages checked, listed and shown with no version yet", async () => {
    const tag = unique("p");
    const p = await newPipeline(tag);
    expect(p.stages.map((s: any) => [s.name, s.requiresApproval, s.current, s.pending])).toEqual([["dev", false, null, null], ["prod", true, null, null]]);
    const list = await api("GET", "/api/pipelines?limit=200", { token: viewer.token });
    expect(list.body.items.find((i: any) => i.id === p.id)).toMatchObject({ name: p.name, stages: ["dev", "prod"] });
    const bad = await api("POST", "/api/pipelines", { token: operator.token, body: { name: unique("pl"), stages: [{ name: "x", selector: "env in (a" }] } });
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "invalid_selector");
    const badWaves = await api("POST", "/api/pipelines", { token: operator.token, body: { name: unique("pl"), stages: [{ name: "x", selector: "a=b", rollout: { waves: ["150%"] } }] } });
    expect(badWaves.status).toBe(400);
    const dup = await api("POST", "/api/pipelines", { token: operator.token, body: { name: p.name, stages: [{ name: "x", selector: "a=b" }] } });
    expect(dup.status).toBe(409);
    expect((await api("POST", "/api/pipelines", { token: viewer.token, body: { name: unique("pl"), stages: [{ name: "x", selector: "a=b" }] } })).status).toBe(403);
  });

  it("a stage that requires approval waits for a second person: the requester's own approval is 403, an operator's too", async () => {
    const tag = unique("p");
    const p = await newPipeline(tag);
    await labelledInstances(`${tag}-prod`, 2);
    const selector = `pl=${tag}-prod`;
    const req = await api("POST", `/api/pipelines/${p.id}/stages/prod/promote`, { token: approverA.token, body: { flows: flows("v2") } });
    expect(req.status, JSON.stringify(req.body)).toBe(202);
    expect(req.body).toMatchObject({ status: "awaiting_approval", rolloutId: null, requestedBy: approverA.id, source: { kind: "flows" } });
    expect(req.body.digest).toBe(await sha256Hex(JSON.stringify(flows("v2"))));
    expect(await rolloutCount(selector)).toBe(0);

    const own = await api("POST", `/api/pipelines/promotions/${req.body.id}/approve`, { token: approverA.token });
    expect(own.status).toBe(403);
    expectErrorShape(own.body, "self_approval");
    const op = await api("POST", `/api/pipelines/promotions/${req.body.id}/approve`, { token: operator.token });
    expect(op.status).toBe(403);
    expectErrorShape(op.body, "forbidden");
    expect(await rolloutCount(selector)).toBe(0);
    const second = await api("POST", `/api/pipelines/${p.id}/stages/prod/promote`, { token: operator.token, body: { flows: flows("v3") } });
    expect(second.status).toBe(409);
    expectErrorShape(second.body, "promotion_in_progress");
    const view = await api("GET", `/api/pipelines/${p.id}`, { token: viewer.token });
    expect(view.body.stages[1].pending).toEqual({ promotionId: req.body.id, status: "awaiting_approval" });

    const ok = await api("POST", `/api/pipelines/promotions/${req.body.id}/approve`, { token: approverB.token });
    expect(ok.status, JSON.stringify(ok.body)).toBe(202);
    expect(ok.body).toMatchObject({ status: "rolling_out", decidedBy: approverB.id, rolloutId: expect.any(String) });
    const rollout = await rolloutRow(ok.body.rolloutId);
    expect(rollout).toMatchObject({ selector, created_by: approverB.id });
    expect(await rolloutCount(selector)).toBe(1);
    const again = await api("POST", `/api/pipelines/promotions/${req.body.id}/approve`, { token: admin.token });
    expect(again.status).toBe(409);
    expectErrorShape(again.body, "promotion_not_awaiting_approval");

    const audit = await withDb(async (db) => (await db.execute(sql`select action, user_id from audit_logs where resource_type = 'promotion' and resource_id = ${req.body.id} order by id`)).rows);
    expect(audit).toEqual([
      { action: "PROMOTION_REQUESTED", user_id: approverA.id },
      { action: "UNAUTHORIZED_ACCESS", user_id: approverA.id },
      { action: "UNAUTHORIZED_ACCESS", user_id: operator.id },
      { action: "PROMOTION_APPROVED", user_id: approverB.id },
      { action: "PROMOTION_STARTED", user_id: approverB.id },
    ].filter((r) => r.action.startsWith("PROMOTION")));
  });

  it("a rejected promotion starts nothing and cannot be approved afterwards", async () => {
    const tag = unique("p");
    const p = await newPipeline(tag);
    await labelledInstances(`${tag}-prod`, 1);
    const req = await api("POST", `/api/pipelines/${p.id}/stages/prod/promote`, { token: operator.token, body: { flows: flows("v2") } });
    expect(req.status).toBe(202);
    const rej = await api("POST", `/api/pipelines/promotions/${req.body.id}/reject`, { token: approverA.token, body: { reason: "not this week" } });
    expect(rej.status).toBe(200);
    expect(rej.body).toMatchObject({ status: "rejected", reason: "not this week", decidedBy: approverA.id });
    expect((await api("POST", `/api/pipelines/promotions/${req.body.id}/approve`, { token: approverB.token })).status).toBe(409);
    expect(await rolloutCount(`pl=${tag}-prod`)).toBe(0);
  });

  it("a stage without approval rolls out at once; its last completed promotion is what the stage runs, and the next stage promotes from it", async () => {
    const tag = unique("p");
    const p = await newPipeline(tag);
    await labelledInstances(`${tag}-dev`, 1);
    await labelledInstances(`${tag}-prod`, 1);
    const noVersion = await api("POST", `/api/pipelines/${p.id}/stages/prod/promote`, { token: operator.token, body: { fromStage: "dev" } });
    expect(noVersion.status).toBe(409);
    expectErrorShape(noVersion.body, "stage_has_no_version");
    expect((await api("POST", `/api/pipelines/${p.id}/stages/qa/promote`, { token: operator.token, body: { flows: flows("v2") } })).status).toBe(404);
    expect((await api("POST", `/api/pipelines/${p.id}/stages/dev/promote`, { token: operator.token, body: { flows: flows("v2"), versionId: crypto.randomUUID() } })).status).toBe(400);

    const dev = await api("POST", `/api/pipelines/${p.id}/stages/dev/promote`, { token: operator.token, body: { flows: flows("v2") } });
    expect(dev.status, JSON.stringify(dev.body)).toBe(202);
    expect(dev.body).toMatchObject({ status: "rolling_out", rolloutId: expect.any(String) });
    // No bridge runs these instances, so their deployments are refused. How a rollout ends is rollouts.test's subject: here
    // each rollout's end is written into its row once its RolloutRun is done with it, and the promotion must follow the row.
    await rolloutEnded(dev.body.rolloutId, "failed");
    const failed = await api("GET", `/api/pipelines/promotions/${dev.body.id}`, { token: viewer.token });
    expect(failed.body).toMatchObject({ status: "failed", failure: { code: "failure_budget_exceeded" } });

    const ok = await api("POST", `/api/pipelines/${p.id}/stages/dev/promote`, { token: operator.token, body: { flows: flows("v3") } });
    expect(ok.status).toBe(202);
    await rolloutEnded(ok.body.rolloutId, "completed");
    const view = await api("GET", `/api/pipelines/${p.id}`, { token: viewer.token });
    const digest = await sha256Hex(JSON.stringify(flows("v3")));
    expect(view.body.stages[0].current).toMatchObject({ promotionId: ok.body.id, digest });
    expect(view.body.stages[1].current).toBeNull();
    expect(view.body.promotions.map((x: any) => [x.id, x.status])).toEqual([[ok.body.id, "completed"], [dev.body.id, "failed"]]);

    const prod = await api("POST", `/api/pipelines/${p.id}/stages/prod/promote`, { token: operator.token, body: { fromStage: "dev" } });
    expect(prod.status, JSON.stringify(prod.body)).toBe(202);
    expect(prod.body).toMatchObject({ status: "awaiting_approval", digest, source: { kind: "stage", fromStage: "dev", promotionId: ok.body.id } });
    const started = await api("POST", `/api/pipelines/promotions/${prod.body.id}/approve`, { token: admin.token });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const flowsOf = await withDb(async (db) => (await db.execute(sql`select flows_digest from rollouts where id = ${started.body.rolloutId}`)).rows[0]);
    expect(flowsOf).toBeTruthy();

    const busy = await api("DELETE", `/api/pipelines/${p.id}`, { token: operator.token });
    expect([204, 409]).toContain(busy.status);
  });

  it("a promotion whose rollout cannot start is marked failed with the rollout's refusal", async () => {
    const tag = unique("p");
    const p = await newPipeline(tag);
    const res = await api("POST", `/api/pipelines/${p.id}/stages/dev/promote`, { token: operator.token, body: { flows: flows("v2") } });
    expect(res.status).toBe(409);
    expectErrorShape(res.body, "empty_selection");
    const view = await api("GET", `/api/pipelines/${p.id}`, { token: viewer.token });
    expect(view.body.promotions[0]).toMatchObject({ status: "failed", failure: { code: "empty_selection" } });
    expect((await api("DELETE", `/api/pipelines/${p.id}`, { token: operator.token })).status).toBe(204);
    expect((await api("GET", `/api/pipelines/${p.id}`, { token: viewer.token })).status).toBe(404);
  });
});
