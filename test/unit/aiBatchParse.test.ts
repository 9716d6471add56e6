/**
 * core/ai/parseBatch.ts must answer exactly as aiDecisionBatchSchema does:
 * the same data for a valid batch, the same 400 and issues for an invalid
 * one. Every field is mutated across the bounds the schema could plausibly
 * have (lengths, number ranges, types, formats), so a wrong bound in the
 * plain check shows up as a disagreement with zod.
 */
import { describe, expect, it } from "vitest";
import { ApiError } from "../../core/errors.ts";
import { fastAiDecisionBatch, parseAiDecisionBatch } from "../../core/ai/parseBatch.ts";
import { aiDecisionBatchSchema, aiDecisionRecordSchema, MAX_AI_TEXT } from "../../protocol/aiDecisions.ts";
import { describeIssues } from "../../core/validation.ts";

const full = {
  instanceId: "0b0e1c8e-6f2a-4c57-9d7e-3f0a3b1e2c4d", timestamp: "2026-12-03T10:00:00.123Z", provider: "openai", model: "gpt-4o",
  responseModel: "gpt-4o-2024-08-06", operationName: "chat", flowName: "triage", flowId: "f1", prompt: "hello", response: "hi",
  inputTokens: 10, outputTokens: 5, finishReason: "stop", latencyMs: 900, timeToFirstTokenMs: 150, confidence: 0.7,
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", responseId: "resp_1", metadata: { a: 1, nested: { b: [1, 2] } },
};
const minimal = { instanceId: "0b0e1c8e-6f2a-4c57-9d7e-3f0a3b1e2c4d", provider: "anthropic", model: "claude" };
const batchOf = (...records: unknown[]) => ({ batchId: "batch_0001-abc", records });

/** What the route answers: the data, or the error's status, code and details. */
function routeAnswer(raw: unknown) {
  try {
    return { data: parseAiDecisionBatch(raw) };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { status: err.status, code: err.code, details: err.details };
  }
}
function zodAnswer(raw: unknown) {
  const parsed = aiDecisionBatchSchema.safeParse(raw);
  return parsed.success ? { data: parsed.data } : { status: 400, code: "validation_failed", details: describeIssues(parsed.error.issues) };
}
function expectSameAsZod(raw: unknown) {
  expect(routeAnswer(raw)).toStrictEqual(zodAnswer(raw));
  const fast = fastAiDecisionBatch(raw);
  // The plain check never accepts what zod refuses.
  if (fast) expect(aiDecisionBatchSchema.safeParse(raw).success).toBe(true);
}

const STRING_KEYS = ["provider", "model", "responseModel", "operationName", "flowName", "flowId", "prompt", "response", "finishReason", "traceId", "spanId", "responseId"];
const NUMBER_KEYS = ["inputTokens", "outputTokens", "latencyMs", "timeToFirstTokenMs", "confidence"];
const LENGTHS = [0, 1, 2, 31, 32, 33, 49, 50, 51, 63, 64, 65, 99, 100, 101, 254, 255, 256, MAX_AI_TEXT, MAX_AI_TEXT + 1];
const NUMBERS = [-1, -0, 0, 0.5, 1, 1.5, 2, 86_400_000, 86_400_001, 1_000_000_000, 1_000_000_001, 2 ** 53, 1e21, -1e-9];
const WRONG_TYPES = [null, true, "1", 1, [], {}, [1]];

describe("AI decision batch parsing", () => {
  it("accepts the bridge's usual records on the plain path, with zod's data", () => {
    for (const raw of [batchOf(full), batchOf(minimal), batchOf(full, minimal, { ...full, metadata: { coordination: { x: 1 } } })]) {
      expect(fastAiDecisionBatch(raw)).toBeDefined();
      expectSameAsZod(raw);
    }
  });

  it("drops unknown keys as zod does, a __proto__ key included", () => {
    expectSameAsZod(batchOf({ ...full, extra: "x", nested: { y: 1 } }));
    expectSameAsZod({ ...batchOf(full), other: 1 });
    expectSameAsZod(JSON.parse(`{"batchId":"batch_0001","records":[{"__proto__":{"provider":"x"},"instanceId":"${full.instanceId}","provider":"p","model":"m","metadata":{"__proto__":{"a":1},"b":2}}]}`));
  });

  it("gives zod's answer for every string field at every plausible bound and type", () => {
    for (const key of STRING_KEYS) {
      for (const n of LENGTHS) expectSameAsZod(batchOf(full, { ...full, [key]: "x".repeat(n) }));
      // A surrogate pair is two UTF-16 units, as zod counts.
      expectSameAsZod(batchOf({ ...full, [key]: "😀".repeat(25) }));
      for (const v of WRONG_TYPES) expectSameAsZod(batchOf({ ...full, [key]: v }));
      const { [key]: _gone, ...without } = full as Record<string, unknown>;
      expectSameAsZod(batchOf(without));
    }
  });

  it("gives zod's answer for every number field at every plausible bound and type", () => {
    for (const key of NUMBER_KEYS) {
      for (const v of [...NUMBERS, ...WRONG_TYPES]) expectSameAsZod(batchOf(minimal, { ...full, [key]: v }));
    }
  });

  it("gives zod's answer for ids, timestamps, metadata and the batch envelope", () => {
    for (const instanceId of ["not-a-uuid", full.instanceId.toUpperCase(), "00000000-0000-0000-0000-000000000000", "0b0e1c8e-6f2a-9c57-9d7e-3f0a3b1e2c4d", "0b0e1c8e-6f2a-4c57-7d7e-3f0a3b1e2c4d", "", 5, null]) {
      expectSameAsZod(batchOf({ ...full, instanceId }));
    }
    for (const timestamp of ["2026-12-03T10:00:00Z", "2026-12-03T10:00:00+05:30", "2026-12-03T10:00Z", "2026-12-03T10:00:00", "2026-12-03", "2026-13-03T10:00:00Z", "2026-12-03T10:00:00.123456789Z", "2026-12-03T10:00:00+24:00", 0, null]) {
      expectSameAsZod(batchOf({ ...full, timestamp }));
    }
    for (const metadata of [null, [], [1], "x", 1, {}, { a: undefined }, { coordination: { kind: "answer" } }]) expectSameAsZod(batchOf({ ...full, metadata }));
    for (const batchId of ["short", "a".repeat(8), "a".repeat(64), "a".repeat(65), "with space!", "ok_id-123", 12345678, null, undefined]) {
      expectSameAsZod({ batchId, records: [full] });
    }
    for (const records of [[], Array(500).fill(minimal), Array(501).fill(minimal), [null], [[]], ["x"], { 0: full }, null]) {
      expectSameAsZod({ batchId: "batch_0001", records });
    }
    for (const raw of [null, [], "x", 1, {}]) expectSameAsZod(raw);
  });

  it("names the first bad record's fields in the 400, as before", () => {
    const answer = routeAnswer(batchOf(full, { ...full, inputTokens: -1, model: "" }));
    expect(answer).toMatchObject({ status: 400, code: "validation_failed" });
    expect((answer as { details: { path: string }[] }).details.map((d) => d.path).sort()).toEqual(["records.1.inputTokens", "records.1.model"]);
  });

  it("covers every field of the record schema", () => {
    expect(Object.keys(aiDecisionRecordSchema.shape).sort()).toEqual([...STRING_KEYS, ...NUMBER_KEYS, "instanceId", "timestamp", "metadata"].sort());
  });
});
