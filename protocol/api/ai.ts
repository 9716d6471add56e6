/** Response bodies of /api/ai. */
import { z } from "zod";
import { timestamp, uuid } from "./common.ts";

export const aiDecisionSchema = z.object({
  id: z.number().int(),
  timestamp,
  instanceId: uuid,
  flowName: z.string(),
  model: z.string().nullable(),
  provider: z.string().nullable(),
  /** null unless the caller also holds ai_prompts:read (then `redacted` is false). */
  prompt: z.string().nullable(),
  response: z.string().nullable(),
  redacted: z.boolean(),
  confidence: z.number().nullable(),
  tokensUsed: z.number().int().nullable(),
  inputTokens: z.number().int().nullable(),
  outputTokens: z.number().int().nullable(),
  finishReason: z.string().nullable(),
  latencyMs: z.number().int().nullable(),
  timeToFirstTokenMs: z.number().int().nullable(),
  costUsd: z.string().nullable().meta({ description: "decimal text" }),
  traceId: z.string().nullable(),
  metadata: z.unknown(),
  operationName: z.string().nullable(),
  responseModel: z.string().nullable(),
  responseId: z.string().nullable(),
  spanId: z.string().nullable(),
  flowId: z.string().nullable(),
  receivedAt: timestamp,
}).meta({ id: "AiDecision" });

export const aiTotalsSchema = z.object({
  groupBy: z.enum(["instance", "flow", "model"]),
  items: z.array(z.object({
    key: z.record(z.string(), z.string().nullable()),
    calls: z.number().int(),
    inputTokens: z.number().int(),
    outputTokens: z.number().int(),
    /** Sum over the priced calls, decimal text; null when none was priced. */
    costUsd: z.string().nullable(),
    unpricedCalls: z.number().int(),
  })),
}).meta({ id: "AiTotals" });

export const modelPriceSchema = z.object({
  id: uuid,
  provider: z.string(),
  model: z.string(),
  inputUsdPerMtok: z.number(),
  outputUsdPerMtok: z.number(),
  updatedAt: timestamp,
}).meta({ id: "ModelPrice" });
