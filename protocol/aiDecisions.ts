/**
 * AI decision records (node package → MQTT `redforge/audit/{instanceId}` →
 * bridge → control plane). The bridge sends up to MAX_AI_BATCH of them in one
 * signed webhook to POST /api/webhooks/clusters/:clusterId/ai-decisions.
 * Field names follow the OpenTelemetry GenAI semantic conventions where one
 * exists (gen_ai.provider.name, gen_ai.request.model, gen_ai.response.model,
 * gen_ai.operation.name, gen_ai.usage.input_tokens/output_tokens,
 * gen_ai.response.finish_reasons, gen_ai.response.id).
 */
import { z } from "zod";

export const MAX_AI_BATCH = 500;
/** Prompt and response text are cut to this many characters by the reporter node (the rest is not kept). */
export const MAX_AI_TEXT = 32_768;
/**
 * Webhook bodies stay under the API's 1 MiB limit: the bridge closes a batch
 * before it would pass this many bytes, whatever the record count.
 */
export const MAX_AI_BATCH_BYTES = 900 * 1024;

const count = z.number().int().min(0).max(1_000_000_000);
const millis = z.number().int().min(0).max(86_400_000);
const name = (max: number) => z.string().min(1).max(max);

export const aiDecisionRecordSchema = z.object({
  instanceId: z.uuid(),
  /** When the call finished (the node's clock); defaults to when the control plane received it. */
  timestamp: z.iso.datetime({ offset: true }).optional(),
  provider: name(100),
  /** The model asked for (gen_ai.request.model). */
  model: name(100),
  /** The model that answered, when the provider says (gen_ai.response.model). */
  responseModel: name(100).optional(),
  operationName: name(50).optional(),
  flowName: z.string().max(255).optional(),
  flowId: z.string().max(100).optional(),
  prompt: z.string().max(MAX_AI_TEXT).optional(),
  response: z.string().max(MAX_AI_TEXT).optional(),
  inputTokens: count.optional(),
  outputTokens: count.optional(),
  finishReason: z.string().max(50).optional(),
  latencyMs: millis.optional(),
  timeToFirstTokenMs: millis.optional(),
  confidence: z.number().min(0).max(1).optional(),
  traceId: z.string().max(64).optional(),
  spanId: z.string().max(32).optional(),
  responseId: z.string().max(255).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type AiDecisionRecord = z.infer<typeof aiDecisionRecordSchema>;

export const aiDecisionBatchSchema = z.object({
  /** Stable across the bridge's retries of one batch: the control plane stores a batch once. */
  batchId: z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/),
  records: z.array(aiDecisionRecordSchema).min(1).max(MAX_AI_BATCH),
});
export type AiDecisionBatch = z.infer<typeof aiDecisionBatchSchema>;

