/**
 * What a pipeline shows: each stage's version (its last completed promotion)
 * and the promotions' history. A promotion that is rolling out follows its
 * rollout: read back from the rollout's projection whenever promotions are
 * read, and written when the rollout has ended (completed, or failed/aborted).
 */
import { and, desc, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { pipelinePromotions, pipelines } from "../../db/schema.ts";
import type { PipelineView, PromotionView } from "../../protocol/api/pipelines.ts";
import { rolloutOutcomes } from "./rollouts.ts";

export type PromotionRow = typeof pipelinePromotions.$inferSelect;
type PipelineRow = typeof pipelines.$inferSelect;

const HISTORY = 50;

/** Brings rolling_out promotions up to date with their rollouts; returns the rows as they now stand. */
export async function refreshPromotions(db: Db, rows: PromotionRow[]): Promise<PromotionRow[]> {
  const open = rows.filter((r) => r.status === "rolling_out" && r.rolloutId);
  if (open.length === 0) return rows;
  const outcomes = await rolloutOutcomes(db, open.map((r) => r.rolloutId!));
  const changed = new Map<string, PromotionRow>();
  for (const r of open) {
    const o = outcomes.get(r.rolloutId!);
    if (!o || !["completed", "failed", "aborted"].includes(o.status)) continue;
    const status = o.status === "completed" ? "completed" : "failed";
    const failure = status === "failed" ? (o.failure ?? { code: o.status, message: `the rollout ${o.status}` }) : null;
    // Conditional on the old status: two readers refreshing at once write the same thing once.
    const [row] = await db.update(pipelinePromotions).set({ status, failure, updatedAt: new Date() })
      .where(and(eq(pipelinePromotions.id, r.id), eq(pipelinePromotions.status, "rolling_out"))).returning();
    if (row) changed.set(row.id, row);
  }
  return rows.map((r) => changed.get(r.id) ?? r);
}

/** The stage's last completed promotion (its rollout may have finished since the row was written). */
export async function lastCompleted(db: Db, pipelineId: string, stage: string): Promise<PromotionRow | null> {
  const rows = await refreshPromotions(db, await db.select().from(pipelinePromotions)
    .where(and(eq(pipelinePromotions.pipelineId, pipelineId), eq(pipelinePromotions.stage, stage), inArray(pipelinePromotions.status, ["completed", "rolling_out"])))
    .orderBy(desc(pipelinePromotions.createdAt)).limit(20));
  return rows.find((r) => r.status === "completed") ?? null;
}

export function promotionView(r: PromotionRow): PromotionView {
  return {
    id: r.id, pipelineId: r.pipelineId, stage: r.stage, status: r.status as PromotionView["status"], source: r.source,
    versionId: r.versionId, digest: r.digest, rolloutId: r.rolloutId, requestedBy: r.requestedBy, decidedBy: r.decidedBy,
    decidedAt: r.decidedAt?.toISOString() ?? null, reason: r.reason, failure: r.failure ?? null,
    createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString(),
  };
}

export async function pipelineView(db: Db, p: PipelineRow): Promise<PipelineView> {
  const history = await refreshPromotions(db, await db.select().from(pipelinePromotions)
    .where(eq(pipelinePromotions.pipelineId, p.id)).orderBy(desc(pipelinePromotions.createdAt), desc(pipelinePromotions.id)).limit(HISTORY));
  const stages = await Promise.all(p.stages.map(async (s) => {
    // Usually in the history already; an older one is looked up.
    const done = history.find((h) => h.stage === s.name && h.status === "completed") ?? await lastCompleted(db, p.id, s.name);
    const open = history.find((h) => h.stage === s.name && (h.status === "awaiting_approval" || h.status === "rolling_out"));
    return {
      ...s,
      current: done ? { promotionId: done.id, versionId: done.versionId, digest: done.digest, completedAt: done.updatedAt.toISOString() } : null,
      pending: open ? { promotionId: open.id, status: open.status as PromotionView["status"] } : null,
    };
  }));
  return {
    id: p.id, name: p.name, team: p.team, stages, promotions: history.map(promotionView),
    createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString(),
  };
}
