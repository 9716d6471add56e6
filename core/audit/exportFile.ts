/**
 * The audit export file: every row of an id range with `prev_hash` and
 * `hash`, then a trailer naming the head, so an auditor can re-verify it
 * offline (docs/audit.md, scripts/verify-audit-export.ts).
 */
import { and, asc, count, desc, gt, gte, lte } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import type { ChainHead, VerifyResult } from "../../db/auditVerify.ts";
import { auditLogs } from "../../db/schema.ts";

import { formatHeader, formatRow, formatTrailer, type ExportFormat } from "./exportFormat.ts";

export { exportRecord, type ExportFormat } from "./exportFormat.ts";

/** A contiguous id range: time filters pick its ends, never holes in the middle, so the file stays a verifiable chain. */
export interface ExportRange { fromId: number; toId: number; head: ChainHead; rows: number }

export interface Trailer {
  head: ChainHead | null;
  verified: boolean;
  generatedAt: string;
  rows: number;
  firstBroken?: Extract<VerifyResult, { ok: false }>["firstBroken"];
  /** Set when the file's first row links to a retention checkpoint (its predecessors were purged), not to a row. */
  checkpoint?: VerifyResult["checkpoint"];
}

/**
 * Resolves from/to to ids once, up front: rows appended while the file
 * streams are not in it, and the trailer's head is fixed before the first byte.
 */
export async function exportRange(db: Db, from?: Date, to?: Date): Promise<ExportRange | null> {
  const [last] = await db.select({ id: auditLogs.id, hash: auditLogs.hash }).from(auditLogs)
    .where(to ? lte(auditLogs.timestamp, to) : undefined).orderBy(desc(auditLogs.id)).limit(1);
  if (!last) return null;
  // The first kept row, not id 1: after a retention purge the chain starts at a checkpoint.
  const [first] = await db.select({ id: auditLogs.id }).from(auditLogs)
    .where(from ? gte(auditLogs.timestamp, from) : undefined).orderBy(asc(auditLogs.id)).limit(1);
  if (!first || first.id > last.id) return null;
  const fromId = first.id;
  const [n] = await db.select({ n: count() }).from(auditLogs).where(and(gte(auditLogs.id, fromId), lte(auditLogs.id, last.id)));
  return { fromId, toId: last.id, head: last, rows: n?.n ?? 0 };
}

/**
 * Streams the range in keyset batches with pull(): a slow client slows the
 * queries down instead of buffering the whole log in the isolate. The stream
 * owns its database handle because the request's pool closes once the
 * handler returns, before the body has been sent.
 */
export function exportStream(
  open: () => { db: Db; close(): Promise<void> },
  format: ExportFormat,
  range: ExportRange | null,
  trailer: Trailer,
  batch = 1000,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let handle: ReturnType<typeof open> | undefined;
  let afterId = range ? range.fromId - 1 : 0;
  let done = !range;
  const finish = async () => { await handle?.close().catch(() => {}); handle = undefined; };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (format === "csv") controller.enqueue(enc.encode(formatHeader(format)));
    },
    async pull(controller) {
      try {
        if (!done && range) {
          handle ??= open();
          const rows = await handle.db.select().from(auditLogs)
            .where(and(gt(auditLogs.id, afterId), lte(auditLogs.id, range.toId))).orderBy(asc(auditLogs.id)).limit(batch);
          if (rows.length > 0) {
            controller.enqueue(enc.encode(rows.map((r) => formatRow(format, r)).join("")));
            afterId = rows[rows.length - 1]!.id;
          }
          done = rows.length < batch || afterId >= range.toId;
          if (!done) return;
        }
        controller.enqueue(enc.encode(formatTrailer(format, trailer)));
        controller.close();
        await finish();
      } catch (err) {
        // A file without its trailer is visibly incomplete; the verifier rejects it.
        controller.error(err);
        await finish();
      }
    },
    async cancel() {
      await finish();
    },
  });
}
