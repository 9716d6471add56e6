/**
 * Coordination sessions from the AI decision records a coordinator reports
 * (flows/node-package/lib/coordinator.js): a record whose
 * metadata.coordination names a session is one participant's answer
 * (kind "answer") or the session's decision (kind "decision"). Each batch
 * upserts one row per session (answers appended) and appends one audit entry
 * per answer and decision, in one transaction. Called after the batch itself
 * was stored (core/ai/ingest.ts), never for a duplicate batch.
 */
import { sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client.ts";
import { appendAudit, type AuditEntry } from "../../db/auditChain.ts";
import { coordinationSessions } from "../../db/schema.ts";
import type { AiDecisionRecord } from "../../protocol/aiDecisions.ts";

const count = z.number().int().min(0).nullish();
const coordinationSchema = z.object({
  sessionId: z.uuid(),
  pattern: z.enum(["voting", "refinement"]),
  rule: z.string().max(20).optional(),
  startedAt: z.iso.datetime({ offset: true }),
  participants: z.array(z.string().max(100)).max(50).optional(),
  quorum: z.number().int().min(0).max(50).optional(),
  maxRounds: z.number().int().min(0).max(100).optional(),
  kind: z.enum(["answer", "decision"]),
  // answer
  participant: z.string().max(100).optional(),
  role: z.enum(["voter", "judge", "generator", "critic"]).optional(),
  round: z.number().int().min(0).max(1000).optional(),
  requestId: z.string().max(100).optional(),
  status: z.string().max(20).optional(),
  inputTokens: count,
  outputTokens: count,
  modelLatencyMs: count,
  error: z.object({ code: z.string().max(100), message: z.string().max(2000) }).loose().nullish(),
  score: z.number().nullish(),
  // decision
  outcome: z.record(z.string(), z.unknown()).optional(),
  decidedAt: z.iso.datetime({ offset: true }).optional(),
});
type Coordination = z.infer<typeof coordinationSchema>;

/** What one session's row gains from one batch. */
interface SessionUpdate {
  id: string;
  instanceId: string;
  pattern: string;
  rule: string | null;
  question: string | null;
  settings: Record<string, unknown>;
  startedAt: Date;
  answers: Record<string, unknown>[];
  decision?: { status: string; answer: string | null; outcome: Record<string, unknown>; decidedAt: Date };
}

/** The record's coordination metadata, or undefined (not a coordination record, or one that does not parse: stored as an AI decision only). */
function coordinationOf(r: AiDecisionRecord): Coordination | undefined {
  const raw = r.metadata?.["coordination"];
  if (raw === undefined) return undefined;
  const parsed = coordinationSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

export function sessionUpdates(records: AiDecisionRecord[]): SessionUpdate[] {
  const by = new Map<string, SessionUpdate>();
  for (const r of records) {
    const c = coordinationOf(r);
    if (!c) continue;
    let u = by.get(c.sessionId);
    if (!u) {
      u = {
        id: c.sessionId, instanceId: r.instanceId, pattern: c.pattern, rule: c.rule ?? null, question: r.prompt ?? null,
        settings: { participants: c.participants ?? [], ...(c.quorum !== undefined ? { quorum: c.quorum } : {}), ...(c.maxRounds !== undefined ? { maxRounds: c.maxRounds } : {}) },
        startedAt: new Date(c.startedAt), answers: [],
      };
      by.set(c.sessionId, u);
    }
    if (c.kind === "answer") {
      u.answers.push({
        instanceId: c.participant ?? null, role: c.role ?? null, round: c.round ?? null, requestId: c.requestId ?? null,
        status: c.status ?? null, answer: r.response ?? null, model: r.model, provider: r.provider,
        inputTokens: c.inputTokens ?? null, outputTokens: c.outputTokens ?? null, latencyMs: r.latencyMs ?? null,
        modelLatencyMs: c.modelLatencyMs ?? null, error: c.error ?? null, ...(c.score !== undefined && c.score !== null ? { score: c.score } : {}),
        at: r.timestamp ?? null,
      });
    } else {
      u.decision = { status: c.status ?? "decided", answer: r.response ?? null, outcome: c.outcome ?? {}, decidedAt: new Date(c.decidedAt ?? r.timestamp ?? Date.now()) };
    }
  }
  return [...by.values()];
}

function auditEntries(u: SessionUpdate): AuditEntry[] {
  const base = { resourceType: "coordination_session", resourceId: u.id };
  // Answer text stays out of the audit log (it may hold personal data; the session row has it behind ai_prompts:read).
  const entries: AuditEntry[] = u.answers.map((a) => ({
    ...base, action: "COORDINATION_ANSWER",
    details: { coordinator: u.instanceId, pattern: u.pattern, participant: a["instanceId"], role: a["role"], round: a["round"], status: a["status"], model: a["model"], latencyMs: a["latencyMs"], inputTokens: a["inputTokens"], outputTokens: a["outputTokens"] },
  }));
  if (u.decision) {
    const o = u.decision.outcome;
    entries.push({ ...base, action: "COORDINATION_DECISION", details: { coordinator: u.instanceId, pattern: u.pattern, rule: u.rule, status: u.decision.status, winner: o["winner"] ?? null, reason: o["reason"] ?? null } });
  }
  return entries;
}

/**
 * Upserts the sessions named in `records` and audits their answers and decisions. A session id already held by
 * another instance is left alone (an instance cannot write into another's session).
 */
export async function recordCoordination(db: Db, records: AiDecisionRecord[]): Promise<number> {
  const updates = sessionUpdates(records);
  if (updates.length === 0) return 0;
  await db.transaction(async (tx) => {
    const recorded: SessionUpdate[] = [];
    for (const u of updates) {
      const d = u.decision;
      const [row] = await tx.insert(coordinationSessions).values({
        id: u.id, instanceId: u.instanceId, pattern: u.pattern, rule: u.rule, status: d ? d.status : "collecting",
        question: u.question, answer: d?.answer ?? null, settings: u.settings, answers: u.answers,
        outcome: d?.outcome ?? null, startedAt: u.startedAt, decidedAt: d?.decidedAt ?? null,
      }).onConflictDoUpdate({
        target: coordinationSessions.id,
        set: {
          answers: sql`${coordinationSessions.answers} || excluded.answers`,
          // A late answer (after the decision arrived in an earlier batch) does not reopen the session.
          status: sql`case when excluded.decided_at is not null or ${coordinationSessions.decidedAt} is null then excluded.status else ${coordinationSessions.status} end`,
          answer: sql`coalesce(excluded.answer, ${coordinationSessions.answer})`,
          outcome: sql`coalesce(excluded.outcome, ${coordinationSessions.outcome})`,
          decidedAt: sql`coalesce(excluded.decided_at, ${coordinationSessions.decidedAt})`,
          updatedAt: sql`now()`,
        },
        setWhere: sql`${coordinationSessions.instanceId} = excluded.instance_id`,
      }).returning({ id: coordinationSessions.id });
      if (row) recorded.push(u);
      else console.error(JSON.stringify({ msg: "coordination session id held by another instance: records ignored", sessionId: u.id, instanceId: u.instanceId }));
    }
    await appendAudit(tx, recorded.flatMap(auditEntries));
  });
  return updates.length;
}
