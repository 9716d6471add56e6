/**
 * A bridge's `cluster.warnings` report (issue 12): what it found wrong with its cluster — a broker
 * that drops an offline session's queue — reaches the people who read the API and the console, not
 * only the bridge's log. Signed like every report; each one replaces the list, so an empty one clears it.
 */
import { SELF } from "cloudflare:test";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alertRules, instances } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createInstance, createUser, unique, withDb, type TestUser } from "./helpers.ts";
import { callJob } from "./qstashJobs.ts";

let admin: TestUser;
let viewer: TestUser;

async function newCluster() {
  const res = await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("warn") } });
  expect(res.status).toBe(201);
  return res.body as { id: string; webhookSecret: string; warnings: unknown[] };
}

async function report(cluster: { id: string; webhookSecret: string }, body: unknown, opts: { secret?: string; unsigned?: boolean } = {}) {
  const text = JSON.stringify(body);
  const headers = opts.unsigned ? {} : await webhookHeaders(opts.secret ?? cluster.webhookSecret, text);
  return api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

const queueLimit = {
  code: "broker_queue_limit",
  message: "the broker at mqtt://broker:1883/ kept only 100 of 1200 QoS 1 messages for an offline persistent session: … Mosquitto: set \"max_queued_messages 0\"",
  detectedAt: "2026-12-04T15:00:00.000Z",
};

const detail = async (id: string, token = viewer.token) => (await api("GET", `/api/clusters/${id}`, { token })).body;
const listed = async (id: string) => ((await api("GET", "/api/clusters?limit=200", { token: viewer.token })).body.items as any[]).find((c) => c.id === id);

beforeAll(async () => {
  [admin, viewer] = await Promise.all([createUser("admin"), createUser("viewer")]);
});

// The test database outlives a run: a rule left enabled would be evaluated by every later run.
const createdRules: string[] = [];
afterAll(async () => {
  if (createdRules.length) await withDb((db) => db.update(alertRules).set({ enabled: false }).where(inArray(alertRules.id, createdRules)));
});

describe("cluster warnings from the bridge", () => {
  it("a new cluster has none", async () => {
    const cluster = await newCluster();
    expect(cluster.warnings).toEqual([]);
    expect((await detail(cluster.id)).warnings).toEqual([]);
  });

  it("a signed report shows on GET /api/clusters/:id and in the list; an empty one clears it", async () => {
    const cluster = await newCluster();
    const sent = await report(cluster, { type: "cluster.warnings", warnings: [queueLimit] });
    expect(sent.status).toBe(202);
    expect(sent.body).toEqual({ accepted: true, known: true });
    expect((await detail(cluster.id)).warnings).toEqual([queueLimit]);
    expect((await listed(cluster.id)).warnings).toEqual([queueLimit]);

    expect((await report(cluster, { type: "cluster.warnings", warnings: [] })).status).toBe(202);
    expect((await detail(cluster.id)).warnings).toEqual([]);
    expect((await listed(cluster.id)).warnings).toEqual([]);
  });

  it("a forged or unsigned report is 401 and shows nothing", async () => {
    const cluster = await newCluster();
    const forged = await report(cluster, { type: "cluster.warnings", warnings: [queueLimit] }, { secret: `whsec_${btoa("not-the-cluster-secret-32-bytes!")}` });
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe("invalid_signature");
    const unsigned = await report(cluster, { type: "cluster.warnings", warnings: [queueLimit] }, { unsigned: true });
    expect(unsigned.status).toBe(401);
    // Nor may another cluster's secret set them.
    const other = await newCluster();
    expect((await report({ id: cluster.id, webhookSecret: other.webhookSecret }, { type: "cluster.warnings", warnings: [queueLimit] })).status).toBe(401);
    expect((await detail(cluster.id)).warnings).toEqual([]);
  });

  it("what the bridge sends is bounded: an unknown code, an overlong message or more than 10 warnings is 400 and changes nothing", async () => {
    const cluster = await newCluster();
    await report(cluster, { type: "cluster.warnings", warnings: [queueLimit] });
    const bad = [
      [{ ...queueLimit, code: "<script>" }],
      [{ ...queueLimit, message: "x".repeat(2001) }],
      [{ ...queueLimit, message: "" }],
      [{ ...queueLimit, detectedAt: "yesterday" }],
      Array.from({ length: 11 }, () => queueLimit),
    ];
    for (const warnings of bad) {
      const res = await report(cluster, { type: "cluster.warnings", warnings });
      expect(res.status, JSON.stringify(warnings).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe("validation_failed");
    }
    expect((await detail(cluster.id)).warnings).toEqual([queueLimit]);
  });

  it("watchers of /ws/fleet are told at once, so an open console shows it without a reload", async () => {
    const cluster = await newCluster();
    const res = await SELF.fetch(`http://redforge.test/ws/fleet?token=${viewer.token}`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const events: any[] = [];
    ws.addEventListener("message", (e) => { events.push(JSON.parse(e.data as string)); });
    ws.accept();
    try {
      expect((await report(cluster, { type: "cluster.warnings", warnings: [queueLimit] })).status).toBe(202);
      const match = () => events.find((e) => e.event === "cluster:warnings" && e.data.clusterId === cluster.id);
      for (let i = 0; i < 500 && !match(); i++) await new Promise((r) => setTimeout(r, 20));
      expect(match()?.data.warnings, JSON.stringify(events)).toEqual([queueLimit]);
    } finally {
      ws.close();
    }
  });

  it("a `cluster_warning` alert rule fires for a warned cluster running the team's instances, and resolves when the warning is cleared", async () => {
    const team = unique("t");
    const cluster = await newCluster();
    const inst = await createInstance(admin.token, cluster.id);
    await withDb((db) => db.update(instances).set({ team }).where(eq(instances.id, inst.id)));
    const rule = await api("POST", "/api/alerts/rules", { token: admin.token, body: { team, name: "warned", kind: "cluster_warning", clearEvaluations: 1 } });
    expect(rule.status, JSON.stringify(rule.body)).toBe(201);
    createdRules.push(rule.body.id);
    const evaluate = async () => {
      const res = await callJob("/api/jobs/alerts-evaluate", {});
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.errors.filter((e: any) => e.ruleId === rule.body.id)).toEqual([]);
    };
    const alertsOf = async () => ((await api("GET", `/api/alerts?team=${team}&kind=cluster_warning`, { token: viewer.token })).body.items as any[]).filter((a) => a.kind === "cluster_warning");

    await evaluate();
    expect(await alertsOf()).toEqual([]);
    await report(cluster, { type: "cluster.warnings", warnings: [queueLimit] });
    await evaluate();
    const [fired] = await alertsOf();
    expect(fired).toMatchObject({ subject: cluster.id, status: "firing", details: { warnings: [queueLimit] } });
    expect(fired.summary).toContain("broker_queue_limit");

    await report(cluster, { type: "cluster.warnings", warnings: [] });
    await evaluate();
    expect((await alertsOf()).map((a) => a.status)).toEqual(["resolved"]);
  });
});
