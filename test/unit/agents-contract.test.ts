/**
 * The agent message contract: the published JSON Schemas are what the zod
 * schemas generate now and accept and refuse the same messages; the smoke
 * check's rule (flowAnswerViolation) takes the seed's enums and, in legacy
 * mode, the old ones; the node package's generated copy and its own input
 * check agree with protocol/.
 */
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { AGENTS_CONTRACT_FILE, renderAgentsContract } from "../../flows/node-package/scripts/generate-agents-contract.mts";
import { renderSchemas, SCHEMA_FILES } from "../../protocol/agents/generateSchemas.mts";
import { dlqTopic, flowAnswerViolation, isLegacyAnswer, msgInputSchema, msgOutputSchema } from "../../protocol/agents/messageContract.ts";

const require = createRequire(import.meta.url);
// ajv comes with @redocly/cli (a devDependency): an independent JSON Schema 2020-12 validator for the published files.
const Ajv2020 = require("ajv/dist/2020").default as new (o: object) => { compile(s: object): ((v: unknown) => boolean) };
const agentMessage = require("../../flows/node-package/lib/agentMessage.js") as {
  readInput(body: unknown): { input?: unknown; error?: string };
  buildOutput(o: Record<string, unknown>): unknown;
  httpStatusOf(e: unknown): number;
};

const at = "2026-12-02T10:00:00.000Z";
const input = { payload: "Some text.", metadata: { flowId: "wf-1", timestamp: at, source: "client", contentType: "text" }, config: { chunkSize: 100 } };
const output = { payload: [{ index: 0 }], metadata: { flowId: "wf-1", timestamp: at, source: "text-chunking", contentType: "json", status: "success" }, error: null };
const failed = { payload: null, metadata: { ...output.metadata, status: "error" }, error: { code: "model_unavailable", message: "refused", attempts: 3 } };

const badInputs: [string, unknown][] = [
  ["no payload", { metadata: input.metadata }],
  ["no metadata", { payload: "x" }],
  ["empty flowId", { ...input, metadata: { ...input.metadata, flowId: "" } }],
  ["timestamp not ISO", { ...input, metadata: { ...input.metadata, timestamp: "yesterday" } }],
  ["MIME contentType", { ...input, metadata: { ...input.metadata, contentType: "application/json" } }],
  ["old status", { ...input, metadata: { ...input.metadata, status: "completed" } }],
  ["config not an object", { ...input, config: "x" }],
];
const badOutputs: [string, unknown][] = [
  ["error status without error", { ...failed, error: null }],
  ["success with an error", { ...output, error: failed.error }],
  ["no source", { ...output, metadata: { ...output.metadata, source: undefined } }],
  ["old status", { ...output, metadata: { ...output.metadata, status: "completed" } }],
  ["error missing", { payload: 1, metadata: output.metadata }],
];

describe("agent message contract", () => {
  it("the published JSON Schemas are current (npx tsx protocol/agents/generateSchemas.mts)", async () => {
    const rendered = renderSchemas();
    for (const [name, file] of Object.entries(SCHEMA_FILES)) {
      expect(await fs.readFile(file, "utf8"), `${name} is stale`).toBe(rendered[name as keyof typeof rendered]);
    }
  });

  it("zod and the published JSON Schemas accept and refuse the same messages", async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const schema = async (f: string) => ajv.compile(JSON.parse(await fs.readFile(f, "utf8")));
    const jsonIn = await schema(SCHEMA_FILES.msg_input);
    const jsonOut = await schema(SCHEMA_FILES.msg_output);
    for (const m of [input, output, failed, { payload: null, metadata: { flowId: "a", timestamp: at } }]) {
      expect(jsonIn(m), JSON.stringify(m)).toBe(true);
      expect(msgInputSchema.safeParse(m).success).toBe(true);
    }
    for (const m of [output, failed]) {
      expect(jsonOut(m)).toBe(true);
      expect(msgOutputSchema.safeParse(m).success).toBe(true);
    }
    for (const [why, m] of badInputs) {
      expect(jsonIn(m), why).toBe(false);
      expect(msgInputSchema.safeParse(m).success, why).toBe(false);
    }
    for (const [why, m] of badOutputs) {
      expect(jsonOut(m), why).toBe(false);
      expect(msgOutputSchema.safeParse(m).success, why).toBe(false);
    }
  });

  it("the smoke check's rule names the broken field, and legacy mode passes flows that still answer the old enum", () => {
    expect(flowAnswerViolation(output)).toBeUndefined();
    expect(flowAnswerViolation(failed)).toBeUndefined();
    expect(flowAnswerViolation("text")).toBe("not an object");
    expect(flowAnswerViolation({ ...output, metadata: { ...output.metadata, status: "done" } })).toMatch(/^metadata\.status: /);
    // What test/harness/zeroLoss.ts's flow answers today: old status, MIME content type, no error field.
    const old = { payload: { seq: 1 }, metadata: { flowId: "zero-loss", timestamp: at, source: "http", contentType: "application/json", status: "completed" } };
    expect(flowAnswerViolation(old)).toBeDefined();
    expect(flowAnswerViolation(old, { legacy: true })).toBeUndefined();
    expect(isLegacyAnswer(old)).toBe(true);
    expect(isLegacyAnswer(output)).toBe(false);
    expect(flowAnswerViolation({ payload: 1, metadata: { flowId: "x", timestamp: "never" } }, { legacy: true })).toMatch(/timestamp/);
    expect(flowAnswerViolation({ metadata: old.metadata }, { legacy: true })).toMatch(/payload/);
  });

  it("the node package's generated copy is current and its input check agrees with msg_input", async () => {
    expect(await fs.readFile(AGENTS_CONTRACT_FILE, "utf8"), "stale: npx tsx flows/node-package/scripts/generate-agents-contract.mts").toBe(renderAgentsContract());
    expect(agentMessage.readInput(input)).toEqual({ input });
    for (const [why, m] of badInputs) expect(agentMessage.readInput(m).error, why).toEqual(expect.any(String));
  });

  it("the node package builds answers that follow msg_output, with the HTTP status the caller should act on", () => {
    const ok = agentMessage.buildOutput({ flowId: "wf-1", source: "text-chunking", contentType: "json", payload: [1], config: { chunkSize: 100 } });
    expect(msgOutputSchema.parse(ok)).toMatchObject({ payload: [1], metadata: { flowId: "wf-1", status: "success" }, error: null, config: { chunkSize: 100 } });
    const err = agentMessage.buildOutput({ flowId: "wf-1", source: "embeddings", payload: [1], error: { code: "model_unavailable", message: "down", attempts: 3 } });
    expect(msgOutputSchema.parse(err)).toMatchObject({ payload: null, metadata: { status: "error", contentType: "json" }, error: { code: "model_unavailable", attempts: 3 } });
    const codes = [undefined, "invalid_input", "model_unavailable", "model_rejected", "model_bad_answer", "target_unavailable", "target_rejected", "target_bad_answer", "internal_error", "other"];
    expect(codes.map((code) => agentMessage.httpStatusOf(code && { code }))).toEqual([200, 400, 503, 502, 502, 503, 502, 502, 500, 500]);
  });

  it("dead letters go to redforge/dlq/{instance}, and ids that would address other topics are refused", () => {
    expect(dlqTopic("0b7c6f2e")).toBe("redforge/dlq/0b7c6f2e");
    expect(() => dlqTopic("a/#")).toThrow(/topic level/);
  });
});
