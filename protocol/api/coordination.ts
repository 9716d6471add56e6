/** Response bodies of /api/coordination (docs/agents.md, "Coordination"). */
import { z } from "zod";
import { timestamp, uuid } from "./common.ts";

export const coordinationAnswerSchema = z.object({
  /** The participant instance. */
  instanceId: z.string().nullable(),
  /** voter | judge (voting), generator | critic (refinement) */
  role: z.string().nullable(),
  round: z.number().int().nullable(),
  /** success | error */
  status: z.string().nullable(),
  /** null unless the caller also holds ai_prompts:read. */
  answer: z.string().nullable(),
  model: z.string().nullable(),
  provider: z.string().nullable(),
  inputTokens: z.number().int().nullable(),
  outputTokens: z.number().int().nullable(),
  /** From the coordinator's query to its reply (the participant's model call alone: modelLatencyMs). */
  latencyMs: z.number().int().nullable(),
  modelLatencyMs: z.number().int().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  score: z.number().optional(),
  at: timestamp.nullable(),
});

export const coordinationSessionSchema = z.object({
  id: uuid,
  /** The coordinator's instance. */
  instanceId: uuid,
  pattern: z.enum(["voting", "refinement"]),
  /** majority | best_score | judge | refinement */
  rule: z.string().nullable(),
  /** collecting while live; then decided | no_quorum | failed (voting), approved | converged | max_rounds | failed (refinement). */
  status: z.string(),
  live: z.boolean(),
  /** null unless the caller also holds ai_prompts:read (then `redacted` is false). */
  question: z.string().nullable(),
  answer: z.string().nullable(),
  redacted: z.boolean(),
  settings: z.object({ participants: z.array(z.string()).optional(), quorum: z.number().int().optional(), maxRounds: z.number().int().optional() }).loose(),
  answers: z.array(coordinationAnswerSchema),
  /** The decision: winner, reason, tally, agreement or score, rounds, missing participants. */
  outcome: z.record(z.string(), z.unknown()).nullable(),
  startedAt: timestamp,
  updatedAt: timestamp,
  decidedAt: timestamp.nullable(),
});
