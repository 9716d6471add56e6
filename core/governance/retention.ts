/**
 * The retention purge: deletes rows older than each table's retention, in
 * batches, and never a row inside it. For audit_logs only a prefix of the
 * chain can go (every row before the first one inside retention), and only
 * after that prefix verified and a signed checkpoint of its last row was
 * written in the same transaction; verification then starts there.
 */
import { and, asc, desc, gt, lt, min, sql, type SQL } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import { appendAudit } from "../../db/auditChain.ts";
import { latestCheckpoint, signCheckpoint } from "../../db/auditCheckpoints.ts";
import { verifyAuditChain } from "../../db/auditVerify.ts";
import type { Db } from "../../db/client.ts";
import { aiDecisionLogs, auditCheckpoints, auditLogs, instanceHealth } from "../../db/schema.ts";
import { RETENTION_TABLES, type RetentionConfig, type RetentionTable } from "./settings.ts";

// Arbitrary constant naming "a retention purge is running" among advisory locks.
const RETENTION_LOCK = 7_470_002;

export interface PurgeOptions {
  now: Date;
  /** Rows per DELETE. */
  batchSize: number;
  /** Batches per table per run; a backlog larger than this finishes on the next runs (`more: true`). */
  maxBatches: number;
  checkpointKey?: string;
}

export interface TablePurge {
  table: RetentionTable;
  retentionDays: number | null;
  cutoff: string | null;
  deleted: number;
  more: boolean;
  skipped?: "no_retention" | "checkpoint_key_missing" | "audit_chain_broken" | "purge_running";
  checkpointId?: number;
  firstBroken?: unknown;
}

const cutoffOf = (days: number, now: Date) => new Date(now.getTime() - days * 86_400_000);

const PLAIN_TABLES: Record<Exclude<RetentionTable, "audit_logs">, { table: PgTable; id: PgColumn; at: PgColumn }> = {
  ai_decision_logs: { table: aiDecisionLogs, id: aiDecisionLogs.id, at: aiDecisionLogs.timestamp },
  instance_health: { table: instanceHealth, id: instanceHealth.id, at: instanceHealth.checkedAt },
};

async function purgePlain(db: Db, name: Exclude<RetentionTable, "audit_logs">, cutoff: Date, o: PurgeOptions) {
  const { table, id, at } = PLAIN_TABLES[name];
  let deleted = 0;
  for (let i = 0; i < o.maxBatches; i++) {
    // Strictly older than the cutoff; ids chosen first so each DELETE is bounded.
    const res = await db.execute(sql`delete from ${table} where ${id} in (
      select ${id} from ${table} where ${at} < ${cutoff.toISOString()} order by ${id} limit ${o.batchSize})`);
    const n = res.rowCount ?? 0;
    deleted += n;
    if (n < o.batchSize) return { deleted, more: false };
  }
  return { deleted, more: true };
}

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/**
 * Inside the caller's transaction: checkpoint + delete of the chain's prefix
 * older than `cutoff` (at most batchSize × maxBatches rows).
 */
async function purgeAuditPrefix(tx: Tx, cutoff: Date, o: PurgeOptions, key: string): Promise<Omit<TablePurge, "table" | "retentionDays" | "cutoff">> {
  const [inside] = await tx.select({ id: min(auditLogs.id) }).from(auditLogs).where(sql`${auditLogs.timestamp} >= ${cutoff.toISOString()}`);
  const base = (await latestCheckpoint(tx))?.upToId ?? 0;
  const limit = o.batchSize * o.maxBatches;
  const bounds: SQL[] = [gt(auditLogs.id, base)];
  if (inside?.id != null) bounds.push(lt(auditLogs.id, inside.id));
  const [first] = await tx.select({ id: auditLogs.id, timestamp: auditLogs.timestamp }).from(auditLogs).where(and(...bounds)).orderBy(asc(auditLogs.id)).limit(1);
  if (!first) return { deleted: 0, more: false };
  // The last row this run may remove: the limit-th of the prefix, or its end.
  const edge = { id: auditLogs.id, hash: auditLogs.hash, timestamp: auditLogs.timestamp };
  const atLimit = await tx.select(edge).from(auditLogs).where(and(...bounds)).orderBy(asc(auditLogs.id)).offset(limit - 1).limit(1);
  const [last] = atLimit.length ? atLimit : await tx.select(edge).from(auditLogs).where(and(...bounds)).orderBy(desc(auditLogs.id)).limit(1);
  const [{ n } = { n: 0 }] = await tx.select({ n: sql<number>`count(*)::int` }).from(auditLogs).where(and(gt(auditLogs.id, base), sql`${auditLogs.id} <= ${last!.id}`));
  // Never sign over a chain that does not hold: the purge would launder the tampering.
  const check = await verifyAuditChain(tx, { toId: last!.id, checkpointKey: key });
  if (!check.ok) return { deleted: 0, more: false, skipped: "audit_chain_broken", firstBroken: check.firstBroken };
  const signed = await signCheckpoint({ upToId: last!.id, upToHash: last!.hash, rowCount: n, fromId: first.id, rangeStart: first.timestamp, rangeEnd: last!.timestamp }, key);
  const [cp] = await tx.insert(auditCheckpoints).values(signed).returning({ id: auditCheckpoints.id });
  const res = await tx.execute(sql`delete from ${auditLogs} where ${auditLogs.id} <= ${last!.id}`);
  const deleted = res.rowCount ?? 0;
  return { deleted, more: n >= limit, checkpointId: cp!.id };
}

/** Runs every table's purge and records one RETENTION_PURGED audit row with the results. */
export async function runRetentionPurge(db: Db, retention: RetentionConfig, o: PurgeOptions): Promise<TablePurge[]> {
  const results: TablePurge[] = [];
  for (const table of RETENTION_TABLES) {
    if (table === "audit_logs") continue;
    const days = retention[table];
    if (days === null) {
      results.push({ table, retentionDays: null, cutoff: null, deleted: 0, more: false, skipped: "no_retention" });
      continue;
    }
    const cutoff = cutoffOf(days, o.now);
    results.push({ table, retentionDays: days, cutoff: cutoff.toISOString(), ...(await purgePlain(db, table, cutoff, o)) });
  }
  const days = retention.audit_logs;
  const cutoff = days === null ? null : cutoffOf(days, o.now);
  await db.transaction(async (tx) => {
    let audit: TablePurge = { table: "audit_logs", retentionDays: days, cutoff: cutoff?.toISOString() ?? null, deleted: 0, more: false };
    const [{ locked } = { locked: false }] = (await tx.execute(sql`select pg_try_advisory_xact_lock(${RETENTION_LOCK}) as locked`)).rows as { locked: boolean }[];
    if (cutoff === null) audit.skipped = "no_retention";
    else if (!o.checkpointKey) audit.skipped = "checkpoint_key_missing";
    else if (!locked) audit.skipped = "purge_running";
    else audit = { ...audit, ...(await purgeAuditPrefix(tx, cutoff, o, o.checkpointKey)) };
    results.push(audit);
    await appendAudit(tx, [{
      action: "RETENTION_PURGED", resourceType: "retention", resourceId: null,
      details: { at: o.now.toISOString(), tables: Object.fromEntries(results.map(({ table, ...r }) => [table, r])) },
    }]);
  });
  return results;
}
