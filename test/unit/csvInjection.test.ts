/**
 * CSV formula injection (issue 12, item 5): every text cell an attacker can
 * choose is neutralised in audit exports (OWASP: `'` prefix, quoted), and the
 * offline verifier still recomputes the audit hashes from the CSV file.
 * Reports: test/workers/reports.test.ts; end to end: test/integration/audit-export.test.ts.
 */
import { describe, expect, it } from "vitest";
import { auditRowHash, GENESIS_HASH } from "../../db/auditChain.ts";
import type { auditLogs } from "../../db/schema.ts";
import { csvCell, decodeCsvCell, parseCsv } from "../../core/audit/csv.ts";
import { formatHeader, formatRow, formatTrailer } from "../../core/audit/exportFormat.ts";
import { verifyAuditExport } from "../../scripts/verify-audit-export.ts";

type AuditRow = typeof auditLogs.$inferSelect;

const HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1", "'=already", "'", ""];

async function chain(texts: string[]): Promise<AuditRow[]> {
  const rows: AuditRow[] = [];
  let prevHash = GENESIS_HASH;
  for (const [i, t] of texts.entries()) {
    const timestamp = new Date(Date.UTC(2026, 11, 2, 7, 0, i));
    const entry = { userId: null, action: "UNAUTHORIZED_ACCESS", resourceType: "instance", resourceId: t, details: i % 2 ? t : { path: t }, ipAddress: "127.0.0.1", userAgent: t, statusCode: 403 };
    const hash = await auditRowHash(prevHash, timestamp, entry);
    rows.push({ id: i + 1, timestamp, ...entry, prevHash, hash } as AuditRow);
    prevHash = hash;
  }
  return rows;
}

function csvFile(rows: AuditRow[]): string {
  const last = rows.at(-1)!;
  return formatHeader("csv") + rows.map((r) => formatRow("csv", r)).join("")
    + formatTrailer("csv", { head: { id: last.id, hash: last.hash }, verified: true, generatedAt: new Date().toISOString(), rows: rows.length });
}

describe("CSV cells", () => {
  it("a cell starting with =, +, -, @, TAB or CR is written as ' + the text, quoted", () => {
    for (const t of HOSTILE.slice(0, 6)) {
      const cell = csvCell(t);
      expect(cell.startsWith(`"'`), JSON.stringify(cell)).toBe(true);
      const [[field]] = parseCsv(`${cell}\r\n`) as [[{ text: string; quoted: boolean }]];
      expect(field.text).toBe(`'${t}`);
      expect(decodeCsvCell(field)).toBe(t);
    }
  });

  it("the encoding is reversible: ' gets one more, empty text is quoted, null is a bare empty field", () => {
    for (const t of [...HOSTILE, "plain", "#hash", "a,b", null]) {
      const [[field]] = parseCsv(`${csvCell(t)}\r\n`) as [[{ text: string; quoted: boolean }]];
      expect(decodeCsvCell(field)).toBe(t);
    }
    expect(csvCell(-5)).toBe("-5");
  });
});

describe("audit export CSV", () => {
  it("neutralises hostile User-Agent, resource id and details cells", async () => {
    const text = csvFile(await chain(HOSTILE));
    const [header, ...records] = parseCsv(text);
    records.pop();
    const col = (n: string) => header!.findIndex((f) => f.text === n);
    for (const r of records) {
      for (const name of ["user_agent", "resource_id"]) {
        const f = r[col(name)]!;
        if (f.text !== "" && /^[=+\-@\t\r']/.test(decodeCsvCell(f)!)) expect(f.text.startsWith("'"), `${name}: ${JSON.stringify(f.text)}`).toBe(true);
      }
    }
    // No unescaped formula anywhere: every field starting with a trigger is the escaped form.
    for (const r of records) for (const f of r) expect(/^[=+@\t\r]/.test(f.text), JSON.stringify(f.text)).toBe(false);
  });

  it("the offline verifier checks a CSV export's hashes, and names a tampered line", async () => {
    const rows = await chain(HOSTILE);
    const text = csvFile(rows);
    expect(await verifyAuditExport(text)).toMatchObject({ ok: true, rows: rows.length, fromGenesis: true, head: { id: rows.length } });
    const lines = text.split("\r\n");
    const edited = [...lines];
    edited[3] = edited[3]!.replace("UNAUTHORIZED_ACCESS", "USER_LOGIN");
    expect(await verifyAuditExport(edited.join("\r\n"))).toMatchObject({ ok: false, line: 4, id: 3, reason: "hash_mismatch" });
    expect(await verifyAuditExport(lines.slice(0, -2).join("\r\n"))).toMatchObject({ ok: false, reason: "trailer_missing" });
  });
});
