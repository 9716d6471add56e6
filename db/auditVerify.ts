/**
 * Walks the audit hash chain (db/auditChain.ts) and recomputes every hash.
 * Keyset batches by id, so memory stays flat on a chain of millions of rows;
 * ids may have gaps (a rolled-back append still consumes a sequence value),
 * so "the previous row" is the previous one in id order, never id - 1.
 */
import { and, asc, desc, gt, gte, lt, lte } from "drizzle-orm";
import { auditRowHash, GENESIS_HASH } from "./auditChain.ts";
import { auditLogs } from "./schema.ts";
import type { Db } from "./client.ts";

export type AuditRow = typeof auditLogs.$inferSelect;
export type BrokenReason = "hash_mismatch" | "prev_hash_mismatch";

export interface ChainHead { id: number; hash: string }
export type VerifyResult =
  | { ok: true; rows: number; head: ChainHead | null }
  | { ok: false; rows: number; firstBroken: { id: number; reason: BrokenReason; expected: string; actual: string } };

export interface VerifyOptions {
  /** Start here, linked to the stored hash of the row before it (that row is not recomputed). */
  fromId?: number;
  /** Stop after this id: an export verifies exactly the rows it ships. */
  toId?: number;
  /** Rows per query. */
  batch?: number;
}

/** The hashed content of a stored row, exactly as appendAudit passed it in. */
export function rowHash(r: Pick<AuditRow, "prevHash" | "timestamp" | "userId" | "action" | "resourceType" | "resourceId" | "details" | "ipAddress" | "userAgent" | "statusCode">): Promise<string> {
  return auditRowHash(r.prevHash, r.timestamp, {
    userId: r.userId, action: r.action, resourceType: r.resourceType, resourceId: r.resourceId,
    details: r.details, ipAddress: r.ipAddress, userAgent: r.userAgent, statusCode: r.statusCode,
  });
}

/** The hash the row at `fromId` must link to: its predecessor's, or genesis for the first row. */
async function anchorHash(db: Db, fromId: number | undefined): Promise<string> {
  if (fromId === undefined) return GENESIS_HASH;
  const [prev] = await db.select({ hash: auditLogs.hash }).from(auditLogs).where(lt(auditLogs.id, fromId)).orderBy(desc(auditLogs.id)).limit(1);
  return prev?.hash ?? GENESIS_HASH;
}

export async function verifyAuditChain(db: Db, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const batch = Math.max(1, Math.min(opts.batch ?? 1000, 10_000));
  let prevHash = await anchorHash(db, opts.fromId);
  let head: ChainHead | null = null;
  let rows = 0;
  let afterId: number | undefined;
  for (;;) {
    const page = await db.select().from(auditLogs).where(and(
      afterId !== undefined ? gt(auditLogs.id, afterId) : opts.fromId !== undefined ? gte(auditLogs.id, opts.fromId) : undefined,
      opts.toId !== undefined ? lte(auditLogs.id, opts.toId) : undefined,
    )).orderBy(asc(auditLogs.id)).limit(batch);
    for (const r of page) {
      rows++;
      // Linkage first: a deleted row shows up here, on its successor.
      if (r.prevHash !== prevHash) {
        return { ok: false, rows, firstBroken: { id: r.id, reason: "prev_hash_mismatch", expected: prevHash, actual: r.prevHash } };
      }
      const expected = await rowHash(r);
      if (expected !== r.hash) {
        return { ok: false, rows, firstBroken: { id: r.id, reason: "hash_mismatch", expected, actual: r.hash } };
      }
      prevHash = r.hash;
      head = { id: r.id, hash: r.hash };
    }
    if (page.length < batch) return { ok: true, rows, head };
    afterId = page[page.length - 1]!.id;
  }
}
