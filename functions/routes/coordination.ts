/**
 * Coordination sessions across agent instances (docs/agents.md, "Coordination"):
 * voting and refinement sessions with each participant's answer, latency,
 * tokens and the outcome, as their coordinator reported them
 * (core/coordination/recordSessions.ts). ai_decisions:read; the question and
 * answer texts only for callers who also hold ai_prompts:read (as AI decision
 * records), and such a read is audited.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { getSession, listSessions, type SessionRow } from "../../core/coordination/sessionQueries.ts";
import { ApiError } from "../../core/errors.ts";
import { describe } from "../../core/openapi/describe.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { validate } from "../../core/validation.ts";
import { coordinationSessionSchema } from "../../protocol/api/coordination.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { recordRead } from "../middleware/auditRead.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { allows } from "../rbac/permissions.ts";

const listQuery = z.strictObject({
  instanceId: z.uuid().optional(),
  pattern: z.enum(["voting", "refinement"]).optional(),
  state: z.enum(["live", "past"]).optional(),
  ...pageQuery,
});
const idParam = z.object({ id: z.uuid() });

function view(r: SessionRow, showText: boolean) {
  const answers = dedupe(r.answers).map((a) => ({ ...a, answer: showText ? (a["answer"] as string | null) ?? null : null }));
  return {
    id: r.id, instanceId: r.instanceId, pattern: r.pattern, rule: r.rule, status: r.status, live: r.decidedAt === null,
    question: showText ? r.question : null, answer: showText ? r.answer : null, redacted: !showText,
    settings: r.settings, answers, outcome: r.outcome === null ? null : showText ? r.outcome : redactOutcome(r.outcome),
    startedAt: r.startedAt.toISOString(), updatedAt: r.updatedAt.toISOString(), decidedAt: r.decidedAt?.toISOString() ?? null,
  };
}

/** A batch the bridge re-sent after a crash between store and mark may repeat answers: one per request. */
function dedupe(answers: Record<string, unknown>[]): Record<string, unknown>[] {
  const seen = new Set<unknown>();
  return answers.filter((a) => (a["requestId"] ? (seen.has(a["requestId"]) ? false : (seen.add(a["requestId"]), true)) : true));
}

/** The outcome without answer text (the winner's answer, the tally's answers). */
function redactOutcome(o: Record<string, unknown>): Record<string, unknown> {
  const { answer: _answer, tally, ...rest } = o;
  return { ...rest, ...(Array.isArray(tally) ? { tally: tally.map((t) => ({ ...(t as object), answer: null })) } : {}) };
}

const doc = describe("AI");

export const coordinationRoutes = new Hono<AppEnv>()
  .get("/sessions", doc({
    summary: "List coordination sessions (voting, refinement), newest first",
    description: "Live (`state=live`: not decided yet) and past sessions with each participant's answer, latency, tokens and the outcome. Question and answer texts only for callers who also hold ai_prompts:read; otherwise they are null and `redacted` is true.",
    responses: { 200: pageOf(coordinationSessionSchema) },
    errors: [400],
  }), requirePermission("ai_decisions", "read"), validate("query", listQuery), async (c) => {
    const { limit, cursor, ...f } = c.req.valid("query");
    const rows = await listSessions(c.var.services.db, f, limit, decodeCursor(cursor));
    const { items, nextCursor } = page(rows.map((r) => Object.assign(r, { createdAt: r.startedAt })), limit);
    const showText = allows(c.var.principal!.permissions, "ai_prompts", "read");
    if (showText && items.length) {
      await recordRead(c, { action: "AI_PROMPTS_READ", resourceType: "coordination_session", details: { count: items.length, sessionIds: items.map((r) => r.id), filters: f } });
    }
    return c.json({ items: items.map((r) => view(r, showText)), nextCursor });
  })
  .get("/sessions/:id", doc({
    summary: "One coordination session with its answers and outcome",
    responses: { 200: coordinationSessionSchema },
    errors: [404],
  }), requirePermission("ai_decisions", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const row = await getSession(c.var.services.db, id);
    if (!row) throw new ApiError(404, "coordination_session_not_found", `coordination session ${id} does not exist`);
    const showText = allows(c.var.principal!.permissions, "ai_prompts", "read");
    if (showText) await recordRead(c, { action: "AI_PROMPTS_READ", resourceType: "coordination_session", resourceId: id });
    return c.json(view(row, showText));
  });
