/**
 * Dead letters in the control plane: a verified batch from a bridge is stored
 * once per letterId (the bridge's hash of the MQTT message, so a redelivery
 * changes nothing), every instance must belong to the sending cluster; and a
 * filtered, keyset-paginated list (newest first) for GET /api/dead-letters.
 */
import { and, desc, eq, gte, inArray, lt, lte, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { deadLetters as t, instances } from "../../db/schema.ts";
import { ApiError } from "../errors.ts";
import type { DeadLetterBatch } from "../../protocol/deadLetters.ts";

export async function storeDeadLetters(db: Db, clusterId: string, batch: DeadLetterBatch, receivedAt: Date): Promise<{ stored: number; duplicates: number }> {
  const ids = [...new Set(batch.letters.map((l) => l.instanceId))];
  const known = await db.select({ id: instances.id }).from(instances).where(and(eq(instances.clusterId, clusterId), inArray(instances.id, ids)));
  const mine = new Set(known.map((r) => r.id));
  const foreign = ids.filter((id) => !mine.has(id));
  if (foreign.length > 0) {
    throw new ApiError(403, "instance_not_in_cluster", `${foreign.length} instance(s) in this batch do not belong to cluster ${clusterId}; nothing was stored`, { instanceIds: foreign });
  }
  const rows = batch.letters.map((l) => ({
    letterId: l.letterId, instanceId: l.instanceId, clusterId,
    flowId: l.flowId ?? null, primitive: l.primitive ?? null, nodeRedFlow: l.nodeRedFlow ?? null,
    errorCode: l.error.code, errorMessage: l.error.message, attempts: l.error.attempts ?? null,
    input: l.input === undefined ? null : l.input, failedAt: new Date(l.failedAt), receivedAt,
  }));
  const inserted = await db.insert(t).values(rows).onConflictDoNothing({ target: t.letterId }).returning({ id: t.id });
  return { stored: inserted.length, duplicates: rows.length - inserted.length };
}

export interface DeadLetterFilter {
  instanceId?: string | undefined;
  errorCode?: string | undefined;
  primitive?: string | undefined;
  flowId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  replayState?: "pending" | "succeeded" | "failed" | undefined;
}

export type DeadLetterRow = typeof t.$inferSelect;

/** limit+1 rows below `beforeId` (newest first), so the caller knows whether another page exists. */
export function listDeadLetters(db: Db, f: DeadLetterFilter, limit: number, beforeId?: number): Promise<DeadLetterRow[]> {
  const where: (SQL | undefined)[] = [
    f.instanceId ? eq(t.instanceId, f.instanceId) : undefined,
    f.errorCode ? eq(t.errorCode, f.errorCode) : undefined,
    f.primitive ? eq(t.primitive, f.primitive) : undefined,
    f.flowId ? eq(t.flowId, f.flowId) : undefined,
    f.from ? gte(t.failedAt, f.from) : undefined,
    f.to ? lte(t.failedAt, f.to) : undefined,
    f.replayState ? eq(t.replayState, f.replayState) : undefined,
    beforeId !== undefined ? lt(t.id, beforeId) : undefined,
  ];
  return db.select().from(t).where(and(...where)).orderBy(desc(t.id)).limit(limit + 1);
}
