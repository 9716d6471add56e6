/**
 * The scheduled compliance export (QStash, cron from /api/config): writes the
 * configured reports for the previous complete period. Idempotent: a
 * redelivery finds the period's reports already stored and writes nothing.
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { appendAudit } from "../db/auditChain.ts";
import { complianceExports } from "../db/schema.ts";
import type { AppEnv } from "../core/app-env.ts";
import { readConfig } from "../core/governance/settings.ts";
import { previousPeriod } from "../core/reports/period.ts";
import { reportAudit, reportRow, writeReport } from "../core/reports/store.ts";
import { validate } from "../core/validation.ts";
import { describe } from "../core/openapi/describe.ts";
import { complianceExportRunSchema } from "../protocol/api/platform.ts";
import { verifyQStashSignature } from "./verifySignature.ts";

// Arbitrary constant naming "a compliance export is running" among advisory locks.
const EXPORT_LOCK = 7_470_003;

/** QStash posts "{}"; `at` (the moment the run acts as of) exists for replays and tests. */
const jobBody = z.strictObject({ at: z.iso.datetime({ offset: true }).transform((s) => new Date(s)).optional() });

export const complianceExportJob = new Hono<AppEnv>()
  .post("/compliance-export", describe("Jobs")({
    summary: "Write the configured compliance reports for the previous complete period",
    description: "Idempotent: a redelivery finds the period's reports stored and writes nothing.",
    access: "qstash",
    responses: { 200: complianceExportRunSchema },
  }), verifyQStashSignature, validate("json", jobBody), async (c) => {
    const { db, config } = c.var.services;
    const now = c.req.valid("json").at ?? new Date();
    const { reports, retention } = await readConfig(db);
    if (!reports.schedule) return c.json({ skipped: "scheduled_exports_disabled", written: [] });
    const { from, to } = previousPeriod(reports.period, now);
    const written: { id: string; kind: string; digest: string }[] = [];
    const existing: string[] = [];
    for (const kind of reports.kinds) {
      await db.transaction(async (tx) => {
        // Two deliveries at once must not both write the period's report.
        await tx.execute(sql`select pg_advisory_xact_lock(${EXPORT_LOCK})`);
        const [done] = await tx.select({ id: complianceExports.id }).from(complianceExports).where(and(
          eq(complianceExports.trigger, "scheduled"), eq(complianceExports.kind, kind), eq(complianceExports.format, reports.format),
          reports.framework ? eq(complianceExports.framework, reports.framework) : isNull(complianceExports.framework),
          eq(complianceExports.rangeStart, from), eq(complianceExports.rangeEnd, to),
        )).limit(1);
        if (done) {
          existing.push(done.id);
          return;
        }
        const stored = await writeReport(c.env.REPORTS, { kind, framework: reports.framework, format: reports.format, from, to }, {
          db, now, retention, checkpointKey: config.auditCheckpointKey, includePrompts: reports.includePrompts,
        });
        try {
          await tx.insert(complianceExports).values(reportRow(stored, "scheduled", null));
          await appendAudit(tx, [reportAudit(stored, "scheduled")]);
        } catch (err) {
          await c.env.REPORTS.delete(stored.storageKey).catch(() => {});
          throw err;
        }
        written.push({ id: stored.id, kind, digest: stored.digest });
      });
    }
    return c.json({ from: from.toISOString(), to: to.toISOString(), written, existing });
  });
