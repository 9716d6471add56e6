/**
 * The one CSV cell encoder, for audit exports and compliance reports alike:
 * RFC 4180 quoting plus OWASP's CSV-injection defence. A spreadsheet runs a
 * cell that starts with `=`, `+`, `-`, `@`, TAB or CR as a formula, and these
 * files carry text an attacker chose (a User-Agent, an id from a rejected URL),
 * so such a cell is written as `'` + the text, quoted. A cell that already
 * starts with `'` gets one more, which keeps the encoding reversible:
 * `decodeCsvCell` strips exactly one leading `'`, so the offline verifier
 * recomputes the audit hashes from the original text.
 */
import { canonicalJson } from "../../db/auditChain.ts";

/** OWASP "CSV Injection": the first characters that make a spreadsheet evaluate a cell. */
export const FORMULA_TRIGGERS = new Set(["=", "+", "-", "@", "\t", "\r"]);
const ESCAPE = "'";

/**
 * A cell. `null`/`undefined` is an empty field and `""` a quoted empty one, so
 * the two stay apart. Numbers and booleans are written as they are (a number is
 * never a formula); objects as canonical JSON; text is neutralised.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  const text = typeof v === "string" ? v : canonicalJson(v);
  const first = text.charAt(0);
  const escaped = FORMULA_TRIGGERS.has(first) || first === ESCAPE ? ESCAPE + text : text;
  // A leading `#` is reserved for the trailer records (`#trailer`, `#report`), so data starting with it is quoted.
  const quote = escaped !== text || text === "" || first === "#" || /[",\r\n]/.test(text);
  return quote ? `"${escaped.replace(/"/g, '""')}"` : escaped;
}

export const csvLine = (cells: readonly unknown[]) => `${cells.map(csvCell).join(",")}\r\n`;

/** A parsed field: its text as written and whether it was quoted (`""` is text, a bare empty field is null). */
export interface CsvField { text: string; quoted: boolean }

/** The inverse of `csvCell` for a text cell: null for a bare empty field, one leading `'` removed. */
export function decodeCsvCell(f: CsvField): string | null {
  if (!f.quoted && f.text === "") return null;
  return f.text.startsWith(ESCAPE) ? f.text.slice(1) : f.text;
}

/** RFC 4180 records (CRLF or LF line ends, quoted fields with doubled quotes). */
export function parseCsv(text: string): CsvField[][] {
  const records: CsvField[][] = [];
  let record: CsvField[] = [];
  let field = "", quoted = false, inQuotes = false;
  const endField = () => { record.push({ text: field, quoted }); field = ""; quoted = false; };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuotes) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') inQuotes = false; else field += ch;
    } else if (ch === '"') { inQuotes = true; quoted = true; }
    else if (ch === ",") endField();
    else if (ch === "\r" && text[i + 1] === "\n") continue;
    else if (ch === "\n") { endField(); records.push(record); record = []; }
    else field += ch;
  }
  if (field !== "" || quoted || record.length) { endField(); records.push(record); }
  return records;
}
