/**
 * Retention: /api/config sets days per table (and syncs the QStash schedule);
 * the purge job deletes rows older than that, in batches, and never a row
 * inside it — tested with rows a minute either side of the boundary. The
 * audit chain loses only a verified prefix, after a signed checkpoint;
 * /api/audit/verify then starts at the checkpoint.
 *
 * The job runs "as of" a moment (`at`) so the boundary can sit between two
 * rows this file wrote; everything older than that boundary is purged, which
 * is why this suite does not share the boundary with rows other suites need.
 */
import { env } from "cloudflare:test";
import { Client } from "@upstash/qstash";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aiDecisionLogs, auditCheckpoints, auditLogs, instanceHealth } from "../../db/schema.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, withDb, type TestUser } from "./helpers.ts";
import { call, callJob, PUBLIC_URL } from "./qstashJobs.ts";

const DAY = 86_400_000;
let admin: TestUser;
let instanceId: string;

const qstash = () => new Client({ baseUrl: env.QSTASH_URL!, token: env.QSTASH_TOKEN!, retry: false });
const putConfig = (body: unknown, token = admin.token) => call("PUT", "/api/config", { token, body });

beforeAll(async () => {
  admin = await createUser("admin");
  instanceId = (await createInstance(admin.token, (await createCluster(admin.token)).id)).id;
});

afterAll(async () => {
  // Leave retention off for the suites that follow.
  await putConfig({ retention: { audit_logs: null, ai_decision_logs: null, instance_health: null } });
});

