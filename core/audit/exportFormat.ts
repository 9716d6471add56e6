/**
 * The bytes of an audit export, row by row: NDJSON lines or CSV records with
 * the table's column names. Pure (no database), so the offline verifier's
 * tests build files with exactly the code the export streams with.
 */
import { canonicalJson } from "../../db/auditChain.ts";
import type { auditLogs } from "../../db/schema.ts";
import { csvCell, csvLine } from "./csv.ts";

export type ExportFormat = "ndjson" | "csv";
type AuditRow = typeof auditLogs.$inferSelect;

/** What every trailer holds (core/audit/exportFile.ts `Trailer` types the rest). */
export interface TrailerFields {
  head: { id: number; hash: string } | null;
  verified: boolean;
  generatedAt: string;
  rows: number;
  firstBroken?: unknown;
  checkpoint?: unknown;
}

/** Column names as in the table (snake_case): the file describes the table, not the API. */
export function exportRecord(r: AuditRow) {
  return {
    id: r.id, timestamp: r.timestamp.toISOString(), user_id: r.userId, action: r.action,
    resource_type: r.resourceType, resource_id: r.resourceId, details: r.details ?? null,
    ip_address: r.ipAddress, user_agent: r.userAgent, status_code: r.statusCode,
    prev_hash: r.prevHash, hash: r.hash,
  };
}

const CSV_COLUMNS = Object.keys(exportRecord({
  id: 0, timestamp: new Date(0), userId: null, action: "", resourceType: null, resourceId: null,
  details: null, ipAddress: null, userAgent: null, statusCode: null, prevHash: "", hash: "",
}));

/** `details` as canonical JSON text (a JSON string too), so the verifier can parse it back; the other cells as they are. */
function csvRecord(r: AuditRow): unknown[] {
  const rec = exportRecord(r);
  return Object.values({ ...rec, details: rec.details === null ? null : canonicalJson(rec.details) });
}

export function formatHeader(format: ExportFormat): string {
  return format === "csv" ? csvLine(CSV_COLUMNS) : "";
}

export function formatRow(format: ExportFormat, r: AuditRow): string {
  return format === "ndjson" ? `${JSON.stringify(exportRecord(r))}\n` : csvLine(csvRecord(r));
}

/** NDJSON: the trailer is the one line with a `head` key. CSV: a last record `#trailer,<trailer JSON>`. */
export function formatTrailer(format: ExportFormat, t: TrailerFields): string {
  return format === "ndjson" ? `${JSON.stringify(t)}\n` : `#trailer,${csvCell(JSON.stringify(t))}\r\n`;
}
