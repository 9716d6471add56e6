/**
 * Moves every sealed column onto the current encryption key, so an old key
 * can be dropped from REDFORGE_ENCRYPTION_KEYS_PREVIOUS. Keyset batches by
 * primary key; each value is swapped only if it is still the one that was
 * read (a concurrent rotate-secret or PATCH wins, and is already current).
 */
import { and, asc, gt, isNotNull, not, sql, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import type { Db } from "../../db/client.ts";
import { alertChannels, ciHooks, clusters, instances } from "../../db/schema.ts";
import { keyId, open, seal, type Keyring } from "../crypto/secretBox.ts";

export interface ColumnCounts {
  /** Values already under the current key before this run. */
  current: number;
  resealed: number;
  /** Values no configured key opens (their ids are in `failedIds`). */
  failed: number;
  failedIds: string[];
}

interface SealedColumn {
  name: string;
  table: typeof clusters | typeof instances | typeof alertChannels | typeof ciHooks;
  id: PgColumn;
  column: PgColumn;
}

export const SEALED_COLUMNS: SealedColumn[] = [
  { name: "clusters.webhook_secret_sealed", table: clusters, id: clusters.id, column: clusters.webhookSecretSealed },
  { name: "instances.credential_secret_sealed", table: instances, id: instances.id, column: instances.credentialSecretSealed },
  { name: "instances.secrets_sealed", table: instances, id: instances.id, column: instances.secretsSealed },
  // Webhook channels' signing secrets (issue 13): a rotation that left them behind would strand them on the old key.
  { name: "alert_channels.secret_sealed", table: alertChannels, id: alertChannels.id, column: alertChannels.secretSealed },
  // CI hooks' signing secrets (issue 15, docs/ci.md).
  { name: "ci_hooks.secret_sealed", table: ciHooks, id: ciHooks.id, column: ciHooks.secretSealed },
];

const MAX_FAILED_IDS = 50;

async function resealColumn(db: Db, keys: Keyring, col: SealedColumn, batch: number): Promise<ColumnCounts> {
  const currentPrefix = `v2.${await keyId(keys.current)}.%`;
  const underCurrent: SQL = sql`${col.column} like ${currentPrefix}`;
  const [{ n } = { n: 0 }] = await db.select({ n: sql<number>`count(*)::int` }).from(col.table).where(underCurrent);
  const counts: ColumnCounts = { current: n, resealed: 0, failed: 0, failedIds: [] };
  let afterId: string | undefined;
  for (;;) {
    const rows = await db.select({ id: col.id, sealed: col.column }).from(col.table)
      .where(and(isNotNull(col.column), not(underCurrent), afterId ? gt(col.id, afterId) : undefined))
      .orderBy(asc(col.id)).limit(batch) as { id: string; sealed: string }[];
    const swaps: { id: string; old: string; next: string }[] = [];
    for (const r of rows) {
      try {
        swaps.push({ id: r.id, old: r.sealed, next: await seal(await open(r.sealed, keys), keys) });
      } catch {
        counts.failed++;
        if (counts.failedIds.length < MAX_FAILED_IDS) counts.failedIds.push(r.id);
      }
    }
    if (swaps.length) {
      // One statement per batch; a row changed since it was read keeps its (newer, current) value.
      const res = await db.execute(sql`update ${col.table} set ${sql.identifier(col.column.name)} = v.next
        from (values ${sql.join(swaps.map((w) => sql`(${w.id}, ${w.old}, ${w.next})`), sql`, `)}) as v(id, old, next)
        where ${col.id} = v.id::uuid and ${col.column} = v.old`);
      counts.resealed += res.rowCount ?? 0;
    }
    if (rows.length < batch) return counts;
    afterId = rows[rows.length - 1]!.id;
  }
}

/** How many values of each sealed column each key id seals (for GET /api/admin/encryption). */
export async function sealedKeyCounts(db: Db): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const col of SEALED_COLUMNS) {
    const kid = sql<string>`case when ${col.column} like 'v2.%' then split_part(${col.column}, '.', 2) else 'v1' end`;
    const rows = await db.select({ kid, n: sql<number>`count(*)::int` }).from(col.table).where(isNotNull(col.column)).groupBy(kid);
    out[col.name] = Object.fromEntries(rows.map((r) => [r.kid, Number(r.n)]));
  }
  return out;
}

export async function resealAll(db: Db, keys: Keyring, batch = 200): Promise<Record<string, ColumnCounts>> {
  const out: Record<string, ColumnCounts> = {};
  for (const col of SEALED_COLUMNS) out[col.name] = await resealColumn(db, keys, col, batch);
  return out;
}
