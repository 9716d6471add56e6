/**
 * The audit log, read-only: list, verify, export. There is deliberately no
 * route that edits or deletes a row (PATCH/PUT/DELETE fall through to 404);
 * the only writer is appendAudit, in the transaction of the change itself.
 * Reads are not audited per row (that would make every read a write); an
 * export is, since it takes the whole log out of the system.
 */
import { and, desc, eq, gte, lt, lte } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { openDb } from "../../db/client.ts";
import { verifyAuditChain } from "../../db/auditVerify.ts";
import { auditLogs } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { exportRange, exportStream, type ExportFormat, type Trailer } from "../../core/audit/exportFile.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeIdCursor, encodeIdCursor } from "../../core/platform/pagination.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { auditEntrySchema, auditVerifySchema } from "../../protocol/api/governance.ts";

const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const listQuery = z.strictObject({
  from: isoDate.optional(),
  to: isoDate.optional(),
  userId: z.string().min(1).max(255).optional(),
  action: z.string().min(1).max(100).optional(),
  resourceType: z.string().min(1).max(50).optional(),
  resourceId: z.string().min(1).max(255).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});
const exportQuery = z.strictObject({
  format: z.enum(["ndjson", "csv"]).default("ndjson"),
  from: isoDate.optional(),
  to: isoDate.optional(),
});

const CONTENT_TYPE: Record<ExportFormat, string> = {
  ndjson: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8",
};

const doc = describe("Audit");

export const auditRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List audit entries, newest first", responses: { 200: pageOf(auditEntrySchema) } }), requirePermission("audit", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeIdCursor(q.cursor);
    const rows = await c.var.services.db.select().from(auditLogs).where(and(
      q.from ? gte(auditLogs.timestamp, q.from) : undefined,
      q.to ? lte(auditLogs.timestamp, q.to) : undefined,
      q.userId ? eq(auditLogs.userId, q.userId) : undefined,
      q.action ? eq(auditLogs.action, q.action) : undefined,
      q.resourceType ? eq(auditLogs.resourceType, q.resourceType) : undefined,
      q.resourceId ? eq(auditLogs.resourceId, q.resourceId) : undefined,
      cursor !== undefined ? lt(auditLogs.id, cursor) : undefined,
    )).orderBy(desc(auditLogs.id)).limit(q.limit + 1);
    const items = rows.slice(0, q.limit);
    const last = items[items.length - 1];
    return c.json({ items, nextCursor: rows.length > q.limit && last ? encodeIdCursor(last.id) : null });
  })
  // 200 whether or not the chain holds: a broken chain is a finding, not a failed request.
  // After a retention purge the walk starts at the latest signed checkpoint, not genesis.
  .get("/verify", doc({
    summary: "Verify the audit hash chain",
    description: "Walks from genesis or, after a retention purge, from the latest signed checkpoint. 200 whether or not the chain holds: a broken chain is a finding (`ok: false`, `firstBroken`), not a failed request.",
    responses: { 200: auditVerifySchema },
  }), requirePermission("audit", "read"), async (c) => {
    return c.json(await verifyAuditChain(c.var.services.db, { checkpointKey: c.var.services.config.auditCheckpointKey }));
  })
  .get("/export", doc({
    summary: "Export the audit log as a file (NDJSON or CSV) with a verification trailer",
    description: "Every row with its prev_hash/hash and a trailer with the chain head; verify offline with `npx tsx scripts/verify-audit-export.ts file.ndjson` (docs/audit.md). The export itself is audited. Headers X-Audit-Rows, X-Audit-Verified and X-Audit-Head-Id/-Hash carry the trailer's facts.",
    responses: { 200: { description: "The audit log file", media: ["application/x-ndjson", "text/csv"] } },
  }), requirePermission("audit", "read"), validate("query", exportQuery), async (c) => {
    const q = c.req.valid("query");
    const db = c.var.services.db;
    const range = await exportRange(db, q.from, q.to);
    // Verify exactly the rows the file ships, linked to the row before them.
    const check = range ? await verifyAuditChain(db, { fromId: range.fromId, toId: range.toId, checkpointKey: c.var.services.config.auditCheckpointKey }) : null;
    const trailer: Trailer = {
      head: range?.head ?? null,
      verified: check?.ok ?? true,
      generatedAt: new Date().toISOString(),
      rows: range?.rows ?? 0,
      ...(check && !check.ok ? { firstBroken: check.firstBroken } : {}),
      ...(check?.checkpoint ? { checkpoint: check.checkpoint } : {}),
    };
    // Recorded before the first byte leaves: an export the client abandons is still on record.
    await transact(c, async (_tx, record) => record({
      action: "AUDIT_EXPORTED", resourceType: "audit", resourceId: null,
      details: {
        format: q.format, from: q.from?.toISOString() ?? null, to: q.to?.toISOString() ?? null,
        rows: trailer.rows, headId: trailer.head?.id ?? null, headHash: trailer.head?.hash ?? null, verified: trailer.verified,
      },
    }));
    const { databaseUrl, neonLocalProxy } = c.var.services.config;
    const stamp = trailer.generatedAt.replace(/[:.]/g, "-");
    return c.body(exportStream(() => openDb(databaseUrl, neonLocalProxy), q.format, range, trailer), 200, {
      "Content-Type": CONTENT_TYPE[q.format],
      "Content-Disposition": `attachment; filename="audit-${stamp}.${q.format}"`,
      "Cache-Control": "no-store",
      // The trailer's facts up front too, for clients that only look at headers.
      "X-Audit-Rows": String(trailer.rows),
      "X-Audit-Verified": String(trailer.verified),
      ...(trailer.head ? { "X-Audit-Head-Id": String(trailer.head.id), "X-Audit-Head-Hash": trailer.head.hash } : {}),
    });
  });
