/**
 * A report document as bytes. JSON: the document. NDJSON: a header line
 * (everything but the sections), then one line per row tagged with its
 * `section`. CSV: one table, `section` first, then every column any row has
 * (nested values as canonical JSON), then a trailer record `#report,<header JSON>`.
 * Cells go through the audit export's encoder (core/audit/csv.ts): a data field that starts
 * with `#` is quoted, so only the trailer starts with a bare `#`, and formula cells are neutralised.
 */
import { csvCell, csvLine } from "../audit/csv.ts";
import type { ReportFormat } from "../governance/settings.ts";
import type { ReportDocument } from "./shapes.ts";

export const CONTENT_TYPE: Record<ReportFormat, string> = {
  json: "application/json; charset=utf-8",
  ndjson: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8",
};

function header(doc: ReportDocument) {
  const { sections: _sections, ...rest } = doc;
  return rest;
}

export function serializeReport(doc: ReportDocument, format: ReportFormat): string {
  if (format === "json") return JSON.stringify(doc);
  const rows = Object.entries(doc.sections).flatMap(([section, list]) => list.map((r) => ({ section, ...(r as Record<string, unknown>) })));
  if (format === "ndjson") {
    return [JSON.stringify({ type: "report", ...header(doc) }), ...rows.map((r) => JSON.stringify(r))].join("\n") + "\n";
  }
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (!columns.length) columns.push("section");
  return csvLine(columns) + rows.map((r) => csvLine(columns.map((c) => (r as Record<string, unknown>)[c]))).join("") + `#report,${csvCell(JSON.stringify(header(doc)))}\r\n`;
}
