/**
 * Builds a report and writes it to the REPORTS bucket (R2 in production; the
 * same binding is emulated by Miniflare in tests and persisted by wrangler dev
 * under its --persist-to directory). The object is written before its
 * compliance_exports row and audit row commit; if that commit fails the
 * object is deleted again, so a listed report always has its file.
 */
import { complianceExports } from "../../db/schema.ts";
import type { AuditEntry } from "../../db/auditChain.ts";
import { toHex } from "../../protocol/encoding.ts";
import type { Framework, ReportFormat, ReportKind } from "../governance/settings.ts";
import type { SectionContext } from "./sections.ts";
import { CONTENT_TYPE, serializeReport } from "./serialize.ts";
import { buildReport } from "./shapes.ts";

export interface ReportRequest {
  kind: ReportKind;
  framework: Framework | null;
  format: ReportFormat;
  from: Date;
  to: Date;
}

export interface StoredReport extends ReportRequest {
  id: string;
  storageKey: string;
  /** Lowercase hex SHA-256 of the stored bytes. */
  digest: string;
  size: number;
}

export type Trigger = "on_demand" | "scheduled";

function storageKey(id: string, r: ReportRequest, now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, "/");
  return `reports/${day}/${id}-${r.kind}${r.framework ? `-${r.framework}` : ""}.${r.format}`;
}

export async function writeReport(bucket: R2Bucket, req: ReportRequest, ctx: Omit<SectionContext, "from" | "to">): Promise<StoredReport> {
  const doc = await buildReport(req.kind, req.framework, { ...ctx, from: req.from, to: req.to });
  const bytes = new TextEncoder().encode(serializeReport(doc, req.format));
  const digest = toHex(await crypto.subtle.digest("SHA-256", bytes));
  const id = crypto.randomUUID();
  const key = storageKey(id, req, ctx.now);
  // R2 checks the sha256 on arrival: a corrupted upload is refused, not stored.
  await bucket.put(key, bytes, {
    sha256: digest,
    httpMetadata: { contentType: CONTENT_TYPE[req.format] },
    customMetadata: { digest, kind: req.kind, framework: req.framework ?? "", reportId: id },
  });
  return { ...req, id, storageKey: key, digest, size: bytes.byteLength };
}

export function reportRow(r: StoredReport, trigger: Trigger, createdBy: string | null): typeof complianceExports.$inferInsert {
  return {
    id: r.id, kind: r.kind, framework: r.framework, format: r.format, rangeStart: r.from, rangeEnd: r.to,
    storageKey: r.storageKey, digest: r.digest, sizeBytes: r.size, trigger, createdBy,
  };
}

/** The audit row that makes the digest part of the hash chain. */
export function reportAudit(r: StoredReport, trigger: Trigger): Omit<AuditEntry, "ipAddress" | "userAgent"> {
  return {
    action: "REPORT_CREATED", resourceType: "report", resourceId: r.id,
    details: {
      kind: r.kind, framework: r.framework, format: r.format, from: r.from.toISOString(), to: r.to.toISOString(),
      storageKey: r.storageKey, digest: r.digest, algorithm: "sha256", size: r.size, trigger,
    },
  };
}
