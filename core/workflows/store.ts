/**
 * Checkpointed workflows in the control plane: stores the records the bridge
 * forwards (each once, by checkpointId), keeps one `workflows` row per run
 * with the state of its latest record, and hands the bridge the operators'
 * pending replay/cancel requests (directives) for its instances, re-sent every
 * 30 s until the bridge reports what it did.
 */
import { and, desc, eq, inArray, isNotNull, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { instances, workflowCheckpoints, workflows } from "../../db/schema.ts";
import { ApiError } from "../errors.ts";
import { stateOfPhase, type CheckpointBatch, type CheckpointRecord, type Directive } from "../../protocol/workflows.ts";

/** A directive not answered within this is sent again (the bridge restarted, or its answer was lost). */
export const DIRECTIVE_RESEND_MS = 30_000;
const MAX_DIRECTIVES = 50;
/** Phases a replay can start from (a record of where the run stood, not of how it ended). */
export const RESUMABLE_PHASES = ["started", "completed", "handed_over"] as const;

export async function ingestCheckpoints(db: Db, clusterId: string, batch: CheckpointBatch, now: Date): Promise<{ stored: number; directives: Directive[] }> {
  const ids = [...new Set(batch.records.map((r) => r.instanceId))];
  if (ids.length) {
    const known = await db.select({ id: instances.id }).from(instances).where(and(eq(instances.clusterId, clusterId), inArray(instances.id, ids)));
    const mine = new Set(known.map((r) => r.id));
    const foreign = ids.filter((id) => !mine.has(id));
    if (foreign.length) throw new ApiError(403, "instance_not_in_cluster", `${foreign.length} instance(s) in this batch do not belong to cluster ${clusterId}; nothing was stored`, { instanceIds: foreign });
  }
  let stored = 0;
  if (batch.records.length) {
    const inserted = await db.insert(workflowCheckpoints).values(batch.records.map((r) => ({
      instanceId: r.instanceId, workflowId: r.workflowId, step: r.step, state: r.state ?? null, checkpointId: r.checkpointId,
      kind: r.kind, phase: r.phase, inputHash: r.inputHash ?? null, completed: r.completed, runtimeId: r.runtimeId ?? null,
      error: r.error ?? null, recordedAt: new Date(r.at),
    }))).onConflictDoNothing({ target: workflowCheckpoints.checkpointId }).returning({ checkpointId: workflowCheckpoints.checkpointId });
    stored = inserted.length;
    const fresh = new Set(inserted.map((r) => r.checkpointId));
    for (const rec of latestPerRun(batch.records.filter((r) => fresh.has(r.checkpointId)))) await upsertRun(db, rec);
  }
  for (const r of batch.results) {
    await db.update(workflows).set({
      pendingAction: null, pendingFromStep: null, actionSentAt: null,
      lastAction: { action: r.action, outcome: r.outcome, at: now.toISOString(), ...(r.error ? { error: r.error } : {}) },
    }).where(and(eq(workflows.id, r.id), eq(workflows.pendingAction, r.action)));
  }
  return { stored, directives: await pendingDirectives(db, clusterId, now) };
}

function latestPerRun(records: CheckpointRecord[]): CheckpointRecord[] {
  const by = new Map<string, CheckpointRecord>();
  for (const r of records) {
    const key = `${r.instanceId}\0${r.workflowId}`;
    const seen = by.get(key);
    if (!seen || Date.parse(seen.at) <= Date.parse(r.at)) by.set(key, r);
  }
  return [...by.values()];
}

/** The run's row follows its newest record (records may arrive out of order across runtimes). */
async function upsertRun(db: Db, r: CheckpointRecord): Promise<void> {
  const at = new Date(r.at);
  const values = {
    kind: r.kind, state: stateOfPhase(r.phase), lastStep: r.step, lastPhase: r.phase, completed: r.completed,
    error: r.error ?? null, runtimeId: r.runtimeId ?? null, updatedAt: at,
  };
  await db.insert(workflows).values({ instanceId: r.instanceId, workflowId: r.workflowId, startedAt: at, ...values })
    .onConflictDoUpdate({
      target: [workflows.instanceId, workflows.workflowId],
      set: values,
      setWhere: sql`${workflows.updatedAt} <= ${at.toISOString()}::timestamptz`,
    });
}

async function pendingDirectives(db: Db, clusterId: string, now: Date): Promise<Directive[]> {
  const rows = await db.select({ w: workflows }).from(workflows)
    .innerJoin(instances, eq(instances.id, workflows.instanceId))
    .where(and(
      eq(instances.clusterId, clusterId), isNull(instances.deletedAt), isNotNull(workflows.pendingAction),
      or(isNull(workflows.actionSentAt), lt(workflows.actionSentAt, new Date(now.getTime() - DIRECTIVE_RESEND_MS))),
    )).limit(MAX_DIRECTIVES);
  const out: Directive[] = [];
  for (const { w } of rows) {
    const action = w.pendingAction as Directive["action"];
    const base = { id: w.id, instanceId: w.instanceId, workflowId: w.workflowId, action };
    if (action === "cancel") {
      out.push(base);
    } else {
      const from = await replayPoint(db, w.instanceId, w.workflowId, w.pendingFromStep ?? undefined);
      if (!from) {
        // Its checkpoints were purged since the request: nothing to replay from.
        await db.update(workflows).set({ pendingAction: null, pendingFromStep: null, actionSentAt: null,
          lastAction: { action, outcome: "failed", at: now.toISOString(), error: { code: "checkpoint_not_found", message: "no checkpoint to replay from" } } }).where(eq(workflows.id, w.id));
        continue;
      }
      out.push({ ...base, record: from });
    }
  }
  if (out.length) await db.update(workflows).set({ actionSentAt: now }).where(inArray(workflows.id, out.map((d) => d.id)));
  return out;
}

/**
 * Where a replay starts: the newest record that says where the run stood (a step begun,
 * completed or handed over), of `fromStep` when given. Sent as `handed_over` so the
 * runtime continues after a completed step or runs a begun one again.
 */
export async function replayPoint(db: Db, instanceId: string, workflowId: string, fromStep?: string): Promise<Directive["record"] | undefined> {
  const [row] = await db.select().from(workflowCheckpoints).where(and(
    eq(workflowCheckpoints.instanceId, instanceId), eq(workflowCheckpoints.workflowId, workflowId),
    inArray(workflowCheckpoints.phase, [...RESUMABLE_PHASES]),
    fromStep ? eq(workflowCheckpoints.step, fromStep) : undefined,
  )).orderBy(desc(workflowCheckpoints.recordedAt), desc(workflowCheckpoints.createdAt)).limit(1);
  if (!row || !row.kind || !row.phase) return undefined;
  const resume = row.phase === "started" || (row.phase === "handed_over" && row.completed && !row.completed.includes(row.step)) ? "before" : "after";
  return { workflowId, kind: row.kind, step: row.step, phase: "handed_over", resume, state: row.state, completed: (row.completed ?? []).filter((s) => resume === "after" || s !== row.step), ...(row.inputHash ? { inputHash: row.inputHash } : {}) };
}
