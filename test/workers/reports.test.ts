/**
 * Compliance reports: built for a time range, stored in the REPORTS bucket
 * (Miniflare's local R2), listed, downloaded with the digest that the audit
 * log recorded at creation; the seed's HIPAA shape and the SOC 2 / GDPR ones.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { aiDecisionLogs, roles } from "../../db/schema.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";
import { call, callJob } from "./qstashJobs.ts";
import { decodeCsvCell, parseCsv } from "../../core/audit/csv.ts";

let admin: TestUser;
let instanceId: string;
let flowName: string;
const start = new Date(Date.now() - 60_000);
const later = () => new Date(Date.now() + 60_000).toISOString();

async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function download(id: string, token = admin.token) {
  const res = await fetchRaw(`/api/reports/${id}/download`, token);
  return { status: res.status, headers: res.headers, bytes: await res.arrayBuffer() };
}

async function fetchRaw(path: string, token: string) {
  const { SELF } = await import("cloudflare:test");
  return SELF.fetch(`http://redforge.test${path}`, { headers: { Authorization: `Bearer ${token}` } });
}

async function create(body: Record<string, unknown>, token = admin.token) {
  return api("POST", "/api/reports", { token, body: { from: start.toISOString(), to: later(), ...body } });
}

beforeAll(async () => {
  admin = await createUser("admin");
  const cluster = await createCluster(admin.token);
  instanceId = (await createInstance(admin.token, cluster.id)).id;
  flowName = unique("triage");
  await withDb((db) => db.insert(aiDecisionLogs).values([
    { instanceId, flowName, model: "llama3", provider: "ollama", prompt: "patient reports chest pain", response: "route to cardiology", inputTokens: 12, outputTokens: 5, costUsd: "0.00001700" },
    { instanceId, flowName, model: "llama3", provider: "ollama", prompt: "refill request", response: "route to pharmacy", inputTokens: 8, outputTokens: 4, costUsd: "0.00001200" },
  ]));
});

describe("POST /api/reports", () => {
  it("stores the report, answers its digest and size, and records the digest in the audit log", async () => {
    const res = await create({ kind: "audit_trail" });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ kind: "audit_trail", framework: null, format: "json", downloadUrl: `/api/reports/${res.body.id}/download` });
    expect(res.body.digest).toMatch(/^[0-9a-f]{64}$/);

    // The object in the bucket is exactly what the digest names.
    const object = await env.REPORTS.get(res.body.storageKey);
    const stored = await object!.arrayBuffer();
    expect(stored.byteLength).toBe(res.body.size);
    expect(await sha256Hex(stored)).toBe(res.body.digest);

    const audit = await api("GET", `/api/audit?action=REPORT_CREATED&resourceId=${res.body.id}`, { token: admin.token });
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0].details).toMatchObject({ digest: res.body.digest, algorithm: "sha256", size: res.body.size, storageKey: res.body.storageKey, trigger: "on_demand" });

    const doc = JSON.parse(new TextDecoder().decode(stored));
    expect(doc.reportType).toBe("AUDIT_TRAIL");
    expect(doc.sections.integrity[0].verified).toBe(true);
    // Rows carry their chain links, as in the audit export.
    expect(doc.sections.auditTrail[0]).toHaveProperty("prev_hash");
  });

  it("downloads the stored bytes with the digest header, and the download is audited", async () => {
    const created = await create({ kind: "access", format: "ndjson" });
    const got = await download(created.body.id);
    expect(got.status).toBe(200);
    expect(got.headers.get("X-Report-Digest")).toBe(`sha256=${created.body.digest}`);
    expect(await sha256Hex(got.bytes)).toBe(created.body.digest);
    const lines = new TextDecoder().decode(got.bytes).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ type: "report", kind: "access", reportType: "ACCESS" });
    expect(lines.slice(1).every((l) => typeof l.section === "string")).toBe(true);
    const audit = await api("GET", `/api/audit?action=REPORT_DOWNLOADED&resourceId=${created.body.id}`, { token: admin.token });
    expect(audit.body.items[0].details.digest).toBe(created.body.digest);
  });

  it("the seed's HIPAA shape: AI decisions with prompts, access logs and security incidents", async () => {
    // A refused call is a security incident.
    const viewer = await createUser("viewer");
    expect((await create({ kind: "audit_trail" }, viewer.token)).status).toBe(403);

    const ai = await create({ kind: "ai_decisions", framework: "hipaa" });
    expect(ai.status, JSON.stringify(ai.body)).toBe(201);
    expect(ai.body.sections).toEqual(["aiDecisions"]);
    const doc = JSON.parse(new TextDecoder().decode((await download(ai.body.id)).bytes));
    expect(doc).toMatchObject({ reportType: "HIPAA_AUDIT", framework: "hipaa", kind: "ai_decisions" });
    expect(doc.dateRange.start).toBe(start.toISOString());
    const ours = doc.sections.aiDecisions.filter((d: any) => d.flow_name === flowName);
    expect(ours.map((d: any) => d.prompt).sort()).toEqual(["patient reports chest pain", "refill request"]);
    expect(ours[0]).toMatchObject({ model: "llama3", instance_id: instanceId, redacted: false });

    const trail = await create({ kind: "audit_trail", framework: "hipaa" });
    const trailDoc = JSON.parse(new TextDecoder().decode((await download(trail.body.id)).bytes));
    expect(Object.keys(trailDoc.sections).sort()).toEqual(["auditTrail", "integrity", "securityIncidents"]);
    expect(trailDoc.sections.securityIncidents.some((r: any) => r.user_id === viewer.id && r.action === "UNAUTHORIZED_ACCESS")).toBe(true);
    expect(trailDoc.evidences.securityIncidents).toMatch(/164\.308/);

    const access = await create({ kind: "access", framework: "hipaa" });
    const accessDoc = JSON.parse(new TextDecoder().decode((await download(access.body.id)).bytes));
    // Earlier reports and downloads are themselves access to sensitive data.
    expect(accessDoc.sections.accessLogs.some((r: any) => r.action === "REPORT_DOWNLOADED" && r.resource_id === ai.body.id)).toBe(true);
  });

  it("SOC 2 and GDPR shapes carry their own sections per kind", async () => {
    const soc2 = await create({ kind: "access", framework: "soc2" });
    const soc2Doc = JSON.parse(new TextDecoder().decode((await download(soc2.body.id)).bytes));
    expect(soc2Doc.reportType).toBe("SOC2_AUDIT");
    expect(Object.keys(soc2Doc.sections).sort()).toEqual(["accessByUser", "accessChanges", "accessReview"]);
    expect(soc2Doc.sections.accessReview.some((u: any) => u.user_id === admin.id && u.role === "admin")).toBe(true);
    // No password hashes in an access review.
    expect(JSON.stringify(soc2Doc)).not.toContain("pbkdf2");

    const gdpr = await create({ kind: "ai_decisions", framework: "gdpr", format: "csv" });
    const csv = new TextDecoder().decode((await download(gdpr.body.id)).bytes);
    const [head, ...rest] = csv.trim().split("\r\n");
    expect(head!.split(",")[0]).toBe("section");
    expect(rest.at(-1)).toMatch(/^#report,/);
    const processing = rest.find((l) => l.startsWith("processingActivities,") && l.includes(flowName));
    expect(processing).toContain(",2,"); // two calls of that flow
    expect(rest.at(-1)).toContain("GDPR_RECORDS");
  });

  it("a role with reports but not ai_prompts gets decisions without their text", async () => {
    const roleName = unique("compliance");
    await withDb((db) => db.insert(roles).values({ name: roleName, permissions: [{ resource: "reports", action: "*" }] }));
    const officer = await createUser(roleName);
    const res = await create({ kind: "ai_decisions" }, officer.token);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const doc = JSON.parse(new TextDecoder().decode((await download(res.body.id, officer.token)).bytes));
    const ours = doc.sections.decisions.filter((d: any) => d.flow_name === flowName);
    expect(ours).toHaveLength(2);
    expect(ours.every((d: any) => d.prompt === null && d.response === null && d.redacted === true)).toBe(true);
  });

  it("the data retention report names each table's retention and what is past it", async () => {
    const res = await create({ kind: "data_retention" });
    const doc = JSON.parse(new TextDecoder().decode((await download(res.body.id)).bytes));
    expect(doc.sections.tables.map((t: any) => t.table).sort()).toEqual(["ai_decision_logs", "audit_logs", "instance_health"]);
    for (const t of doc.sections.tables) expect(t).toHaveProperty("compliant");
  });

  it("bad input is a 4xx with a code", async () => {
    const inverted = await create({ kind: "audit_trail", from: later(), to: start.toISOString() });
    expect(inverted.status).toBe(400);
    expectErrorShape(inverted.body, "invalid_range");
    const tooLong = await create({ kind: "audit_trail", from: "2020-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z" });
    expectErrorShape(tooLong.body, "range_too_long");
    const badKind = await create({ kind: "everything" });
    expect(badKind.status).toBe(400);
    expectErrorShape(badKind.body, "validation_failed");
    const badFramework = await create({ kind: "access", framework: "pci" });
    expectErrorShape(badFramework.body, "validation_failed");
    expectErrorShape((await api("GET", `/api/reports/${crypto.randomUUID()}/download`, { token: admin.token })).body, "report_not_found");
    expect((await api("GET", "/api/reports/not-a-uuid", { token: admin.token })).status).toBe(400);
  });
});

describe("GET /api/reports", () => {
  it("lists reports newest first with cursor pagination and a kind filter", async () => {
    const a = await create({ kind: "data_retention" });
    const b = await create({ kind: "data_retention" });
    const first = await api("GET", "/api/reports?kind=data_retention&limit=1", { token: admin.token });
    expect(first.status).toBe(200);
    expect(first.body.items[0].id).toBe(b.body.id);
    expect(first.body.items[0]).toMatchObject({ digest: b.body.digest, size: b.body.size, trigger: "on_demand" });
    const second = await api("GET", `/api/reports?kind=data_retention&limit=1&cursor=${first.body.nextCursor}`, { token: admin.token });
    expect(second.body.items[0].id).toBe(a.body.id);
    const one = await api("GET", `/api/reports/${a.body.id}`, { token: admin.token });
    expect(one.body.storageKey).toBe(a.body.storageKey);
  });

  it("a report whose file left the bucket answers 410, not 500", async () => {
    const res = await create({ kind: "data_retention" });
    await env.REPORTS.delete(res.body.storageKey);
    const got = await api("GET", `/api/reports/${res.body.id}/download`, { token: admin.token });
    expect(got.status).toBe(410);
    expectErrorShape(got.body, "report_file_missing");
  });
});

describe("POST /api/jobs/compliance-export (the scheduled export)", () => {
  it("writes the configured reports for the previous period once, however often it is delivered", async () => {
    const off = await call("PUT", "/api/config", { token: admin.token, body: { reports: { schedule: null, kinds: ["audit_trail"] } } });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect((await callJob("/api/jobs/compliance-export")).body.skipped).toBe("scheduled_exports_disabled");

    const on = await call("PUT", "/api/config", { token: admin.token, body: { reports: { schedule: "5 0 * * *", kinds: ["audit_trail", "ai_decisions"], framework: "hipaa", format: "json", period: "day" } } });
    expect(on.status, JSON.stringify(on.body)).toBe(200);
    // As of tomorrow 00:05 UTC, the previous period is today.
    const now = new Date();
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const at = new Date(today + 86_400_000 + 5 * 60_000).toISOString();
    const first = await callJob("/api/jobs/compliance-export", { at });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ from: new Date(today).toISOString(), to: new Date(today + 86_400_000).toISOString() });
    expect(first.body.written.map((w: any) => w.kind).sort()).toEqual(["ai_decisions", "audit_trail"]);

    const again = await callJob("/api/jobs/compliance-export", { at });
    expect(again.body.written).toEqual([]);
    expect(again.body.existing.sort()).toEqual(first.body.written.map((w: any) => w.id).sort());

    const listed = await api("GET", "/api/reports?trigger=scheduled&limit=50", { token: admin.token });
    const ai = listed.body.items.find((r: any) => r.id === first.body.written.find((w: any) => w.kind === "ai_decisions").id);
    expect(ai).toMatchObject({ framework: "hipaa", trigger: "scheduled", createdBy: null });
    const got = await download(ai.id);
    expect(await sha256Hex(got.bytes)).toBe(ai.digest);
    const doc = JSON.parse(new TextDecoder().decode(got.bytes));
    // Scheduled reports leave prompt text out unless the config asks for it.
    const ours = doc.sections.aiDecisions.filter((d: any) => d.flow_name === flowName);
    expect(ours).toHaveLength(2);
    expect(ours.every((d: any) => d.prompt === null)).toBe(true);
    const audit = await api("GET", `/api/audit?action=REPORT_CREATED&resourceId=${ai.id}`, { token: admin.token });
    expect(audit.body.items[0].details).toMatchObject({ digest: ai.digest, trigger: "scheduled" });

    await call("PUT", "/api/config", { token: admin.token, body: { reports: { schedule: null, kinds: ["audit_trail"] } } });
  });
});

describe("CSV reports and formula injection (issue 12, item 5)", () => {
  it("a hostile User-Agent reaches an audit_trail CSV report only as a neutralised cell", async () => {
    const agent = "=cmd|' /C calc'!A0";
    const cluster = await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("csv") }, headers: { "User-Agent": agent } });
    expect(cluster.status).toBe(201);
    const res = await create({ kind: "audit_trail", format: "csv" });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const text = new TextDecoder().decode((await download(res.body.id)).bytes);
    const [header, ...records] = parseCsv(text);
    expect(records.pop()![0]!.text).toBe("#report");
    const col = (name: string) => header!.findIndex((f) => f.text === name);
    const mine = records.find((r) => r[col("resource_id")]?.text === cluster.body.id && r[col("section")]!.text === "auditTrail")!;
    expect(mine[col("user_agent")]!.text).toBe(`'${agent}`);
    expect(decodeCsvCell(mine[col("user_agent")]!)).toBe(agent);
    for (const r of records) for (const f of r) expect(/^[=+\-@\t\r]/.test(f.text), JSON.stringify(f.text)).toBe(false);
  });
});
