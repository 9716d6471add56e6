/**
 * Checkpointed workflows in the control plane: the bridge's signed checkpoint
 * webhook (forged and foreign batches store nothing, a resent record is stored
 * once, the run's state follows its newest record), the operators' API (list
 * with filters, one run with its checkpoints, replay and cancel with their
 * 4xx, RBAC and audit), and the directives the bridge collects and reports.
 */
import { and, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let operator: TestUser;
let viewer: TestUser;
interface Cluster { id: string; webhookSecret: string }

async function post(cluster: Cluster, body: unknown, secret = cluster.webhookSecret) {
  const text = JSON.stringify(body);
  const headers = await webhookHeaders(secret, text);
  return api("POST", `/api/webhooks/clusters/${cluster.id}/checkpoints`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

let clock = Date.parse("2026-12-02T10:00:00.000Z");
const rec = (instanceId: string, workflowId: string, step: string, phase: string, extra: Record<string, unknown> = {}) => ({
  checkpointId: crypto.randomUUID(), instanceId, runtimeId: instanceId, workflowId, kind: "doc-ingest", step, phase,
  state: { pages: Number(step.slice(1)) * 10 }, inputHash: "a".repeat(64), completed: [], at: new Date((clock += 1000)).toISOString(), ...extra,
});

async function setup() {
  const cluster = (await createCluster(admin.token)) as Cluster;
  const instance = await createInstance(admin.token, cluster.id);
  return { cluster, instanceId: instance.id as string };
}

/** A run with two completed steps and a third begun, as the node writes them. */
async function runningRun(cluster: Cluster, instanceId: string, workflowId = `wf-${crypto.randomUUID().slice(0, 8)}`) {
  const res = await post(cluster, { records: [
    rec(instanceId, workflowId, "s1", "started"), rec(instanceId, workflowId, "s1", "completed", { completed: ["s1"] }),
    rec(instanceId, workflowId, "s2", "started", { completed: ["s1"] }), rec(instanceId, workflowId, "s2", "completed", { completed: ["s1", "s2"] }),
    rec(instanceId, workflowId, "s3", "started", { completed: ["s1", "s2"] }),
  ] });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const list = await api("GET", `/api/workflows?instanceId=${instanceId}`, { token: viewer.token });
  const run = (list.body.items as { workflowId: string; id: string }[]).find((w) => w.workflowId === workflowId)!;
  return { workflowId, id: run.id };
}

beforeAll(async () => {
  [admin, operator, viewer] = await Promise.all([createUser("admin"), createUser("operator"), createUser("viewer")]);
});

describe("checkpoint webhook", () => {
  it("refuses a forged batch and another cluster's instance, storing nothing", async () => {
    const { cluster, instanceId } = await setup();
    const other = (await createCluster(admin.token)) as Cluster;
    const forged = await post(cluster, { records: [rec(instanceId, "wf-forged", "s1", "started")] }, other.webhookSecret);
    expect(forged.status).toBe(401);
    expectErrorShape(forged.body, "invalid_signature");
    const foreign = await post(other, { records: [rec(instanceId, "wf-foreign", "s1", "started")] });
    expect(foreign.status).toBe(403);
    expectErrorShape(foreign.body, "instance_not_in_cluster");
    const list = await api("GET", `/api/workflows?instanceId=${instanceId}`, { token: viewer.token });
    expect(list.body.items).toEqual([]);
  });

  it("rejects records that do not match the protocol with 400", async () => {
    const { cluster, instanceId } = await setup();
    const res = await post(cluster, { records: [rec(instanceId, "wf-bad", "s1", "exploded")] });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "validation_failed");
  });

  it("stores a resent record once, and the run's state follows its newest record", async () => {
    const { cluster, instanceId } = await setup();
    const first = rec(instanceId, "wf-once", "s1", "started");
    expect((await post(cluster, { records: [first] })).body).toMatchObject({ accepted: true, stored: 1, directives: [] });
    expect((await post(cluster, { records: [first] })).body).toMatchObject({ stored: 0 });
    const done = rec(instanceId, "wf-once", "s2", "finished", { completed: ["s1", "s2"] });
    // An older record arriving after a newer one does not move the run back.
    const late = rec(instanceId, "wf-once", "s1", "completed", { completed: ["s1"], at: new Date(clock - 60_000).toISOString() });
    expect((await post(cluster, { records: [done] })).status).toBe(202);
    expect((await post(cluster, { records: [late] })).body).toMatchObject({ stored: 1 });
    const list = await api("GET", `/api/workflows?instanceId=${instanceId}&state=completed`, { token: viewer.token });
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({ workflowId: "wf-once", kind: "doc-ingest", state: "completed", lastStep: "s2", lastPhase: "finished", completed: ["s1", "s2"], pendingAction: null });
    const detail = await api("GET", `/api/workflows/${list.body.items[0].id}`, { token: viewer.token });
    expect(detail.status).toBe(200);
    expect(detail.body.checkpoints.map((k: { phase: string }) => k.phase)).toEqual(["finished", "started", "completed"]);
  });
});

describe("workflows API", () => {
  it("lists with filters and answers 400/404 for bad input", async () => {
    const { cluster, instanceId } = await setup();
    const { id } = await runningRun(cluster, instanceId);
    const running = await api("GET", `/api/workflows?instanceId=${instanceId}&state=running`, { token: viewer.token });
    expect(running.body.items).toMatchObject([{ id, state: "running", lastStep: "s3", lastPhase: "started", completed: ["s1", "s2"] }]);
    expect((await api("GET", `/api/workflows?instanceId=${instanceId}&state=failed`, { token: viewer.token })).body.items).toEqual([]);
    const badState = await api("GET", "/api/workflows?state=paused", { token: viewer.token });
    expect(badState.status).toBe(400);
    expectErrorShape(badState.body, "validation_failed");
    const badId = await api("GET", "/api/workflows/not-a-uuid", { token: viewer.token });
    expect(badId.status).toBe(400);
    const missing = await api("GET", `/api/workflows/${crypto.randomUUID()}`, { token: viewer.token });
    expect(missing.status).toBe(404);
    expectErrorShape(missing.body, "workflow_not_found");
    expect((await api("GET", "/api/workflows")).status).toBe(401);
  });

  it("replay: viewers may not, operators may; the bridge gets the directive and reports it; all audited", async () => {
    const { cluster, instanceId } = await setup();
    const { id, workflowId } = await runningRun(cluster, instanceId);
    const refused = await api("POST", `/api/workflows/${id}/replay`, { token: viewer.token });
    expect(refused.status).toBe(403);
    const unknownStep = await api("POST", `/api/workflows/${id}/replay`, { token: operator.token, body: { fromStep: "s9" } });
    expect(unknownStep.status).toBe(404);
    expectErrorShape(unknownStep.body, "checkpoint_not_found");
    const extra = await api("POST", `/api/workflows/${id}/replay`, { token: operator.token, body: { from: "s1" } });
    expect(extra.status).toBe(400);

    const res = await api("POST", `/api/workflows/${id}/replay`, { token: operator.token });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ id, pendingAction: "replay" });
    const again = await api("POST", `/api/workflows/${id}/cancel`, { token: operator.token });
    expect(again.status).toBe(409);
    expectErrorShape(again.body, "workflow_action_pending");

    // The bridge's next call collects it: step s3 had begun, so the replay runs it again.
    const poll = await post(cluster, { records: [] });
    expect(poll.body.directives).toEqual([{ id, instanceId, workflowId, action: "replay",
      record: expect.objectContaining({ workflowId, kind: "doc-ingest", step: "s3", phase: "handed_over", resume: "before", completed: ["s1", "s2"], state: { pages: 30 } }) }]);
    // Sent: not handed out again until it is answered or 30 s pass.
    expect((await post(cluster, { records: [] })).body.directives).toEqual([]);
    await post(cluster, { records: [], results: [{ id, action: "replay", outcome: "applied" }] });
    const after = await api("GET", `/api/workflows/${id}`, { token: viewer.token });
    expect(after.body).toMatchObject({ pendingAction: null, lastAction: { action: "replay", outcome: "applied" } });

    const trail = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.resourceType, "workflow"), eq(auditLogs.resourceId, id))));
    expect(trail.map((t) => t.action)).toContain("WORKFLOW_REPLAY_REQUESTED");
    expect(trail.find((t) => t.action === "WORKFLOW_REPLAY_REQUESTED")).toMatchObject({ userId: operator.id });
  });

  it("replay from a completed step continues after it; a completed run cannot be replayed", async () => {
    const { cluster, instanceId } = await setup();
    const { id } = await runningRun(cluster, instanceId);
    expect((await api("POST", `/api/workflows/${id}/replay`, { token: admin.token, body: { fromStep: "s1" } })).status).toBe(202);
    const poll = await post(cluster, { records: [] });
    expect(poll.body.directives[0].record).toMatchObject({ step: "s1", resume: "after", completed: ["s1"] });
    await post(cluster, { records: [], results: [{ id, action: "replay", outcome: "applied" }] });

    const wf = `wf-${crypto.randomUUID().slice(0, 8)}`;
    await post(cluster, { records: [rec(instanceId, wf, "s1", "finished", { completed: ["s1"] })] });
    const list = await api("GET", `/api/workflows?instanceId=${instanceId}&state=completed`, { token: viewer.token });
    const done = list.body.items.find((w: { workflowId: string }) => w.workflowId === wf);
    const res = await api("POST", `/api/workflows/${done.id}/replay`, { token: admin.token });
    expect(res.status).toBe(409);
    expectErrorShape(res.body, "workflow_completed");
  });

  it("cancel: pending until the runtime's cancelled checkpoint arrives; a cancelled run cannot be cancelled again", async () => {
    const { cluster, instanceId } = await setup();
    const { id, workflowId } = await runningRun(cluster, instanceId);
    expect((await api("POST", `/api/workflows/${id}/cancel`, { token: viewer.token })).status).toBe(403);
    const res = await api("POST", `/api/workflows/${id}/cancel`, { token: operator.token });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ state: "running", pendingAction: "cancel" });
    const poll = await post(cluster, { records: [] });
    expect(poll.body.directives).toEqual([{ id, instanceId, workflowId, action: "cancel" }]);
    await post(cluster, {
      records: [rec(instanceId, workflowId, "s3", "cancelled", { completed: ["s1", "s2"] })],
      results: [{ id, action: "cancel", outcome: "applied" }],
    });
    const after = await api("GET", `/api/workflows/${id}`, { token: viewer.token });
    expect(after.body).toMatchObject({ state: "cancelled", pendingAction: null, lastAction: { action: "cancel", outcome: "applied" } });
    const twice = await api("POST", `/api/workflows/${id}/cancel`, { token: operator.token });
    expect(twice.status).toBe(409);
    expectErrorShape(twice.body, "workflow_finished");
    const trail = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.resourceType, "workflow"), eq(auditLogs.action, "WORKFLOW_CANCEL_REQUESTED"), eq(auditLogs.resourceId, id))));
    expect(trail).toHaveLength(1);
  });
});
