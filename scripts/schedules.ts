/**
 * The QStash schedules the control plane relies on, kept in one list and
 * synced idempotently by id (creating a schedule with an existing id updates
 * it). `npm start` runs this against the emulator; for production run
 * `npm run schedules:sync` with QSTASH_TOKEN and PUBLIC_URL set.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@upstash/qstash";
import { HEALTH_SWEEP_PATH } from "../protocol/paths.ts";
import { ALERTS_EVALUATE_PATH } from "../protocol/api/alerts.ts";

export interface ScheduleSpec {
  id: string;
  path: string;
  cron: string;
  description: string;
}

export const SCHEDULES: ScheduleSpec[] = [
  // QStash's cron resolution is one minute; bridges also report crashes on their own at once.
  { id: "redforge-health-sweep", path: HEALTH_SWEEP_PATH, cron: "* * * * *", description: "ask every cluster's bridge for instance health" },
  // Right after the sweep's answers land is when readiness changed; QStash cannot go below a minute.
  { id: "redforge-alerts-evaluate", path: ALERTS_EVALUATE_PATH, cron: "* * * * *", description: "evaluate alert rules, fire and resolve alerts, notify channels" },
];

export async function syncSchedules(opts: { qstashUrl?: string; token: string; publicUrl: string }): Promise<string[]> {
  const client = new Client({ token: opts.token, ...(opts.qstashUrl ? { baseUrl: opts.qstashUrl } : {}) });
  const ids: string[] = [];
  for (const s of SCHEDULES) {
    const { scheduleId } = await client.schedules.create({
      scheduleId: s.id, destination: new URL(s.path, opts.publicUrl).toString(), cron: s.cron, retries: 2, body: "{}",
      headers: { "Content-Type": "application/json" },
    });
    ids.push(scheduleId);
  }
  return ids;
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const { QSTASH_TOKEN, PUBLIC_URL, QSTASH_URL } = process.env;
  if (!QSTASH_TOKEN || !PUBLIC_URL) {
    console.error("schedules:sync: set QSTASH_TOKEN and PUBLIC_URL (and QSTASH_URL for a non-default endpoint)");
    process.exit(1);
  }
  syncSchedules({ token: QSTASH_TOKEN, publicUrl: PUBLIC_URL, qstashUrl: QSTASH_URL }).then(
    (ids) => console.log(`schedules:sync: ${ids.join(", ")}`),
    (err: Error) => { console.error(`schedules:sync failed: ${err.message}`); process.exit(1); },
  );
}
