/**
 * Verifies an NDJSON audit export offline (docs/audit.md), with the same hash
 * function the control plane writes with. Usage: npx tsx scripts/verify-audit-export.ts audit.ndjson
 */
import fs from "node:fs";
import { pathToFileURL } from "node:url";
import { auditRowHash, GENESIS_HASH } from "../db/auditChain.ts";

export type ExportCheck =
  | { ok: true; rows: number; head: { id: number; hash: string } | null; anchor: string; fromGenesis: boolean }
  | { ok: false; line: number; id?: number; reason: string };

export async function verifyAuditExport(text: string): Promise<ExportCheck> {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const trailer = lines.length ? JSON.parse(lines.pop()!) : undefined;
  if (!trailer || !("head" in trailer)) return { ok: false, line: lines.length + 1, reason: "trailer_missing" };
  // A partial export (from=...) links to the row before it: compare `anchor` with the previous export's head.
  let anchor: string | undefined, prev: string | undefined, head: { id: number; hash: string } | null = null;
  for (const [i, line] of lines.entries()) {
    const r = JSON.parse(line);
    anchor ??= prev = r.prev_hash;
    if (r.prev_hash !== prev) return { ok: false, line: i + 1, id: r.id, reason: "prev_hash_mismatch" };
    const hash = await auditRowHash(r.prev_hash, new Date(r.timestamp), {
      userId: r.user_id, action: r.action, resourceType: r.resource_type, resourceId: r.resource_id,
      details: r.details, ipAddress: r.ip_address, userAgent: r.user_agent, statusCode: r.status_code,
    });
    if (hash !== r.hash) return { ok: false, line: i + 1, id: r.id, reason: "hash_mismatch" };
    prev = r.hash;
    head = { id: r.id, hash: r.hash };
  }
  if (lines.length !== trailer.rows) return { ok: false, line: lines.length + 1, reason: "row_count_mismatch" };
  if (head?.id !== trailer.head?.id || head?.hash !== trailer.head?.hash) return { ok: false, line: lines.length + 1, reason: "head_mismatch" };
  return { ok: true, rows: lines.length, head, anchor: anchor ?? GENESIS_HASH, fromGenesis: (anchor ?? GENESIS_HASH) === GENESIS_HASH };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await verifyAuditExport(fs.readFileSync(process.argv[2] ?? 0, "utf8"));
  console.log(JSON.stringify(result, null, 2));
  process.exitCode = result.ok ? 0 : 1;
}
