/**
 * The control plane's editable configuration (GET/PUT /api/config): when
 * compliance reports are exported and how long each growing table keeps its
 * rows. Stored as one jsonb document per part in `settings`; absent parts
 * read as the defaults (no scheduled reports, keep everything).
 */
import { inArray } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client.ts";
import { settings } from "../../db/schema.ts";

export const REPORT_KINDS = ["audit_trail", "ai_decisions", "access", "data_retention"] as const;
export const FRAMEWORKS = ["hipaa", "soc2", "gdpr"] as const;
export const REPORT_FORMATS = ["json", "ndjson", "csv"] as const;
export const RETENTION_TABLES = ["audit_logs", "ai_decision_logs", "instance_health"] as const;

export type ReportKind = (typeof REPORT_KINDS)[number];
export type Framework = (typeof FRAMEWORKS)[number];
export type ReportFormat = (typeof REPORT_FORMATS)[number];
export type RetentionTable = (typeof RETENTION_TABLES)[number];

// Five fields (QStash has no seconds field); QStash itself is the final judge when the schedule syncs.
const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;
export const cronShape = z.string().trim().max(100).refine((s) => {
  const fields = s.split(/\s+/);
  return fields.length === 5 && fields.every((f) => CRON_FIELD.test(f));
}, "a five-field cron expression, e.g. \"0 2 * * *\" (UTC)");

/** null keeps rows forever. */
const days = z.number().int().min(1).max(36_500).nullable();

export const reportsShape = z.strictObject({
  /** When the export runs (UTC); null turns scheduled exports off. */
  schedule: cronShape.nullable(),
  kinds: z.array(z.enum(REPORT_KINDS)).min(1).max(REPORT_KINDS.length)
    .refine((k) => new Set(k).size === k.length, "each kind once"),
  framework: z.enum(FRAMEWORKS).nullable().default(null),
  format: z.enum(REPORT_FORMATS).default("json"),
  /** The complete UTC period before each run that its reports cover. */
  period: z.enum(["day", "week", "month"]).default("day"),
  /** Prompt and response text in scheduled AI decision reports (anyone with reports:read can download them). */
  includePrompts: z.boolean().default(false),
});
export const retentionShape = z.strictObject({
  audit_logs: days.default(null),
  ai_decision_logs: days.default(null),
  instance_health: days.default(null),
});
export type ReportsConfig = z.output<typeof reportsShape>;
export type RetentionConfig = z.output<typeof retentionShape>;
export interface ControlPlaneConfig { reports: ReportsConfig; retention: RetentionConfig }

export const DEFAULT_CONFIG: ControlPlaneConfig = {
  reports: { schedule: null, kinds: ["audit_trail"], framework: null, format: "json", period: "day", includePrompts: false },
  retention: { audit_logs: null, ai_decision_logs: null, instance_health: null },
};

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export async function readConfig(db: Db | Tx): Promise<ControlPlaneConfig> {
  const rows = await db.select().from(settings).where(inArray(settings.key, ["reports", "retention"]));
  const stored = Object.fromEntries(rows.map((r) => [r.key, r.value]));
  // A document written by an older version is read leniently: unknown or bad parts fall back to defaults.
  const reports = reportsShape.safeParse(stored.reports);
  const retention = retentionShape.safeParse(stored.retention);
  return {
    reports: reports.success ? reports.data : DEFAULT_CONFIG.reports,
    retention: retention.success ? retention.data : DEFAULT_CONFIG.retention,
  };
}

export async function writeConfigPart(tx: Tx, key: keyof ControlPlaneConfig, value: unknown, userId: string | null): Promise<void> {
  const now = new Date();
  await tx.insert(settings).values({ key, value, updatedBy: userId, updatedAt: now })
    .onConflictDoUpdate({ target: settings.key, set: { value, updatedBy: userId, updatedAt: now } });
}
