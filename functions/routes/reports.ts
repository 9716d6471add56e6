/**
 * Compliance reports (seed 5.4): POST builds one for a time range and stores
 * it (REPORTS bucket), recording its SHA-256 in the audit chain; GET lists
 * them; GET /:id/download streams the stored file with its digest. Reports
 * and their downloads are audited: they take data out of the system.
 */
import { and, desc, eq, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { complianceExports } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { toBase64 } from "../../protocol/encoding.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { FRAMEWORKS, readConfig, REPORT_FORMATS, REPORT_KINDS } from "../../core/governance/settings.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { allows } from "../rbac/permissions.ts";
import { CONTENT_TYPE } from "../../core/reports/serialize.ts";
import { sectionNames } from "../../core/reports/shapes.ts";
import { reportAudit, reportRow, writeReport } from "../../core/reports/store.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { reportCreatedSchema, reportSchema } from "../../protocol/api/governance.ts";

const MAX_RANGE_DAYS = 366;
const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const createBody = z.strictObject({
  kind: z.enum(REPORT_KINDS),
  framework: z.enum(FRAMEWORKS).nullable().default(null),
  from: isoDate,
  to: isoDate,
  format: z.enum(REPORT_FORMATS).default("json"),
});
const listQuery = z.strictObject({
  ...pageQuery,
  kind: z.enum(REPORT_KINDS).optional(),
  trigger: z.enum(["on_demand", "scheduled"]).optional(),
});
const idParam = z.object({ id: z.uuid() });

type Row = typeof complianceExports.$inferSelect;
const view = (r: Row) => ({
  id: r.id, kind: r.kind, framework: r.framework, format: r.format, from: r.rangeStart, to: r.rangeEnd,
  storageKey: r.storageKey, digest: r.digest, size: r.sizeBytes, trigger: r.trigger, createdBy: r.createdBy,
  createdAt: r.createdAt, downloadUrl: `/api/reports/${r.id}/download`,
});

const doc = describe("Reports");

export const reportRoutes = new Hono<AppEnv>()
  .post("/", doc({
    summary: "Build and store a compliance report for a time range (at most 366 days)",
    description: "Its SHA-256 is recorded in the audit chain.",
    responses: { 201: reportCreatedSchema },
  }), requirePermission("reports", "create"), validate("json", createBody), async (c) => {
    const body = c.req.valid("json");
    if (body.from >= body.to) throw new ApiError(400, "invalid_range", "from must be before to");
    if (body.to.getTime() - body.from.getTime() > MAX_RANGE_DAYS * 86_400_000) {
      throw new ApiError(400, "range_too_long", `a report covers at most ${MAX_RANGE_DAYS} days; split it`);
    }
    const { db, config } = c.var.services;
    const principal = c.var.principal!;
    const stored = await writeReport(c.env.REPORTS, body, {
      db, now: new Date(), retention: (await readConfig(db)).retention, checkpointKey: config.auditCheckpointKey,
      // Prompt and response text only for those who may read it anyway.
      includePrompts: allows(principal.permissions, "ai_prompts", "read"),
    });
    try {
      const row = await transact(c, async (tx, record) => {
        const [created] = await tx.insert(complianceExports).values(reportRow(stored, "on_demand", principal.userId)).returning();
        record(reportAudit(stored, "on_demand"));
        return created!;
      });
      return c.json({ ...view(row), sections: sectionNames(body.kind, body.framework) }, 201);
    } catch (err) {
      await c.env.REPORTS.delete(stored.storageKey).catch(() => {});
      throw err;
    }
  })
  .get("/", doc({ summary: "List stored reports, newest first", responses: { 200: pageOf(reportSchema) } }), requirePermission("reports", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(complianceExports).where(and(
      q.kind ? eq(complianceExports.kind, q.kind) : undefined,
      q.trigger ? eq(complianceExports.trigger, q.trigger) : undefined,
      cursor ? or(lt(complianceExports.createdAt, cursor.createdAt), and(eq(complianceExports.createdAt, cursor.createdAt), lt(complianceExports.id, cursor.id))) : undefined,
    )).orderBy(desc(complianceExports.createdAt), desc(complianceExports.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(view), nextCursor });
  })
  .get("/:id", doc({ summary: "A stored report", responses: { 200: reportSchema }, errors: [404] }), requirePermission("reports", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(complianceExports).where(eq(complianceExports.id, id)).limit(1);
    if (!row) throw notFound("report", id);
    return c.json(view(row));
  })
  .get("/:id/download", doc({
    summary: "Download a stored report (audited)",
    description: "X-Report-Digest and Repr-Digest (RFC 9530) carry the digest recorded at creation.",
    responses: { 200: { description: "The report file", media: ["application/json", "application/x-ndjson", "text/csv"] } },
    errors: [404, 410],
  }), requirePermission("reports", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(complianceExports).where(eq(complianceExports.id, id)).limit(1);
    if (!row) throw notFound("report", id);
    const object = await c.env.REPORTS.get(row.storageKey);
    if (!object) throw new ApiError(410, "report_file_missing", `the stored file of report ${id} is gone from the bucket`, { storageKey: row.storageKey });
    await transact(c, async (_tx, record) => record({
      action: "REPORT_DOWNLOADED", resourceType: "report", resourceId: id, details: { storageKey: row.storageKey, digest: row.digest },
    }));
    const format = row.format as keyof typeof CONTENT_TYPE;
    const hexBytes = new Uint8Array(row.digest.match(/../g)!.map((h) => parseInt(h, 16)));
    return c.body(object.body, 200, {
      "Content-Type": CONTENT_TYPE[format] ?? "application/octet-stream",
      "Content-Length": String(object.size),
      "Content-Disposition": `attachment; filename="report-${row.kind}${row.framework ? `-${row.framework}` : ""}-${id}.${row.format}"`,
      "Cache-Control": "no-store",
      // The digest recorded in the audit log at creation (hex), and RFC 9530's form of it.
      "X-Report-Digest": `sha256=${row.digest}`,
      "Repr-Digest": `sha-256=:${toBase64(hexBytes)}:`,
    });
  });

