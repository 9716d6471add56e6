/**
 * Reads over ai_decision_logs: a filtered, keyset-paginated list (newest
 * received first, like /api/audit) and token/call/cost totals grouped by
 * instance, flow or model under the same filters.
 */
import { and, count, desc, eq, gte, lt, lte, sql, sum, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { aiDecisionLogs as t } from "../../db/schema.ts";

export interface DecisionFilter {
  instanceId?: string | undefined;
  flowName?: string | undefined;
  model?: string | undefined;
  provider?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

export type TotalsGroup = "instance" | "flow" | "model";

function where(f: DecisionFilter, ...more: (SQL | undefined)[]) {
  return and(
    f.instanceId ? eq(t.instanceId, f.instanceId) : undefined,
    f.flowName ? eq(t.flowName, f.flowName) : undefined,
    f.model ? eq(t.model, f.model) : undefined,
    f.provider ? eq(t.provider, f.provider) : undefined,
    f.from ? gte(t.timestamp, f.from) : undefined,
    f.to ? lte(t.timestamp, f.to) : undefined,
    ...more,
  );
}

export type DecisionRow = typeof t.$inferSelect;

/** limit+1 rows after `beforeId`, so the caller knows whether another page exists. */
export function listDecisions(db: Db, f: DecisionFilter, limit: number, beforeId?: number): Promise<DecisionRow[]> {
  return db.select().from(t).where(where(f, beforeId !== undefined ? lt(t.id, beforeId) : undefined))
    .orderBy(desc(t.id)).limit(limit + 1);
}

export interface TotalsRow {
  key: Record<string, string | null>;
  calls: number;
  inputTokens: number;
  outputTokens: number;
  /** Sum over the priced calls, as decimal text (numeric); null when none was priced. */
  costUsd: string | null;
  /** Calls whose model had no price when they arrived (not in costUsd). */
  unpricedCalls: number;
}

const GROUP_COLUMNS = {
  instance: { instanceId: t.instanceId },
  flow: { flowName: t.flowName },
  model: { provider: t.provider, model: t.model },
} as const;

export async function decisionTotals(db: Db, f: DecisionFilter, groupBy: TotalsGroup, limit: number): Promise<TotalsRow[]> {
  const columns = GROUP_COLUMNS[groupBy];
  const cols = Object.values(columns);
  const rows = await db.select({
    ...columns,
    calls: count(),
    inputTokens: sql<string>`coalesce(${sum(t.inputTokens)}, 0)`,
    outputTokens: sql<string>`coalesce(${sum(t.outputTokens)}, 0)`,
    costUsd: sum(t.costUsd),
    unpricedCalls: sql<string>`count(*) filter (where ${t.costUsd} is null)`,
  }).from(t).where(where(f)).groupBy(...cols).orderBy(desc(count()), ...cols).limit(limit);
  return rows.map((r) => {
    const key: Record<string, string | null> = {};
    for (const name of Object.keys(columns)) key[name] = (r as Record<string, unknown>)[name] as string | null;
    return {
      key, calls: r.calls, inputTokens: Number(r.inputTokens), outputTokens: Number(r.outputTokens),
      costUsd: r.costUsd, unpricedCalls: Number(r.unpricedCalls),
    };
  });
}
