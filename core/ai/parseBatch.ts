/**
 * The AI-decision webhook's body, validated (protocol/aiDecisions.ts). Batches
 * of up to 500 records are the hottest thing the Worker parses, and workerd
 * forbids eval, so zod walks each record through its generic (uncompiled)
 * object parser: that walk was the largest single share of the Worker's CPU
 * per batch (bench/ai-ingest/stages.ts). Here a plain check of the same schema
 * accepts a batch whose every record is valid and builds the same data zod
 * would (known keys only, unknown ones dropped). Anything it does not accept
 * goes through zod itself, so every refusal is zod's own: the same 400
 * validation_failed with the same issues. test/unit/aiBatchParse.test.ts
 * holds the two to the same answers on valid and mutated batches.
 */
import type { z } from "zod";
import { ApiError } from "../errors.ts";
import { describeIssues } from "../validation.ts";
import { aiDecisionBatchSchema, aiDecisionRecordSchema, MAX_AI_BATCH, MAX_AI_TEXT, type AiDecisionBatch, type AiDecisionRecord } from "../../protocol/aiDecisions.ts";

const shape = aiDecisionRecordSchema.shape;

/** The regex zod itself tests a string format with (read from the schema, so the two cannot drift). */
function patternOf(schema: z.ZodType): RegExp {
  let def = (schema as unknown as { _zod: { def: { pattern?: unknown; innerType?: z.ZodType } } })._zod.def;
  while (!def.pattern && def.innerType) def = (def.innerType as unknown as { _zod: { def: typeof def } })._zod.def;
  if (!(def.pattern instanceof RegExp)) throw new Error("aiDecisionRecordSchema: a format field without a pattern");
  return def.pattern;
}
const UUID = patternOf(shape.instanceId);
const DATETIME = patternOf(shape.timestamp);

type Str = readonly [key: keyof AiDecisionRecord, min: number, max: number, required: boolean];
// Every string field of aiDecisionRecordSchema with its bounds; the unit test checks this table against the schema.
export const STRING_FIELDS: readonly Str[] = [
  ["provider", 1, 100, true], ["model", 1, 100, true], ["responseModel", 1, 100, false], ["operationName", 1, 50, false],
  ["flowName", 0, 255, false], ["flowId", 0, 100, false], ["prompt", 0, MAX_AI_TEXT, false], ["response", 0, MAX_AI_TEXT, false],
  ["finishReason", 0, 50, false], ["traceId", 0, 64, false], ["spanId", 0, 32, false], ["responseId", 0, 255, false],
];
type Num = readonly [key: keyof AiDecisionRecord, max: number, integer: boolean];
export const NUMBER_FIELDS: readonly Num[] = [
  ["inputTokens", 1_000_000_000, true], ["outputTokens", 1_000_000_000, true],
  ["latencyMs", 86_400_000, true], ["timeToFirstTokenMs", 86_400_000, true], ["confidence", 1, false],
];
// The output's key order is the schema's, as zod builds it.
const ORDER = Object.keys(shape) as (keyof AiDecisionRecord)[];

/** The record as zod would return it, or undefined when any field is not plainly valid (zod then decides). */
function fastRecord(raw: unknown): AiDecisionRecord | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  const id = r["instanceId"];
  if (typeof id !== "string" || !UUID.test(id)) return undefined;
  const ts = r["timestamp"];
  if (ts !== undefined && (typeof ts !== "string" || !DATETIME.test(ts))) return undefined;
  for (const [key, min, max, required] of STRING_FIELDS) {
    const v = r[key];
    if (v === undefined) { if (required) return undefined; continue; }
    if (typeof v !== "string" || v.length < min || v.length > max) return undefined;
  }
  for (const [key, max, integer] of NUMBER_FIELDS) {
    const v = r[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > max || (integer && !Number.isSafeInteger(v))) return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const key of ORDER) {
    const v = r[key];
    if (v === undefined) continue;
    if (key === "metadata") {
      // Free-form: zod's own record parse (rare on the hot path, and its copy rules are subtle).
      const m = shape.metadata.safeParse(v);
      if (!m.success) return undefined;
      out[key] = m.data;
    } else out[key] = v;
  }
  return out as AiDecisionRecord;
}

const batchIdSchema = aiDecisionBatchSchema.shape.batchId;

/** The batch as aiDecisionBatchSchema.parse would return it, or undefined (zod decides). */
export function fastAiDecisionBatch(raw: unknown): AiDecisionBatch | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const { batchId, records } = raw as { batchId?: unknown; records?: unknown };
  if (!batchIdSchema.safeParse(batchId).success) return undefined;
  if (!Array.isArray(records) || records.length < 1 || records.length > MAX_AI_BATCH) return undefined;
  const out: AiDecisionRecord[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const rec = fastRecord(records[i]);
    if (!rec) return undefined;
    out[i] = rec;
  }
  return { batchId: batchId as string, records: out };
}

/** 400 validation_failed with zod's issues, exactly as for any other bridge report. */
export function parseAiDecisionBatch(raw: unknown): AiDecisionBatch {
  const fast = fastAiDecisionBatch(raw);
  if (fast) return fast;
  const parsed = aiDecisionBatchSchema.safeParse(raw);
  if (!parsed.success) throw new ApiError(400, "validation_failed", "report does not match the protocol", describeIssues(parsed.error.issues));
  return parsed.data;
}
