/**
 * Walks the audit hash chain (db/auditChain.ts) and recomputes every hash.
 * Keyset batches by id, so memory stays flat on a chain of millions of rows;
 * ids may have gaps (a rolled-back append still consumes a sequence value),
 * so "the previous row" is the previous one in id order, never id - 1.
 *
 * After a retention purge the chain no longer starts at genesis: it starts at
 * the latest signed checkpoint (db/auditCheckpoints.ts), whose signature is
 * checked first. That also bounds the walk to the rows retention keeps.
 */
import { and, asc, desc, gt, gte, lt, lte } from "drizzle-orm";
import { auditRowHash, GENESIS_HASH } from "./auditChain.ts";
import { checkpointSignatureValid, latestCheckpoint, type AuditCheckpoint } from "./auditCheckpoints.ts";
import { auditLogs } from "./schema.ts";
import type { Db } from "./client.ts";

export type AuditRow = typeof auditLogs.$inferSelect;
/** A pool or a transaction: a purge verifies what it is about to remove inside its own transaction. */
type Reader = Db | Parameters<Parameters<Db["transaction"]>[0]>[0];
export type BrokenReason = "hash_mismatch" | "prev_hash_mismatch" | "checkpoint_signature_invalid" | "checkpoint_unverifiable";

export interface ChainHead { id: number; hash: string }
/** Where the walk started when it was not genesis. */
export interface CheckpointAnchor { id: number; upToId: number; upToHash: string; createdAt: Date }
export type VerifyResult =
  | { ok: true; rows: number; head: ChainHead | null; checkpoint?: CheckpointAnchor }
  | { ok: false; rows: number; firstBroken: { id: number; reason: BrokenReason; expected: string; actual: string }; checkpoint?: CheckpointAnchor };

export interface VerifyOptions {
  /** Start here, linked to the stored hash of the row before it (that row is not recomputed). */
  fromId?: number;
  /** Stop after this id: an export verifies exactly the rows it ships. */
  toId?: number;
  /** Rows per query. */
  batch?: number;
  /** REDFORGE_AUDIT_CHECKPOINT_KEY: without it a checkpoint cannot be trusted (`checkpoint_unverifiable`). */
  checkpointKey?: string;
}

/** The hashed content of a stored row, exactly as appendAudit passed it in. */
export function rowHash(r: Pick<AuditRow, "prevHash" | "timestamp" | "userId" | "action" | "resourceType" | "resourceId" | "details" | "ipAddress" | "userAgent" | "statusCode">): Promise<string> {
  return auditRowHash(r.prevHash, r.timestamp, {
    userId: r.userId, action: r.action, resourceType: r.resourceType, resourceId: r.resourceId,
    details: r.details, ipAddress: r.ipAddress, userAgent: r.userAgent, statusCode: r.statusCode,
  });
}

type Anchor = { hash: string; afterId?: number; checkpoint?: AuditCheckpoint };

/**
 * What the first verified row must link to: the kept predecessor's hash, or —
 * when the predecessor was purged — the checkpoint that covers it, or genesis.
 */
async function anchor(db: Reader, fromId: number | undefined): Promise<Anchor> {
  const checkpoint = await latestCheckpoint(db, fromId);
  if (fromId === undefined) {
    return checkpoint ? { hash: checkpoint.upToHash, afterId: checkpoint.upToId, checkpoint } : { hash: GENESIS_HASH };
  }
  const [prev] = await db.select({ id: auditLogs.id, hash: auditLogs.hash }).from(auditLogs).where(lt(auditLogs.id, fromId)).orderBy(desc(auditLogs.id)).limit(1);
  if (checkpoint && (!prev || checkpoint.upToId >= prev.id)) return { hash: checkpoint.upToHash, checkpoint };
  return { hash: prev?.hash ?? GENESIS_HASH };
}

const describe = (c: AuditCheckpoint): CheckpointAnchor => ({ id: c.id, upToId: c.upToId, upToHash: c.upToHash, createdAt: c.createdAt });

export async function verifyAuditChain(db: Reader, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const batch = Math.max(1, Math.min(opts.batch ?? 1000, 10_000));
  const start = await anchor(db, opts.fromId);
  const checkpoint = start.checkpoint ? describe(start.checkpoint) : undefined;
  if (start.checkpoint) {
    const valid = opts.checkpointKey ? await checkpointSignatureValid(start.checkpoint, opts.checkpointKey) : undefined;
    if (!valid) {
      const reason = valid === undefined ? "checkpoint_unverifiable" : "checkpoint_signature_invalid";
      return { ok: false, rows: 0, checkpoint, firstBroken: { id: start.checkpoint.upToId, reason, expected: "a valid checkpoint signature", actual: start.checkpoint.signature } };
    }
  }
  let prevHash = start.hash;
  let head: ChainHead | null = null;
  let rows = 0;
  let afterId = start.afterId;
  const extra = checkpoint ? { checkpoint } : {};
  for (;;) {
    const page = await db.select().from(auditLogs).where(and(
      afterId !== undefined ? gt(auditLogs.id, afterId) : opts.fromId !== undefined ? gte(auditLogs.id, opts.fromId) : undefined,
      afterId !== undefined && opts.fromId !== undefined ? gte(auditLogs.id, opts.fromId) : undefined,
      opts.toId !== undefined ? lte(auditLogs.id, opts.toId) : undefined,
    )).orderBy(asc(auditLogs.id)).limit(batch);
    for (const r of page) {
      rows++;
      // Linkage first: a deleted row shows up here, on its successor.
      if (r.prevHash !== prevHash) {
        return { ok: false, rows, ...extra, firstBroken: { id: r.id, reason: "prev_hash_mismatch", expected: prevHash, actual: r.prevHash } };
      }
      const expected = await rowHash(r);
      if (expected !== r.hash) {
        return { ok: false, rows, ...extra, firstBroken: { id: r.id, reason: "hash_mismatch", expected, actual: r.hash } };
      }
      prevHash = r.hash;
      head = { id: r.id, hash: r.hash };
    }
    if (page.length < batch) return { ok: true, rows, head, ...extra };
    afterId = page[page.length - 1]!.id;
  }
}
