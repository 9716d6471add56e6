/**
 * The batched chain append (db/auditChain.ts appendStatement): the lock and a
 * transaction's whole batch go to Postgres in one message, and Postgres
 * computes the hashes. These cases prove the chain it writes is the same
 * chain the verifier (and the offline export check) recomputes in JS, that
 * concurrent batches do not fork or interleave, and that /api/audit/verify
 * still finds an edited and a deleted row. Other files append concurrently,
 * so assertions are about this file's rows; tampering is undone in place.
 */
import { inArray, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { appendAudit, hashedTextAround, auditRowHash, canonicalJson, GENESIS_HASH, type AuditEntry } from "../../db/auditChain.ts";
import { signCheckpoint } from "../../db/auditCheckpoints.ts";
import { rowHash, verifyAuditChain } from "../../db/auditVerify.ts";
import { auditCheckpoints, auditLogs } from "../../db/schema.ts";
import { api, createUser, unique, withDb, type TestUser } from "./helpers.ts";

let viewer: TestUser;
beforeAll(async () => { viewer = await createUser("viewer"); });

const verify = async () => {
  const res = await api("GET", "/api/audit/verify", { token: viewer.token });
  expect(res.status).toBe(200);
  return res.body;
};

/** Appends `entries` in one transaction, as transact() does. */
const appendBatch = (entries: AuditEntry[]) => withDb((db) => db.transaction((tx) => appendAudit(tx, entries)));

const rowsOf = (ids: string[]) =>
  withDb((db) => db.select().from(auditLogs).where(inArray(auditLogs.resourceId, ids)).orderBy(auditLogs.id));

/** Text a careless literal quoting would break: dollar quotes, quotes, backslashes, a nested prevHash key. */
const hostile = (tag: string): AuditEntry => ({
  action: "BATCH_TEST",
  resourceType: "batch",
  resourceId: tag,
  userId: "u-$$-'q'",
  details: { prevHash: GENESIS_HASH, note: "$rf0$ $$ $x$ ' \" \\ \\n ✓ 𝄞", list: [1, 2.5, null, true], nested: { b: 1, a: "z" } },
  ipAddress: "2001:DB8:0::1",
  userAgent: "agent $rfabc$ 'x'",
  statusCode: 201,
});

describe("batched audit append", () => {
  it("splits the canonical text exactly around prevHash and timestamp", async () => {
    const ts = new Date("2026-05-01T12:00:00.123Z");
    const e = hostile("split");
    const { head, middle, tail } = hashedTextAround(e);
    const prev = "a".repeat(64);
    // Postgres hashes head + prev + middle + timestamp + tail: it must be the text JS hashes.
    const text = head + prev + middle + ts.toISOString() + tail;
    expect(text).toBe(canonicalJson({
      prevHash: prev, timestamp: ts.toISOString(), userId: e.userId, action: e.action, resourceType: e.resourceType,
      resourceId: e.resourceId, details: e.details, ipAddress: "2001:db8::1", userAgent: e.userAgent, statusCode: e.statusCode,
    }));
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    expect([...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")).toBe(await auditRowHash(prev, ts, e));
  });

  it("a batch of rows is stored in order, linked row to row, with the hashes JS recomputes", async () => {
    const ids = Array.from({ length: 5 }, () => unique("batch"));
    await appendBatch(ids.map((id, i) => (i === 2 ? hostile(id) : { action: "BATCH_TEST", resourceType: "batch", resourceId: id, details: { i } })));
    const rows = await rowsOf(ids);
    expect(rows.map((r) => r.resourceId)).toEqual(ids);
    // One transaction held the lock for the whole batch: its rows are adjacent in the chain.
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    for (const r of rows) expect(await rowHash(r)).toBe(r.hash);
    // What was stored is what was passed (the literals survived quoting).
    const h = rows[2]!;
    expect(h).toMatchObject({ userId: "u-$$-'q'", userAgent: "agent $rfabc$ 'x'", ipAddress: "2001:db8::1", statusCode: 201 });
    expect(h.details).toEqual(hostile("x").details);
    // One batch, one timestamp (Postgres's clock after the grant); later batches never go back in time.
    expect(new Set(rows.map((r) => r.timestamp.getTime())).size).toBe(1);
    expect((await verify()).ok).toBe(true);
  });

  it("concurrent batched writers leave one chain: each batch contiguous, every row linked to its predecessor", async () => {
    const batches = Array.from({ length: 16 }, () => Array.from({ length: 3 }, () => unique("conc")));
    await Promise.all(batches.map((ids) => appendBatch(ids.map((id, i) => ({ action: "BATCH_CONC", resourceType: "batch", resourceId: id, details: { i } })))));
    const all = batches.flat();
    const rows = await rowsOf(all);
    expect(rows).toHaveLength(all.length);
    expect(new Set(rows.map((r) => r.prevHash)).size).toBe(all.length); // no fork: no two rows share a predecessor
    // Timestamps ascend with ids: the clock is read after the lock is granted.
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.timestamp.getTime()).toBeGreaterThanOrEqual(rows[i - 1]!.timestamp.getTime());
    for (const ids of batches) {
      const mine = rows.filter((r) => ids.includes(r.resourceId!));
      expect(mine.map((r) => r.resourceId)).toEqual(ids);
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i]!.id).toBe(mine[i - 1]!.id + 1);
        expect(mine[i]!.prevHash).toBe(mine[i - 1]!.hash);
      }
    }
    for (const r of rows) {
      const [prev] = await withDb((db) => db.execute<{ hash: string }>(sql`select hash from audit_logs where id < ${r.id} order by id desc limit 1`)).then((x) => x.rows);
      expect(r.prevHash).toBe(prev!.hash);
    }
    expect((await verify()).ok).toBe(true);
  });

  it("concurrent API writes through the batched path verify, and a rolled-back batch leaves no row", async () => {
    const admin = await createUser("admin");
    const names = Array.from({ length: 24 }, () => unique("bconc"));
    const res = await Promise.all(names.map((name) => api("POST", "/api/clusters", { token: admin.token, body: { name } })));
    expect(res.map((r) => r.status)).toEqual(Array(24).fill(201));
    const id = unique("rolledback");
    await expect(withDb((db) => db.transaction(async (tx) => {
      await appendAudit(tx, [{ action: "BATCH_TEST", resourceType: "batch", resourceId: id }]);
      throw new Error("change failed after its audit row");
    }))).rejects.toThrow("change failed");
    expect(await rowsOf([id])).toHaveLength(0);
    expect((await verify()).ok).toBe(true);
  });

  it("verify finds an edited batched row (hash_mismatch) and a deleted one (prev_hash_mismatch on its successor); both restored", async () => {
    const ids = Array.from({ length: 3 }, () => unique("tamper"));
    await appendBatch(ids.map((id) => ({ action: "BATCH_TEST", resourceType: "batch", resourceId: id, details: { v: 1 } })));
    const [first, victim, successor] = await rowsOf(ids);
    try {
      await withDb((db) => db.execute(sql`update audit_logs set details = '{"v":2}'::jsonb where id = ${first!.id}`));
      expect(await verify()).toMatchObject({ ok: false, firstBroken: { id: first!.id, reason: "hash_mismatch", actual: first!.hash } });
    } finally {
      await withDb((db) => db.execute(sql`update audit_logs set details = ${JSON.stringify(first!.details)}::jsonb where id = ${first!.id}`));
    }
    expect((await verify()).ok).toBe(true);
    try {
      await withDb((db) => db.execute(sql`delete from audit_logs where id = ${victim!.id}`));
      expect(await verify()).toMatchObject({
        ok: false, firstBroken: { id: successor!.id, reason: "prev_hash_mismatch", expected: victim!.prevHash, actual: victim!.hash },
      });
    } finally {
      await withDb((db) => db.insert(auditLogs).values(victim!).onConflictDoNothing());
    }
    expect((await verify()).ok).toBe(true);
  });
  it("after a retention purge that removed every row, the next row links to the purge's checkpoint and the chain verifies", async () => {
    // The state a purge leaves on a quiet system (core/governance/retention.ts): a signed checkpoint over
    // the whole log, no row kept; then its own RETENTION_PURGED row is appended. Built inside one
    // transaction holding the chain lock and rolled back, so the files appending beside this one only wait.
    const key = "test-checkpoint-key";
    const marker = unique("after-purge");
    const seen = await withDb((db) => db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(7470001)`);
      const [first] = await tx.select().from(auditLogs).orderBy(auditLogs.id).limit(1);
      const [last] = await tx.select().from(auditLogs).orderBy(sql`${auditLogs.id} desc`).limit(1);
      const [{ n } = { n: 0 }] = (await tx.execute<{ n: number }>(sql`select count(*)::int as n from audit_logs`)).rows;
      await tx.delete(auditCheckpoints);
      await tx.insert(auditCheckpoints).values(await signCheckpoint({ upToId: last!.id, upToHash: last!.hash, rowCount: n, fromId: first!.id, rangeStart: first!.timestamp, rangeEnd: last!.timestamp }, key));
      await tx.execute(sql`delete from audit_logs`);
      await appendAudit(tx, [{ action: "BATCH_TEST", resourceType: "batch", resourceId: marker }]);
      const [row] = await tx.select().from(auditLogs).where(inArray(auditLogs.resourceId, [marker]));
      const check = await verifyAuditChain(tx, { checkpointKey: key });
      throw Object.assign(new Error("rolled back on purpose"), { seen: { prevHash: row!.prevHash, upToHash: last!.hash, check } });
    })).catch((err: { seen?: unknown }) => { if (!err.seen) throw err; return err.seen as { prevHash: string; upToHash: string; check: Awaited<ReturnType<typeof verifyAuditChain>> }; });
    // Before the fix the row linked to genesis and verify reported prev_hash_mismatch for good.
    expect(seen.prevHash).toBe(seen.upToHash);
    expect(seen.prevHash).not.toBe(GENESIS_HASH);
    expect(seen.check, JSON.stringify(seen.check)).toMatchObject({ ok: true });
    expect((await verify()).ok).toBe(true);
  });
});
