/**
 * The `rollouts` row: what GET /api/rollouts lists without waking every
 * RolloutRun. Written in full on every change of status, wave or summary, so
 * a failed write is repaired by the next; the object's storage is the truth.
 */
import type { Db } from "../../db/client.ts";
import { rollouts } from "../../db/schema.ts";
import { summaryOf, type RunState } from "./state.ts";

export async function writeRow(db: Db, s: RunState): Promise<void> {
  const m = s.meta;
  const row = {
    status: m.status, currentWave: m.currentWave, waveCount: m.waveCount, summary: summaryOf(s.waves), failure: m.failure,
    updatedAt: new Date(m.updatedAt), completedAt: m.completedAt ? new Date(m.completedAt) : null,
  };
  await db.insert(rollouts).values({
    id: m.id, selector: m.selector, description: m.description, flowsDigest: m.flowsDigest, versionId: m.versionId,
    plan: { ...m.plan }, createdBy: m.createdBy, createdAt: new Date(m.createdAt), ...row,
  }).onConflictDoUpdate({ target: rollouts.id, set: row });
}
