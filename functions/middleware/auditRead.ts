import type { Context } from "hono";
import { appendAudit } from "../../db/auditChain.ts";
import type { AppEnv } from "../../core/app-env.ts";
import type { SensitiveRead } from "../../core/audit/sensitiveReads.ts";
import { ApiError } from "../../core/errors.ts";
import { requestOrigin } from "./auditTrail.ts";

/**
 * One audit row for a sensitive read (core/audit/sensitiveReads.ts), written
 * before the answer leaves: data that was shown is on record. A row that
 * cannot be written refuses the read (503) rather than show it unrecorded.
 */
export async function recordRead(
  c: Context<AppEnv>,
  entry: { action: SensitiveRead; resourceType: string; resourceId?: string | null; details?: Record<string, unknown> },
): Promise<void> {
  try {
    await c.var.services.db.transaction((tx) => appendAudit(tx, [{
      ...requestOrigin(c), statusCode: 200, action: entry.action, resourceType: entry.resourceType,
      resourceId: entry.resourceId ?? null, details: entry.details ?? null,
    }]));
  } catch (err) {
    console.error(JSON.stringify({ level: "error", alert: "audit_write_failed", msg: "sensitive read refused: its audit row was not written", action: entry.action, requestId: c.var.requestId, err: String(err) }));
    throw new ApiError(503, "audit_unavailable", "this read is audited and the audit log cannot be written right now; retry shortly");
  }
  c.set("audited", true);
}
