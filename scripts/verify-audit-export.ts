/**
 * Verifies an audit export offline (docs/audit.md), NDJSON or CSV, with the
 * same hash function the control plane writes with.
 * Usage: npx tsx scripts/verify-audit-export.ts audit.ndjson|audit.csv
 */
import fs from "node:fs";
import { pathToFileURL } from "node:url";
import { auditRowHash, GENESIS_HASH } from "../db/auditChain.ts";
import { decodeCsvCell, parseCsv } from "../core/audit/csv.ts";

export type ExportCheck =
  | { ok: true; rows: number; head: { id: number; hash: string } | null; anchor: string; fromGenesis: boolean }
  | { ok: false; line: number; id?: number; reason: string };

/** A row as the NDJSON file holds it (the table's column names). */
type ExportedRow = Record<string, any>;
interface Parsed { rows: ExportedRow[]; trailer: any; /** the file line (1-based) each row starts on */ lineOf: (i: number) => number }

function parseNdjson(text: string): Parsed {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const trailer = lines.length ? JSON.parse(lines.pop()!) : undefined;
  return { rows: lines.map((l) => JSON.parse(l)), trailer, lineOf: (i) => i + 1 };
}

const NUMBER_COLUMNS = new Set(["id", "status_code"]);

/**
 * The CSV file: a header, one record per row with formula cells escaped
 * (core/audit/csv.ts, undone here), `details` as canonical JSON, then
 * `#trailer,<trailer JSON>`. Records are numbered as lines, the header being line 1.
 */
function parseCsvExport(text: string): Parsed {
  const [header, ...records] = parseCsv(text);
  const names = (header ?? []).map((f) => f.text);
  const last = records.at(-1);
  const trailer = last?.[0]?.text === "#trailer" && !last[0].quoted ? JSON.parse(last[1]?.text ?? "null") : undefined;
  if (trailer) records.pop();
  const rows = records.map((rec) => {
    const row: ExportedRow = {};
    for (const [j, name] of names.entries()) {
      const v = decodeCsvCell(rec[j] ?? { text: "", quoted: false });
      row[name] = v === null ? null : NUMBER_COLUMNS.has(name) ? Number(v) : name === "details" ? JSON.parse(v) : v;
    }
    return row;
  });
  return { rows, trailer, lineOf: (i) => i + 2 };
}

export async function verifyAuditExport(text: string): Promise<ExportCheck> {
  const { rows, trailer, lineOf } = text.startsWith("id,") ? parseCsvExport(text) : parseNdjson(text);
  const end = lineOf(rows.length);
  if (!trailer || !("head" in trailer)) return { ok: false, line: end, reason: "trailer_missing" };
  // A partial export (from=...) links to the row before it: compare `anchor` with the previous export's head.
  let anchor: string | undefined, prev: string | undefined, head: { id: number; hash: string } | null = null;
  for (const [i, r] of rows.entries()) {
    anchor ??= prev = r.prev_hash;
    if (r.prev_hash !== prev) return { ok: false, line: lineOf(i), id: r.id, reason: "prev_hash_mismatch" };
    const hash = await auditRowHash(r.prev_hash, new Date(r.timestamp), {
      userId: r.user_id, action: r.action, resourceType: r.resource_type, resourceId: r.resource_id,
      details: r.details, ipAddress: r.ip_address, userAgent: r.user_agent, statusCode: r.status_code,
    });
    if (hash !== r.hash) return { ok: false, line: lineOf(i), id: r.id, reason: "hash_mismatch" };
    prev = r.hash;
    head = { id: r.id, hash: r.hash };
  }
  if (rows.length !== trailer.rows) return { ok: false, line: end, reason: "row_count_mismatch" };
  if (head?.id !== trailer.head?.id || head?.hash !== trailer.head?.hash) return { ok: false, line: end, reason: "head_mismatch" };
  return { ok: true, rows: rows.length, head, anchor: anchor ?? GENESIS_HASH, fromGenesis: (anchor ?? GENESIS_HASH) === GENESIS_HASH };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await verifyAuditExport(fs.readFileSync(process.argv[2] ?? 0, "utf8"));
  console.log(JSON.stringify(result, null, 2));
  process.exitCode = result.ok ? 0 : 1;
}
