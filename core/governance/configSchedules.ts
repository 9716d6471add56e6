/**
 * The QStash schedules that follow /api/config: the compliance export (its
 * cron is configurable, null deletes it) and the daily retention purge
 * (present while any table has a retention). Synced idempotently by id:
 * creating a schedule with an existing id replaces it.
 */
import { Client } from "@upstash/qstash";
import { COMPLIANCE_EXPORT_PATH, RETENTION_PURGE_PATH } from "../../protocol/paths.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../errors.ts";
import { RETENTION_TABLES, type ControlPlaneConfig } from "./settings.ts";

export const COMPLIANCE_SCHEDULE_ID = "redforge-compliance-export";
export const RETENTION_SCHEDULE_ID = "redforge-retention-purge";
/** Once a day, off the hour most other jobs pick. */
export const RETENTION_CRON = "17 3 * * *";

export interface ScheduleState { complianceExport: string | null; retentionPurge: string | null }

export function desiredSchedules(cfg: ControlPlaneConfig): ScheduleState {
  return {
    complianceExport: cfg.reports.schedule,
    retentionPurge: RETENTION_TABLES.some((t) => cfg.retention[t] !== null) ? RETENTION_CRON : null,
  };
}

function client(env: Env): Client {
  if (!env.QSTASH_URL || !env.QSTASH_TOKEN) {
    throw new ApiError(503, "scheduler_unavailable", "QSTASH_URL and QSTASH_TOKEN are not set; schedules cannot be synced");
  }
  return new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN, retry: false });
}

async function put(c: Client, id: string, cron: string | null, destination: string): Promise<void> {
  try {
    if (cron) {
      await c.schedules.create({ scheduleId: id, destination, cron, retries: 3, body: "{}", headers: { "Content-Type": "application/json" } });
    } else {
      await c.schedules.delete(id).catch((err: Error) => {
        if (!/not found|404/i.test(err.message)) throw err;
      });
    }
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    // QStash is the final judge of a cron expression.
    if (/cron/i.test(message)) throw new ApiError(400, "invalid_cron", `QStash refused the schedule: ${message}`);
    throw new ApiError(502, "schedule_sync_failed", `QStash did not accept the schedule ${id}: ${message}`);
  }
}

/** `publicUrl`: where QStash reaches this Worker (PUBLIC_URL, else the request's origin). */
export async function syncConfigSchedules(env: Env, publicUrl: string, cfg: ControlPlaneConfig): Promise<ScheduleState> {
  const want = desiredSchedules(cfg);
  const c = client(env);
  await put(c, COMPLIANCE_SCHEDULE_ID, want.complianceExport, new URL(COMPLIANCE_EXPORT_PATH, publicUrl).toString());
  await put(c, RETENTION_SCHEDULE_ID, want.retentionPurge, new URL(RETENTION_PURGE_PATH, publicUrl).toString());
  return want;
}
