/**
 * Reads that leave an audit row (issue 13), so the access report says who saw
 * what: one row per request, never per item, written before the data leaves
 * (functions/middleware/auditRead.ts). Secret values are never returned by any
 * route; their names are, and that is recorded. Audit exports and report
 * downloads were recorded before this list (AUDIT_EXPORTED, REPORT_DOWNLOADED).
 */
export const SENSITIVE_READS = {
  /** GET /api/ai/decisions answered with prompt and response text (the caller holds ai_prompts:read). */
  AI_PROMPTS_READ: "AI_PROMPTS_READ",
  /** GET /api/dead-letters answered with the dead letters' inputs (the caller holds ai_prompts:read). */
  DEAD_LETTER_INPUTS_READ: "DEAD_LETTER_INPUTS_READ",
  /** GET /api/instances/:id of an instance that has secrets: their names (never values). */
  INSTANCE_SECRET_NAMES_READ: "INSTANCE_SECRET_NAMES_READ",
  /** GET /api/users and GET /api/users/:id: who can sign in, with which role. */
  USERS_LISTED: "USERS_LISTED",
  USER_READ: "USER_READ",
  /** /ws/audit opened: a live copy of the audit log. */
  AUDIT_STREAM_OPENED: "AUDIT_STREAM_OPENED",
} as const;

export type SensitiveRead = keyof typeof SENSITIVE_READS;

/** Every read action the access report lists, old and new. */
export const READ_ACTIONS: readonly string[] = [...Object.values(SENSITIVE_READS), "AUDIT_EXPORTED", "REPORT_DOWNLOADED"];
