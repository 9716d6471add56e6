/**
 * The one place pipelines and CI hooks reach rollouts: starting one through
 * core/rollouts/start.ts and reading how one ended from its Postgres
 * projection (the `rollouts` row the RolloutRun writes; its terminal
 * transition awaits the row, so a finished rollout reads as finished).
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { ROLLOUT_STATUSES, rolloutCreateSchema, type Rollout, type RolloutCreate, type RolloutStatus } from "../../protocol/api/rollouts.ts";
import type { Principal } from "../app-env.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../errors.ts";
import { describeIssues } from "../validation.ts";
import { startRollout } from "../rollouts/start.ts";

/** Who starts it, and where from (its audit rows' who/where). */
export interface RolloutActor {
  userId: string;
  principal: Principal;
  ipAddress: string | null;
  userAgent: string | null;
  /** What started it, in ROLLOUT_STARTED's details: "pipeline:<id>/<stage>", "ci_webhook:<hookId>". */
  via?: string;
}

/** A rollout request built from stored defaults, checked as POST /api/rollouts checks it (400 with zod's issues). */
export function rolloutRequest(raw: Record<string, unknown>): RolloutCreate {
  const parsed = rolloutCreateSchema.safeParse(raw);
  if (!parsed.success) throw new ApiError(400, "validation_failed", "the rollout this would start is not valid", describeIssues(parsed.error.issues));
  return parsed.data;
}

export function launchRollout(env: Env, actor: RolloutActor, body: RolloutCreate): Promise<Rollout> {
  return startRollout(env, actor, body);
}

export interface RolloutOutcome { status: RolloutStatus; failure: { code: string; message: string } | null }

/** How each rollout stands (missing ids are left out). */
export async function rolloutOutcomes(db: Db, ids: readonly string[]): Promise<Map<string, RolloutOutcome>> {
  const out = new Map<string, RolloutOutcome>();
  if (ids.length === 0) return out;
  const { rows } = await db.execute(sql`select id, status, failure from rollouts where id in (${sql.join(ids.map((id) => sql`${id}::uuid`), sql`, `)})`);
  for (const r of rows as { id: string; status: string; failure: { code: string; message: string } | null }[]) {
    if ((ROLLOUT_STATUSES as readonly string[]).includes(r.status)) out.set(r.id, { status: r.status as RolloutStatus, failure: r.failure });
  }
  return out;
}
