/**
 * Replaying a dead letter: an operator's request is kept on the letter's row
 * (`replay_state` pending, who and when), the cluster's bridge collects the
 * pending ones with a signed call, sends each letter's `input` again to the
 * instance (the primitive's HTTP entry behind the front door, or the MQTT
 * ingest for a letter that names no primitive) and reports the outcome with
 * its next call. A replay the bridge collected and never reported (it
 * crashed) is handed out again after REPLAY_RESEND_AFTER_MS.
 */
import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { deadLetters as t, instances } from "../../db/schema.ts";
import { ApiError, notFound } from "../errors.ts";
import { mqttTopics } from "../../protocol/mqtt.ts";
import {
  MAX_REPLAYS_PER_COLLECT, REPLAYABLE_PRIMITIVE,
  type DeadLetterReplay, type DeadLetterReplayResult, type DeadLetterReplayTarget,
} from "../../protocol/deadLetters.ts";
import type { DeadLetterRow } from "./deadLetters.ts";

/** Longer than the bridge's own per-replay timeout (120 s), so a slow primitive is not sent the letter twice. */
export const REPLAY_RESEND_AFTER_MS = 180_000;

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/**
 * Marks the letter for replay. 409 `already_replayed` when it was replayed
 * before (unless `force`), `replay_pending` while a replay waits for the
 * bridge (even with force: it would be sent twice), `input_unavailable` when
 * the bridge kept no input to send (none, or truncated above 64 KB).
 */
export async function requestReplay(tx: Tx, id: number, userId: string | null, force: boolean, now: Date): Promise<{ before: DeadLetterRow; after: DeadLetterRow }> {
  const [row] = await tx.select().from(t).where(eq(t.id, id)).for("update").limit(1);
  if (!row) throw notFound("dead letter", String(id));
  if (row.replayState === "pending") {
    throw new ApiError(409, "replay_pending", `dead letter ${id} is already waiting for its cluster's bridge to replay it (requested ${row.replayedAt?.toISOString()})`, { replayedAt: row.replayedAt, replayedBy: row.replayedBy });
  }
  if (row.replayState && !force) {
    throw new ApiError(409, "already_replayed", `dead letter ${id} was replayed at ${row.replayedAt?.toISOString()} (${row.replayState}); add ?force=true to send it again`, { replayedAt: row.replayedAt, replayedBy: row.replayedBy, replayState: row.replayState });
  }
  if (!replayableInput(row.input)) {
    throw new ApiError(409, "input_unavailable", row.input == null
      ? `dead letter ${id} carries no input to send again`
      : `dead letter ${id}'s input was larger than 64 KB and was not kept; it cannot be replayed`);
  }
  if (row.primitive && !REPLAYABLE_PRIMITIVE.test(row.primitive)) {
    throw new ApiError(409, "not_replayable", `dead letter ${id} names primitive ${JSON.stringify(row.primitive)}, which is not a route the bridge can call`);
  }
  const [after] = await tx.update(t).set({
    replayState: "pending", replayedBy: userId, replayedAt: now, replayCount: sql`${t.replayCount} + 1`, replaySentAt: null, replayResult: null,
  }).where(eq(t.id, id)).returning();
  return { before: row, after: after! };
}

function replayableInput(input: unknown): boolean {
  if (input === null || input === undefined) return false;
  return !(typeof input === "object" && !Array.isArray(input) && (input as { truncated?: unknown }).truncated === true && Object.keys(input).length === 2);
}

/** Where the bridge sends the letter: the primitive's route on the instance's front door (admin when it has none), else the ingest topic. */
export function replayTarget(row: Pick<DeadLetterRow, "instanceId" | "primitive">, endpoints: Record<string, string>): DeadLetterReplayTarget | undefined {
  if (!row.primitive) return { kind: "mqtt", topic: mqttTopics.ingest(row.instanceId) };
  const base = endpoints.front ?? endpoints.admin;
  if (!base) return undefined;
  return { kind: "http", url: `${base.replace(/\/+$/, "")}/agents/${row.primitive}` };
}

/** Applies the bridge's results (only to pending replays of its own cluster), then hands out the next pending ones. */
export async function collectReplays(db: Db, clusterId: string, results: DeadLetterReplayResult[], now: Date): Promise<{ replays: DeadLetterReplay[]; applied: number }> {
  let applied = 0;
  for (const r of results) {
    const outcome = { ok: r.ok, ...(r.status !== undefined ? { status: r.status } : {}), ...(r.code ? { code: r.code } : {}), ...(r.message ? { message: r.message } : {}), at: now.toISOString() };
    const done = await db.update(t).set({ replayState: r.ok ? "succeeded" : "failed", replayResult: outcome })
      .where(and(eq(t.id, r.id), eq(t.clusterId, clusterId), eq(t.replayState, "pending"))).returning({ id: t.id });
    applied += done.length;
  }
  const due = await db.select({ id: t.id, instanceId: t.instanceId, primitive: t.primitive, input: t.input, endpoints: instances.endpoints })
    .from(t).innerJoin(instances, eq(instances.id, t.instanceId))
    .where(and(eq(t.clusterId, clusterId), eq(t.replayState, "pending"), isNull(instances.deletedAt),
      or(isNull(t.replaySentAt), lt(t.replaySentAt, new Date(now.getTime() - REPLAY_RESEND_AFTER_MS)))))
    .orderBy(t.id).limit(MAX_REPLAYS_PER_COLLECT);
  const replays: DeadLetterReplay[] = [];
  const unreachable: number[] = [];
  for (const d of due) {
    const target = replayTarget(d, d.endpoints);
    if (!target) { unreachable.push(d.id); continue; }
    replays.push({ id: d.id, instanceId: d.instanceId, target, input: d.input });
  }
  if (unreachable.length) {
    // No endpoint yet (never started): said on the row rather than handed out forever.
    await db.update(t).set({ replayState: "failed", replayResult: { ok: false, code: "instance_unreachable", message: "the instance has no endpoint to send the letter to", at: now.toISOString() } })
      .where(and(inArray(t.id, unreachable), eq(t.replayState, "pending")));
  }
  if (replays.length) await db.update(t).set({ replaySentAt: now }).where(inArray(t.id, replays.map((r) => r.id)));
  return { replays, applied };
}
