/**
 * Live audit and who sees what on the streams: /ws/audit streams committed
 * audit rows (from a cursor too) to callers with audit:read and closes a
 * watcher whose access changed; fleet:alert on /ws/fleet reaches only
 * watchers with alerts:read; sensitive reads leave one audit row per request,
 * and the access report lists them.
 */
import { SELF } from "cloudflare:test";
import { and, count, desc, eq, inArray, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { aiDecisionLogs, alertRules, auditLogs, instances } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { auditRowHash } from "../../db/auditChain.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, openStream, unique, withDb, type TestUser } from "./helpers.ts";
import { callJob } from "./qstashJobs.ts";

const WAIT = { timeout: 15_000, interval: 25 };
let admin: TestUser;
let viewer: TestUser;

beforeAll(async () => {
  [admin, viewer] = await Promise.all([createUser("admin"), createUser("viewer")]);
});

type Socket = Awaited<ReturnType<typeof openStream>>;
const open = openStream;

/** `n` rows chained as appendAudit chains them (under its lock), in a few multi-row inserts rather than n round trips. */
async function appendBacklog(n: number) {
  await withDb((db) => db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(7470001)`);
    const [last] = await tx.select({ hash: auditLogs.hash }).from(auditLogs).orderBy(desc(auditLogs.id)).limit(1);
    let prevHash = last?.hash ?? "0".repeat(64);
    const rows = [];
    for (let i = 0; i < n; i++) {
      const timestamp = new Date();
      const entry = { userId: null, action: "TEST_BACKLOG", resourceType: "test", resourceId: null, details: null, ipAddress: null, userAgent: null, statusCode: null };
      const hash = await auditRowHash(prevHash, timestamp, entry);
      rows.push({ ...entry, timestamp, prevHash, hash });
      prevHash = hash;
    }
    for (let i = 0; i < rows.length; i += 400) await tx.insert(auditLogs).values(rows.slice(i, i + 400));
  }));
}

const entries = (s: Socket) => s.events.filter((e) => e.event === "audit:entry").map((e) => e.data);
const rowsOf = (userId: string, actions: string[]) =>
  withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.userId, userId), inArray(auditLogs.action, actions))));

describe("/ws/audit", () => {
  it("needs audit:read and a WebSocket upgrade; a bad cursor is 400", async () => {
    const key = await api("POST", "/api/api-keys", { token: viewer.token, body: { name: unique("k"), scopes: [{ resource: "instances", action: "read" }] } });
    expect(key.status).toBe(201);
    const denied = await SELF.fetch(`http://redforge.test/ws/audit?token=${key.body.key}`, { headers: { Upgrade: "websocket" } });
    expect(denied.status).toBe(403);
    expectErrorShape(await denied.json(), "forbidden");
    const plain = await api("GET", "/ws/audit", { token: viewer.token });
    expect(plain.status).toBe(426);
    const bad = await SELF.fetch(`http://redforge.test/ws/audit?after=-1&token=${viewer.token}`, { headers: { Upgrade: "websocket" } });
    expect(bad.status).toBe(400);
    expectErrorShape(await bad.json(), "validation_failed");
  });

  it("streams rows as they commit, catches a late subscriber up from its cursor, and records that the stream was opened", async () => {
    const live = await open("/ws/audit", viewer.token);
    await vi.waitFor(() => expect(live.events[0]?.event).toBe("audit:hello"), WAIT);
    const cursor = live.events[0].data.cursor as number;
    const name = unique("audited");
    const created = await api("POST", "/api/clusters", { token: admin.token, body: { name } });
    expect(created.status).toBe(201);
    const seen = await vi.waitFor(() => {
      const e = entries(live).find((x) => x.resourceId === created.body.id);
      expect(e).toBeDefined();
      return e;
    }, WAIT);
    expect(seen).toMatchObject({ action: "CLUSTER_REGISTERED", userId: admin.id, hash: expect.any(String), prevHash: expect.any(String) });
    // In id order, nothing before the cursor.
    const ids = entries(live).map((x) => x.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(Math.min(...ids)).toBeGreaterThan(cursor);

    const late = await open(`/ws/audit?after=${cursor}`, viewer.token);
    await vi.waitFor(() => expect(entries(late).some((x) => x.id === seen.id)).toBe(true), WAIT);
    expect(entries(late)[0].id).toBeGreaterThan(cursor);
    // Opening the stream is a sensitive read of the audit log.
    expect((await rowsOf(viewer.id, ["AUDIT_STREAM_OPENED"])).length).toBeGreaterThanOrEqual(2);
    live.ws.close();
    late.ws.close();
  });

  // Ids have holes (rolled-back appends, and retention tests purge a prefix of the shared log), so the
  // stream is checked against the rows themselves: from the resume point on, every row still in the log
  // up to the head the stream greeted with was delivered, in order, and no more than 1,000 of them.
  it("a cursor far behind resumes 1,000 rows back after an audit:gap, and skips no row after it", async () => {
    // Real chain rows (other suites verify the chain), as many as it takes to be more than 1,000 rows behind 0.
    // Counted in rows, not by the head id: retention.test.ts purges the log's prefix (the log is shared), so when
    // it ran first the head id was in the thousands with only a few hundred rows left, and no gap was sent.
    const rows = await withDb(async (db) => (await db.select({ n: count() }).from(auditLogs))[0]!.n);
    if (rows < 1_100) await appendBacklog(1_100 - rows);
    // A hole of 300 ids inside the last 1,000 rows (as rolled-back appends leave): counted by ids, the resume point would hold only 700 rows.
    await withDb((db) => db.execute(sql`select nextval(pg_get_serial_sequence('audit_logs', 'id')) from generate_series(1, 300)`));
    await appendBacklog(500);
    const s = await open("/ws/audit?after=0", viewer.token);
    await vi.waitFor(() => expect(s.events.find((e) => e.event === "audit:gap")).toBeDefined(), WAIT);
    const hello = s.events.find((e) => e.event === "audit:hello").data;
    const gap = s.events.find((e) => e.event === "audit:gap").data;
    expect(gap.after).toBe(0);
    expect(gap.resumeAfter).toBeGreaterThan(0);
    const inRange = () => withDb((db) => db.select({ id: auditLogs.id }).from(auditLogs)
      .where(and(sql`${auditLogs.id} > ${gap.resumeAfter}`, sql`${auditLogs.id} <= ${hello.head}`)).orderBy(auditLogs.id));
    const delivered = () => entries(s).map((x) => x.id as number);
    await vi.waitFor(async () => {
      const present = (await inRange()).map((r) => r.id);
      const got = new Set(delivered());
      expect(present.filter((id) => !got.has(id))).toEqual([]);
    }, { ...WAIT, timeout: 30_000 });
    const ids = delivered();
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(ids[0]).toBeGreaterThan(gap.resumeAfter);
    const upToHead = ids.filter((id) => id <= hello.head).length;
    // Exactly 1,000 unless a retention test purged part of that range before it was sent (the log is shared).
    const [oldest] = await withDb((db) => db.select({ first: sql<number>`min(${auditLogs.id})` }).from(auditLogs));
    if (oldest!.first <= ids[0]!) expect(upToHead).toBe(1_000);
    else expect(upToHead).toBeLessThanOrEqual(1_000);
    s.ws.close();
    // The backlog rows were chained like any append: the chain still verifies.
    const verify = await api("GET", "/api/audit/verify", { token: admin.token });
    expect(verify.body.ok, JSON.stringify(verify.body)).toBe(true);
  });

  it("a watcher disabled while watching is closed (4401) before the next entry; others keep streaming", async () => {
    const leaving = await createUser("viewer");
    const staying = await createUser("viewer");
    const a = await open("/ws/audit", leaving.token);
    const b = await open("/ws/audit", staying.token);
    await vi.waitFor(() => expect(a.events[0]?.event && b.events[0]?.event).toBe("audit:hello"), WAIT);
    expect((await api("PATCH", `/api/users/${leaving.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    const next = await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("after") } });
    await vi.waitFor(() => expect(entries(b).some((x) => x.resourceId === next.body.id)).toBe(true), WAIT);
    await vi.waitFor(() => expect(a.closed()).toBe(4401), WAIT);
    expect(entries(a).some((x) => x.resourceId === next.body.id)).toBe(false);
    b.ws.close();
  });
});

describe("fleet:alert reaches only watchers with alerts:read", () => {
  const rules: string[] = [];
  afterAll(async () => {
    if (rules.length) await withDb((db) => db.update(alertRules).set({ enabled: false }).where(inArray(alertRules.id, rules)));
  });

  it("a key scoped to instances:read watches instance events but gets no alert text", async () => {
    const team = unique("t");
    const cluster = await createCluster(admin.token);
    const inst = await createInstance(admin.token, cluster.id);
    await withDb((db) => db.update(instances).set({ status: "failed", team }).where(eq(instances.id, inst.id)));
    const rule = await api("POST", "/api/alerts/rules", { token: admin.token, body: { team, name: "down", kind: "instance_down" } });
    expect(rule.status).toBe(201);
    rules.push(rule.body.id);
    const key = await api("POST", "/api/api-keys", { token: viewer.token, body: { name: unique("k"), scopes: [{ resource: "instances", action: "read" }] } });
    const scoped = await open("/ws/fleet", key.body.key);
    const full = await open("/ws/fleet", viewer.token);

    expect((await callJob("/api/jobs/alerts-evaluate", {})).status).toBe(200);
    await vi.waitFor(() => expect(full.events.some((e) => e.event === "fleet:alert" && e.data.subject === inst.id)).toBe(true), WAIT);
    // An instance event after the alert reaches the scoped watcher: it is connected and would have had the alert by now.
    const text = JSON.stringify({ type: "instance.status", instanceId: inst.id, state: "failed", reason: "still down" });
    const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(res.status).toBe(202);
    await vi.waitFor(() => expect(scoped.events.some((e) => e.event === "instance:status" && e.data.instanceId === inst.id)).toBe(true), WAIT);
    expect(scoped.events.filter((e) => e.event === "fleet:alert")).toEqual([]);
    scoped.ws.close();
    full.ws.close();
  });
});

describe("sensitive reads are audited, one row per request", () => {
  it("user lists and user reads", async () => {
    const reader = await createUser("admin");
    expect((await api("GET", "/api/users?limit=50", { token: reader.token })).status).toBe(200);
    expect((await api("GET", `/api/users/${viewer.id}`, { token: reader.token })).status).toBe(200);
    const rows = await rowsOf(reader.id, ["USERS_LISTED", "USER_READ"]);
    expect(rows.map((r) => r.action).sort()).toEqual(["USERS_LISTED", "USER_READ"]);
    expect(rows.find((r) => r.action === "USER_READ")!.resourceId).toBe(viewer.id);
    expect((rows.find((r) => r.action === "USERS_LISTED")!.details as any).count).toBeGreaterThan(1);
  });

  it("secret names are recorded when shown, never their values; an instance without secrets is not", async () => {
    const reader = await createUser("viewer");
    const cluster = await createCluster(admin.token);
    const withSecrets = await createInstance(admin.token, cluster.id, { secrets: { API_TOKEN: "s3cr3t-value-xyz" } });
    const without = await createInstance(admin.token, cluster.id);
    const got = await api("GET", `/api/instances/${withSecrets.id}`, { token: reader.token });
    expect(got.body.secretNames).toEqual(["API_TOKEN"]);
    expect((await api("GET", `/api/instances/${without.id}`, { token: reader.token })).status).toBe(200);
    const rows = await rowsOf(reader.id, ["INSTANCE_SECRET_NAMES_READ"]);
    expect(rows.map((r) => r.resourceId)).toEqual([withSecrets.id]);
    expect(JSON.stringify(rows)).not.toContain("s3cr3t-value-xyz");
  });

  it("AI prompt text: one row per page shown with text; a viewer (text redacted) leaves none; the access report lists them", async () => {
    const operator = await createUser("operator");
    const reader = await createUser("viewer");
    const cluster = await createCluster(admin.token);
    const inst = await createInstance(admin.token, cluster.id);
    const flowName = unique("flow");
    await withDb((db) => db.insert(aiDecisionLogs).values(Array.from({ length: 3 }, (_, i) => ({
      instanceId: inst.id, flowName, model: "llama3", provider: "ollama", prompt: `question ${i}`, response: `answer ${i}`, inputTokens: 3, outputTokens: 2, costUsd: "0",
    }))));
    const page = await api("GET", `/api/ai/decisions?instanceId=${inst.id}&limit=10`, { token: operator.token });
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    expect(page.body.items).toHaveLength(3);
    expect(page.body.items[0].redacted).toBe(false);
    const redacted = await api("GET", `/api/ai/decisions?instanceId=${inst.id}`, { token: reader.token });
    expect(redacted.body.items[0].redacted).toBe(true);
    const rows = await rowsOf(operator.id, ["AI_PROMPTS_READ"]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details).toMatchObject({ count: 3 });
    expect(await rowsOf(reader.id, ["AI_PROMPTS_READ"])).toEqual([]);

    const from = new Date(Date.now() - 120_000).toISOString();
    const report = await api("POST", "/api/reports", { token: admin.token, body: { kind: "access", framework: "hipaa", format: "json", from, to: new Date(Date.now() + 60_000).toISOString() } });
    expect(report.status, JSON.stringify(report.body)).toBe(201);
    const file = await SELF.fetch(`http://redforge.test/api/reports/${report.body.id}/download`, { headers: { Authorization: `Bearer ${admin.token}` } });
    const doc = await file.text();
    expect(doc).toContain(rows[0]!.hash);
  });
});