describe("GET/PUT /api/config", () => {
  it("defaults to no scheduled reports and keeping everything", async () => {
    const res = await api("GET", "/api/config", { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body.retention).toHaveProperty("audit_logs");
    expect(res.body.reports).toHaveProperty("kinds");
  });

  it("PUT stores the document, syncs the QStash schedules and is audited", async () => {
    const res = await putConfig({
      reports: { schedule: "0 2 * * *", kinds: ["audit_trail", "access"], framework: "soc2", format: "ndjson", period: "day" },
      retention: { audit_logs: 365, ai_decision_logs: 90, instance_health: 7 },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.schedules).toEqual({ complianceExport: "0 2 * * *", retentionPurge: expect.any(String) });
    const compliance = await qstash().schedules.get("redforge-compliance-export");
    expect(compliance.cron).toBe("0 2 * * *");
    expect(compliance.destination).toBe(`${PUBLIC_URL}/api/jobs/compliance-export`);
    const purge = await qstash().schedules.get("redforge-retention-purge");
    expect(purge.destination).toBe(`${PUBLIC_URL}/api/jobs/retention-purge`);
    expect((await api("GET", "/api/config", { token: admin.token })).body.retention).toEqual({ audit_logs: 365, ai_decision_logs: 90, instance_health: 7 });
    const audit = await api("GET", "/api/audit?action=CONFIG_UPDATED&limit=1", { token: admin.token });
    expect(audit.body.items[0].details.after.retention.audit_logs).toBe(365);

    // Scheduled exports off: the schedule goes away.
    await putConfig({ reports: { schedule: null, kinds: ["audit_trail"] } });
    await expect(qstash().schedules.get("redforge-compliance-export")).rejects.toThrow();
  });

  it("bad documents are 400 with a code, and change nothing", async () => {
    const before = (await api("GET", "/api/config", { token: admin.token })).body;
    for (const body of [
      { reports: { schedule: "every day", kinds: ["audit_trail"] } },
      { reports: { schedule: "0 2 * * *", kinds: [] } },
      { reports: { schedule: "0 2 * * *", kinds: ["audit_trail", "audit_trail"] } },
      { retention: { audit_logs: 0 } },
      { retention: { audit_logs: 30, orders: 5 } },
      {},
    ]) {
      const res = await putConfig(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expectErrorShape(res.body, "validation_failed");
    }
    expect((await api("GET", "/api/config", { token: admin.token })).body).toEqual(before);
    const operator = await createUser("operator");
    expect((await putConfig({ retention: { audit_logs: 1 } }, operator.token)).status).toBe(403);
  });
});

describe("POST /api/jobs/retention-purge", () => {
  it("refuses calls without a valid QStash signature", async () => {
    expect((await api("POST", "/api/jobs/retention-purge", { body: {} })).status).toBe(401);
    const forged = await callJob("/api/jobs/retention-purge", {}, "not-the-signing-key");
    expect(forged.status).toBe(401);
    expectErrorShape(forged.body, "invalid_signature");
  });

  it("deletes rows older than retention in batches and keeps every row inside it", async () => {
    const at = new Date(Date.now() + DAY);
    const minute = 60_000;
    // Relative to `at`: 5 days of AI decisions, 2 days of health.
    const ages = { ancient: 30 * DAY, justOutside: 5 * DAY + minute, justInside: 5 * DAY - minute, fresh: DAY };
    const decisions = await withDb((db) => db.insert(aiDecisionLogs).values(
      Object.entries(ages).map(([label, age]) => ({ instanceId, flowName: `retention-${label}`, timestamp: new Date(at.getTime() - age) })),
    ).returning({ id: aiDecisionLogs.id, flowName: aiDecisionLogs.flowName }));
    // 7 rows past 2 days (more than one batch of 3), 2 inside.
    const healthAges = [10, 9, 8, 7, 6, 5].map((d) => d * DAY).concat([2 * DAY + minute, 2 * DAY - minute, DAY]);
    const health = await withDb((db) => db.insert(instanceHealth).values(healthAges.map((age) => ({
      instanceId, checkedAt: new Date(at.getTime() - age), state: "running", live: true, ready: true,
    }))).returning({ id: instanceHealth.id, checkedAt: instanceHealth.checkedAt }));

    await putConfig({ retention: { audit_logs: null, ai_decision_logs: 5, instance_health: 2 } });
    const res = await callJob("/api/jobs/retention-purge", { at: at.toISOString(), batchSize: 3 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byTable = Object.fromEntries(res.body.tables.map((t: any) => [t.table, t]));
    expect(byTable.audit_logs.skipped).toBe("no_retention");
    expect(byTable.instance_health.deleted).toBeGreaterThanOrEqual(7);

    const keptDecisions = await withDb((db) => db.select({ flowName: aiDecisionLogs.flowName }).from(aiDecisionLogs).where(inArray(aiDecisionLogs.id, decisions.map((d) => d.id))));
    expect(keptDecisions.map((d) => d.flowName).sort()).toEqual(["retention-fresh", "retention-justInside"]);
    const keptHealth = await withDb((db) => db.select({ id: instanceHealth.id }).from(instanceHealth).where(inArray(instanceHealth.id, health.map((h) => h.id))));
    const cutoff = at.getTime() - 2 * DAY;
    expect(keptHealth.map((h) => h.id).sort()).toEqual(health.filter((h) => h.checkedAt.getTime() >= cutoff).map((h) => h.id).sort());
    expect(keptHealth).toHaveLength(2);

    const audit = await api("GET", "/api/audit?action=RETENTION_PURGED&limit=1", { token: admin.token });
    expect(audit.body.items[0].details.tables.ai_decision_logs).toMatchObject({ retentionDays: 5, deleted: expect.any(Number) });
  });

  it("a backlog larger than one run's batches is finished by the next run", async () => {
    const at = new Date(Date.now() + DAY);
    const backlog = await withDb((db) => db.insert(instanceHealth).values(Array.from({ length: 7 }, () => ({
      instanceId, checkedAt: new Date(at.getTime() - 10 * DAY), state: "running", live: true, ready: true,
    }))).returning({ id: instanceHealth.id }));
    await putConfig({ retention: { audit_logs: null, ai_decision_logs: null, instance_health: 2 } });
    const first = await callJob("/api/jobs/retention-purge", { at: at.toISOString(), batchSize: 2, maxBatches: 2 });
    const health = first.body.tables.find((t: any) => t.table === "instance_health");
    expect(health).toMatchObject({ deleted: 4, more: true });
    const second = await callJob("/api/jobs/retention-purge", { at: at.toISOString(), batchSize: 100 });
    expect(second.body.tables.find((t: any) => t.table === "instance_health").more).toBe(false);
    const left = await withDb((db) => db.select({ id: instanceHealth.id }).from(instanceHealth).where(inArray(instanceHealth.id, backlog.map((b) => b.id))));
    expect(left).toEqual([]);
  });

  it("audit rows: a verified prefix goes behind a signed checkpoint, rows inside retention stay, verify starts there", async () => {
    // Two audit rows with the boundary between them.
    const before = await createUser("viewer");
    await api("POST", "/api/reports", { token: before.token, body: {} }); // 403 → an audit row
    const [outside] = await withDb((db) => db.select({ id: auditLogs.id, timestamp: auditLogs.timestamp }).from(auditLogs).where(eq(auditLogs.userId, before.id)));
    await new Promise((r) => setTimeout(r, 20));
    const boundary = new Date();
    await new Promise((r) => setTimeout(r, 20));
    const after = await createUser("viewer");
    await api("POST", "/api/reports", { token: after.token, body: {} });
    const [inside] = await withDb((db) => db.select({ id: auditLogs.id }).from(auditLogs).where(eq(auditLogs.userId, after.id)));
    expect(outside!.timestamp.getTime()).toBeLessThan(boundary.getTime());

    await putConfig({ retention: { audit_logs: 1, ai_decision_logs: null, instance_health: null } });
    // Default batch sizes: the whole suite has written thousands of audit rows before this one, and
    // a run removes at most batchSize × maxBatches of them (50 × 20 stopped short of `outside`).
    const res = await callJob("/api/jobs/retention-purge", { at: new Date(boundary.getTime() + DAY).toISOString() });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const purged = res.body.tables.find((t: any) => t.table === "audit_logs");
    expect(purged.skipped, JSON.stringify(purged)).toBeUndefined();
    expect(purged.deleted).toBeGreaterThan(0);

    const ids = await withDb((db) => db.select({ id: auditLogs.id }).from(auditLogs).where(inArray(auditLogs.id, [outside!.id, inside!.id])));
    expect(ids.map((r) => r.id)).toEqual([inside!.id]);
    const [checkpoint] = await withDb((db) => db.select().from(auditCheckpoints).where(eq(auditCheckpoints.id, purged.checkpointId)));
    expect(checkpoint!.upToId).toBeGreaterThanOrEqual(outside!.id);
    expect(checkpoint!.upToId).toBeLessThan(inside!.id);
    expect(checkpoint!.signature).toMatch(/^[0-9a-f]{64}$/);

    const verify = await api("GET", "/api/audit/verify", { token: admin.token });
    expect(verify.body, JSON.stringify(verify.body)).toMatchObject({ ok: true, checkpoint: { id: checkpoint!.id, upToId: checkpoint!.upToId } });
    // The purge itself is on record, naming its checkpoint.
    const audit = await api("GET", "/api/audit?action=RETENTION_PURGED&limit=1", { token: admin.token });
    expect(audit.body.items[0].details.tables.audit_logs).toMatchObject({ checkpointId: checkpoint!.id, deleted: purged.deleted });

    // A forged checkpoint (hash changed without the key) is found; restored afterwards.
    await withDb((db) => db.update(auditCheckpoints).set({ upToHash: "f".repeat(64) }).where(eq(auditCheckpoints.id, checkpoint!.id)));
    try {
      const forged = await api("GET", "/api/audit/verify", { token: admin.token });
      expect(forged.body).toMatchObject({ ok: false, firstBroken: { reason: "checkpoint_signature_invalid", id: checkpoint!.upToId } });
    } finally {
      await withDb((db) => db.update(auditCheckpoints).set({ upToHash: checkpoint!.upToHash }).where(eq(auditCheckpoints.id, checkpoint!.id)));
    }
    expect((await api("GET", "/api/audit/verify", { token: admin.token })).body.ok).toBe(true);

    // The export still verifies: its first row links to the checkpoint.
    const exported = await api("GET", "/api/audit/export?format=ndjson", { token: admin.token });
    expect(exported.headers.get("X-Audit-Verified")).toBe("true");
    const lines = (exported.body as string).trim().split("\n");
    const trailer = JSON.parse(lines.at(-1)!);
    expect(trailer.checkpoint).toMatchObject({ id: checkpoint!.id, upToHash: checkpoint!.upToHash });
    expect(JSON.parse(lines[0]!).prev_hash).toBe(checkpoint!.upToHash);
  });

  it("a chain broken inside the prefix is not purged or signed over", async () => {
    const victim = await createUser("viewer");
    await api("POST", "/api/reports", { token: victim.token, body: {} });
    const [row] = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.userId, victim.id)));
    await new Promise((r) => setTimeout(r, 20));
    const boundary = new Date();
    await withDb((db) => db.update(auditLogs).set({ action: "NOTHING_TO_SEE" }).where(eq(auditLogs.id, row!.id)));
    try {
      await putConfig({ retention: { audit_logs: 1, ai_decision_logs: null, instance_health: null } });
      const res = await callJob("/api/jobs/retention-purge", { at: new Date(boundary.getTime() + DAY).toISOString() });
      const purged = res.body.tables.find((t: any) => t.table === "audit_logs");
      expect(purged).toMatchObject({ skipped: "audit_chain_broken", deleted: 0, firstBroken: { id: row!.id, reason: "hash_mismatch" } });
      expect(await withDb((db) => db.select({ id: auditLogs.id }).from(auditLogs).where(eq(auditLogs.id, row!.id)))).toHaveLength(1);
    } finally {
      await withDb((db) => db.update(auditLogs).set({ action: row!.action }).where(eq(auditLogs.id, row!.id)));
    }
  });
});
