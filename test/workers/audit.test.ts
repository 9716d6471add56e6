/**
 * GET /api/audit, /verify and /export. Other files share this database and
 * append to the chain concurrently, so assertions are about this file's own
 * rows, and any tampering is undone inside the test that does it.
 */
import { eq, inArray, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs } from "../../db/schema.ts";
import { api, createCluster, createUser, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let viewer: TestUser;

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
});

const verify = async () => {
  const res = await api("GET", "/api/audit/verify", { token: viewer.token });
  expect(res.status).toBe(200);
  return res.body;
};

/** The audit row a cluster's creation wrote. */
const clusterRow = async (clusterId: string) => {
  const [row] = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, clusterId)));
  if (!row) throw new Error(`no audit row for cluster ${clusterId}`);
  return row;
};

/** Minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = "", record: string[] = [], quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { record.push(field); field = ""; }
    else if (ch === "\n") { record.push(field.replace(/\r$/, "")); records.push(record); record = []; field = ""; }
    else field += ch;
  }
  return records;
}

describe("audit log", () => {
  it("lists newest first with filters and keyset pagination", async () => {
    const author = await createUser("admin");
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await createCluster(author.token));
    const q = `userId=${author.id}&action=CLUSTER_REGISTERED`;
    const p1 = await api("GET", `/api/audit?${q}&limit=2`, { token: viewer.token });
    expect(p1.status).toBe(200);
    expect(p1.body.items).toHaveLength(2);
    expect(p1.body.nextCursor).toEqual(expect.any(String));
    const p2 = await api("GET", `/api/audit?${q}&limit=2&cursor=${p1.body.nextCursor}`, { token: viewer.token });
    expect(p2.body.items).toHaveLength(1);
    expect(p2.body.nextCursor).toBeNull();
    const all = [...p1.body.items, ...p2.body.items];
    expect(all.map((r: any) => r.resourceId)).toEqual(made.map((m) => m.id).reverse());
    expect(all.every((r: any) => typeof r.hash === "string" && typeof r.prevHash === "string")).toBe(true);

    const one = await api("GET", `/api/audit?resourceType=cluster&resourceId=${made[1]!.id}`, { token: viewer.token });
    expect(one.body.items.map((r: any) => r.action)).toEqual(["CLUSTER_REGISTERED"]);

    const at = new Date(all[1].timestamp).toISOString();
    const since = await api("GET", `/api/audit?${q}&from=${encodeURIComponent(at)}`, { token: viewer.token });
    expect(since.body.items.map((r: any) => r.id)).toEqual(all.slice(0, 2).map((r: any) => r.id));
    const until = await api("GET", `/api/audit?${q}&to=${encodeURIComponent(at)}`, { token: viewer.token });
    expect(until.body.items.map((r: any) => r.id)).toEqual(all.slice(1).map((r: any) => r.id));

    expect((await api("GET", "/api/audit?limit=501", { token: viewer.token })).status).toBe(400);
    expect((await api("GET", "/api/audit?from=yesterday", { token: viewer.token })).status).toBe(400);
    const bad = await api("GET", "/api/audit?cursor=bm9wZQ", { token: viewer.token });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_cursor");
  });

  it("verify is ok on an untouched chain", async () => {
    await createCluster(admin.token);
    const res = await verify();
    expect(res, JSON.stringify(res)).toMatchObject({ ok: true, head: { id: expect.any(Number), hash: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(res.rows).toBeGreaterThan(0);
  });

  it("an edited row is a hash_mismatch on itself, a deleted row a prev_hash_mismatch on its successor; both restored", async () => {
    const edited = await clusterRow((await createCluster(admin.token)).id);
    const victim = await clusterRow((await createCluster(admin.token)).id);
    await createCluster(admin.token); // victim must have a successor
    const [successor] = await withDb((db) => db.execute<{ id: string }>(sql`select id from audit_logs where id > ${victim.id} order by id limit 1`)).then((r) => r.rows);
    try {
      await withDb((db) => db.execute(sql`update audit_logs set details = ${JSON.stringify({ name: "forged" })}::jsonb where id = ${edited.id}`));
      expect(await verify()).toMatchObject({ ok: false, firstBroken: { id: edited.id, reason: "hash_mismatch", actual: edited.hash } });
    } finally {
      // The exact original jsonb: the chain must verify again for every other file.
      await withDb((db) => db.execute(sql`update audit_logs set details = ${JSON.stringify(edited.details)}::jsonb where id = ${edited.id}`));
    }
    expect((await verify()).ok).toBe(true);

    try {
      await withDb((db) => db.delete(auditLogs).where(eq(auditLogs.id, victim.id)));
      expect(await verify()).toMatchObject({
        ok: false, firstBroken: { id: Number(successor!.id), reason: "prev_hash_mismatch", expected: victim.prevHash, actual: victim.hash },
      });
    } finally {
      await withDb((db) => db.insert(auditLogs).values(victim).onConflictDoNothing());
    }
    expect((await verify()).ok).toBe(true);
  });

  it("20 concurrent writers leave one unforked chain", async () => {
    const names = Array.from({ length: 20 }, () => unique("conc"));
    const created = await Promise.all(names.map((name) => api("POST", "/api/clusters", { token: admin.token, body: { name } })));
    expect(created.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect((await verify()).ok).toBe(true);
    const ids = created.map((r) => r.body.id as string);
    const rows = await withDb((db) => db.select().from(auditLogs).where(inArray(auditLogs.resourceId, ids)));
    expect(rows).toHaveLength(20);
    expect(new Set(rows.map((r) => r.prevHash)).size).toBe(20);
    // Each links to whatever row precedes it (other files may interleave): one chain, no fork.
    for (const r of rows) {
      const [prev] = await withDb((db) => db.execute<{ hash: string }>(sql`select hash from audit_logs where id < ${r.id} order by id desc limit 1`)).then((x) => x.rows);
      expect(r.prevHash).toBe(prev!.hash);
    }
  });

  it("exports NDJSON with every row and a trailer naming the verified head; the export itself is audited", async () => {
    const before = await verify();
    const res = await api("GET", "/api/audit/export?format=ndjson", { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("application/x-ndjson");
    expect(res.headers.get("Content-Disposition")).toMatch(/^attachment; filename="audit-.*\.ndjson"$/);
    const lines = (res.body as string).trim().split("\n").map((l) => JSON.parse(l));
    const trailer = lines.pop();
    expect(trailer).toMatchObject({ verified: true, generatedAt: expect.any(String), rows: lines.length });
    expect(trailer.head).toEqual({ id: lines.at(-1).id, hash: lines.at(-1).hash });
    expect(res.headers.get("X-Audit-Head-Hash")).toBe(trailer.head.hash);
    // Writers in other files may have appended since verify: its head is in the file, unchanged.
    expect(lines.find((l) => l.id === before.head.id)?.hash).toBe(before.head.hash);
    // From genesis, or (after a retention purge in another file) from the signed checkpoint the trailer names.
    expect(lines[0].prev_hash).toBe(trailer.checkpoint?.upToHash ?? "0".repeat(64));
    for (let i = 1; i < lines.length; i++) expect(lines[i].prev_hash).toBe(lines[i - 1].hash);

    const exported = await api("GET", `/api/audit?userId=${viewer.id}&action=AUDIT_EXPORTED`, { token: viewer.token });
    expect(exported.body.items[0].details).toMatchObject({ format: "ndjson", rows: trailer.rows, headId: trailer.head.id, headHash: trailer.head.hash, verified: true });
    const after = await verify();
    expect(after.ok).toBe(true);
    expect(after.head.id).toBeGreaterThan(trailer.head.id);
  });

  it("exports a from-bounded range as CSV, linked to the row before it", async () => {
    const mark = await clusterRow((await createCluster(admin.token)).id);
    const from = encodeURIComponent(mark.timestamp.toISOString());
    const res = await api("GET", `/api/audit/export?format=csv&from=${from}`, { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("text/csv");
    const [header, ...records] = parseCsv(res.body as string);
    expect(header).toEqual(["id", "timestamp", "user_id", "action", "resource_type", "resource_id", "details", "ip_address", "user_agent", "status_code", "prev_hash", "hash"]);
    const last = records.pop()!;
    expect(last[0]).toBe("#trailer");
    const trailer = JSON.parse(last[1]!);
    expect(trailer).toMatchObject({ verified: true, rows: records.length });
    const col = (name: string) => header!.indexOf(name);
    expect(Number(records[0]![col("id")])).toBeLessThanOrEqual(mark.id);
    const mine = records.find((r) => Number(r[col("id")]) === mark.id)!;
    expect(JSON.parse(mine[col("details")]!)).toEqual(mark.details);
    expect(mine[col("hash")]).toBe(mark.hash);
    expect(trailer.head).toEqual({ id: Number(records.at(-1)![col("id")]), hash: records.at(-1)![col("hash")] });
    for (let i = 1; i < records.length; i++) expect(records[i]![col("prev_hash")]).toBe(records[i - 1]![col("hash")]);
  });

  it("an export before any row is empty with a null head", async () => {
    const res = await api("GET", "/api/audit/export?to=2000-01-01T00:00:00Z", { token: viewer.token });
    expect(res.status).toBe(200);
    // A one-line file is itself valid JSON, so the helper hands back the parsed trailer.
    const trailer = typeof res.body === "string" ? JSON.parse(res.body) : res.body;
    expect(trailer).toMatchObject({ head: null, rows: 0, verified: true });
  });

  it("no route edits or deletes audit rows, not even for an admin", async () => {
    const { id } = await clusterRow((await createCluster(admin.token)).id);
    for (const method of ["PATCH", "PUT", "DELETE"]) {
      for (const path of ["/api/audit", `/api/audit/${id}`, "/api/audit/verify", "/api/audit/export"]) {
        const res = await api(method, path, { token: admin.token, body: { details: {} } });
        expect([404, 405], `${method} ${path}`).toContain(res.status);
      }
    }
    const [row] = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.id, id)));
    expect(row!.action).toBe("CLUSTER_REGISTERED");
    expect((await verify()).ok).toBe(true);
  });
});
