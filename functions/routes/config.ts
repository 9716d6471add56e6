/**
 * GET/PUT /api/config (config:read / config:update; admins): when compliance
 * reports are exported and how long each table keeps rows. PUT replaces each
 * part it names, syncs the QStash schedules, and commits only if QStash
 * accepted them; the audit row holds the document before and after.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { desiredSchedules, syncConfigSchedules } from "../../core/governance/configSchedules.ts";
import { readConfig, reportsShape, retentionShape, writeConfigPart, type ControlPlaneConfig } from "../../core/governance/settings.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";

const putBody = z.strictObject({ reports: reportsShape.optional(), retention: retentionShape.optional() })
  .refine((b) => b.reports !== undefined || b.retention !== undefined, "send reports, retention or both");

/** The stored settings with defaults applied, and the QStash schedules they imply (null: none). */
const configSchema = z.object({
  reports: reportsShape,
  retention: retentionShape,
  schedules: z.object({ complianceExport: z.string().nullable(), retentionPurge: z.string().nullable() }),
}).meta({ id: "ControlPlaneConfig" });
const doc = describe("Config");

const view = (cfg: ControlPlaneConfig) => ({ ...cfg, schedules: desiredSchedules(cfg) });

export const configRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "The control-plane settings and the schedules they imply", responses: { 200: configSchema } }), requirePermission("config", "read"), async (c) => c.json(view(await readConfig(c.var.services.db))))
  .put("/", doc({
    summary: "Replace the report schedule, the retention, or both",
    description: "Syncs the QStash schedules `redforge-compliance-export` and `redforge-retention-purge`, and commits only if QStash accepted them.",
    responses: { 200: configSchema },
  }), requirePermission("config", "update"), validate("json", putBody), async (c) => {
    const body = c.req.valid("json");
    const publicUrl = c.env.PUBLIC_URL || new URL(c.req.url).origin;
    const next = await transact(c, async (tx, record) => {
      const before = await readConfig(tx);
      const after: ControlPlaneConfig = { reports: body.reports ?? before.reports, retention: body.retention ?? before.retention };
      if (body.reports) await writeConfigPart(tx, "reports", body.reports, c.var.principal!.userId);
      if (body.retention) await writeConfigPart(tx, "retention", body.retention, c.var.principal!.userId);
      // Inside the transaction: if QStash refuses, the stored config stays as it was.
      const schedules = await syncConfigSchedules(c.env, publicUrl, after);
      record({ action: "CONFIG_UPDATED", resourceType: "config", resourceId: null, details: { before, after, schedules } });
      return after;
    });
    return c.json(view(next));
  });
