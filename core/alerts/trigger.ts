/**
 * An evaluation asked for at once when a bridge reports an instance failed or
 * stopped, instead of waiting for the next scheduled one (QStash cron has a
 * one-minute resolution, and the process driver restarts a killed Node-RED
 * within seconds, so a crash could come and go between two scheduled runs
 * unnoticed). It goes through QStash like the schedule, so the job is the same
 * signed, retried delivery; a burst of reports for one instance within
 * TRIGGER_WINDOW_MS is one evaluation (QStash's deduplication id).
 */
import { Client } from "@upstash/qstash";
import { ALERTS_EVALUATE_PATH } from "../../protocol/api/alerts.ts";
import type { Env } from "../env.ts";
import { CRASH_RESTART_REASON } from "./conditions.ts";

export const TRIGGER_WINDOW_MS = 10_000;

/** Statuses an alert rule can fire on (instance_down, crash_loop), and a crash the driver is restarting from. */
const ALERTING = new Set(["failed", "stopped"]);

export function wantsEvaluation(status: string, reason?: string | null): boolean {
  return ALERTING.has(status) || (status === "starting" && CRASH_RESTART_REASON.test(reason ?? ""));
}

/** Never throws: the scheduled evaluation still runs if this one cannot be published. */
export async function requestAlertEvaluation(env: Env, publicUrl: string, instanceId: string, now = Date.now()): Promise<boolean> {
  if (!env.QSTASH_URL || !env.QSTASH_TOKEN) return false;
  try {
    const client = new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN, retry: false });
    await client.publishJSON({
      url: new URL(ALERTS_EVALUATE_PATH, publicUrl).toString(), body: {}, retries: 2,
      deduplicationId: `alerts-evaluate-${instanceId}-${Math.floor(now / TRIGGER_WINDOW_MS)}`,
    });
    return true;
  } catch (err) {
    console.warn(JSON.stringify({ msg: "alert evaluation not requested", instanceId, err: String(err) }));
    return false;
  }
}
