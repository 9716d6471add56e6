/**
 * The agent primitives (flows/primitives/*.json) in one real Node-RED started
 * by the process driver with the RedForge node package, against the model
 * stand-in and the test MQTT broker: msg_input in, msg_output out; embeddings
 * over the OpenAI-compatible API (with a key), chat over the Ollama API; each
 * model call reported by the AI audit node; an overloaded model retried with
 * back-off; a refusing or unreachable model answered with status error and a
 * dead letter on redforge/dlq/{instance}; error-handling retrying another
 * primitive until its model is back.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { answer, countTokens, embed } from "../../dev/model-stand-in/answers.ts";
import { startModelStandIn, type ModelStandIn } from "../../dev/model-stand-in/index.ts";
import { primitiveFlow, routeOf } from "../../flows/primitives/build.mts";
import { dlqTopic, flowAnswerViolation, msgInputSchema, msgOutputSchema } from "../../protocol/agents/messageContract.ts";
import { mqttTopics } from "../../protocol/mqtt.ts";
import { DEFAULT_STACK } from "../../protocol/stacks.ts";
import { until } from "../harness/eventually.ts";
import { testBroker, type TestBroker } from "../harness/zeroLoss.ts";

const API_KEY = "sk-agents-test";
let tmp: string;
let broker: TestBroker;
let model: ModelStandIn;
let modelPort: number;
let driver: ProcessDriver;
let bus: MqttClient;
let front: string;
const instanceId = crypto.randomUUID();
const audits: any[] = [];
const deadLetters: any[] = [];

const DOC = "RedForge manages Node-RED instances. The deploy gate holds MQTT work while a runtime drains. "
  + "Held work is replayed to the new runtime after the switch. Blue and green run side by side during a deployment. "
  + "The bridge reports every AI decision to the control plane. Costs are priced from the model price table.";

function input(payload: unknown, config?: Record<string, unknown>, flowId = `wf-${crypto.randomUUID().slice(0, 8)}`) {
  const msg = { payload, metadata: { flowId, timestamp: new Date().toISOString(), source: "agents-test", contentType: typeof payload === "string" ? "text" : "json" }, ...(config ? { config } : {}) };
  msgInputSchema.parse(msg);
  return msg;
}

async function ask(name: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${front}${routeOf(name)}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

/** The answer follows msg_output, keeps the flowId and names the primitive. */
function expectContract(name: string, sent: { metadata: { flowId: string } }, got: { body: any }) {
  expect(flowAnswerViolation(got.body), JSON.stringify(got.body)).toBeUndefined();
  const out = msgOutputSchema.parse(got.body);
  expect(out.metadata).toMatchObject({ flowId: sent.metadata.flowId, source: name });
  return out;
}

const auditsOf = (flowId: string) => audits.filter((a) => a.metadata?.flowId === flowId);

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-agents-"));
  broker = await testBroker();
  model = await startModelStandIn({ apiKey: API_KEY });
  modelPort = model.port;
  bus = await connectAsync(broker.url, { protocolVersion: 4, clientId: `agents-test-${process.pid}` });
  bus.on("message", (topic, payload) => {
    const record = JSON.parse(payload.toString());
    if (topic === mqttTopics.audit(instanceId)) audits.push(record);
    if (topic === dlqTopic(instanceId)) deadLetters.push(record);
  });
  await bus.subscribeAsync([mqttTopics.audit(instanceId), dlqTopic(instanceId)], { qos: 1 });
  const tarball = await packNodePackage(path.join(tmp, "pkg"));
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball], mqttUrl: broker.url });
  const flows = ["text-chunking", "embeddings", "query-processing", "response-generation", "error-handling"].flatMap(primitiveFlow);
  const created = await driver.create({
    id: instanceId, name: "agents", flows, resources: {}, credentialSecret: "agents-test-credential-secret",
    // What new instances run; REDFORGE_TEST_STACK=4.1 runs the primitives on the other installed stack (docs/stacks.md).
    stack: process.env.REDFORGE_TEST_STACK ?? DEFAULT_STACK,
    env: {
      CHUNK_SIZE: "120", CHUNK_OVERLAP: "40",
      // Embeddings over the OpenAI-compatible API (URL given with /v1, as OpenAI clients take it), chat over Ollama's.
      EMBED_API: "openai", EMBED_URL: `${model.url}/v1`, EMBED_MODEL: "text-embedding-3-small", EMBED_API_KEY: API_KEY,
      CHAT_API: "ollama", CHAT_URL: model.url, CHAT_MODEL: "llama3.2",
      MODEL_MAX_ATTEMPTS: "3", MODEL_BACKOFF_MS: "100", MODEL_TIMEOUT_MS: "20000",
      // error-handling calls the other primitives through this instance's front door (its port is only known after create).
      ERROR_TARGETS: "http://127.0.0.1:", ERROR_MAX_ATTEMPTS: "6", ERROR_BACKOFF_MS: "300", ERROR_TIMEOUT_MS: "30000",
    },
  });
  front = created.endpoints.front!;
  // The flows wait for the node package (uploaded after start); routes answer once it is loaded.
  await until("the primitives' routes", async () => (await ask("text-chunking", input("Ready?"))).status === 200, { timeoutMs: 90_000, intervalMs: 250 });
}, 180_000);

afterAll(async () => {
  await driver?.close();
  await bus?.endAsync();
  await model?.close();
  await broker?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

let chunks: { index: number; text: string; start: number; end: number }[] = [];
let vectors: { index: number; text: string; embedding: number[] }[] = [];

describe("agent primitives in real Node-RED", () => {
  it("text-chunking: msg_input text in, sentence-aware chunks of CHUNK_SIZE out; config overrides per message", async () => {
    const sent = input(DOC);
    const got = await ask("text-chunking", sent);
    expect(got.status).toBe(200);
    const out = expectContract("text-chunking", sent, got);
    expect(out.metadata).toMatchObject({ status: "success", contentType: "json" });
    expect(out.error).toBeNull();
    chunks = out.payload as typeof chunks;
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) {
      expect(c.text.length).toBeLessThanOrEqual(120);
      expect(DOC.slice(c.start, c.end)).toBe(c.text);
      expect(c.text).toMatch(/\.$/); // whole sentences
    }
    const small = await ask("text-chunking", input(DOC, { chunkSize: 60, chunkOverlap: 0 }));
    expect((small.body.payload as unknown[]).length).toBeGreaterThan(chunks.length);
    expect(small.body.config).toEqual({ chunkSize: 60, chunkOverlap: 0 });
  });

  it("refuses what does not follow msg_input with 400 and a msg_output of status error", async () => {
    const noMeta = await ask("text-chunking", { payload: "x" });
    expect(noMeta.status).toBe(400);
    expect(noMeta.body).toMatchObject({ payload: null, metadata: { status: "error", source: "text-chunking" }, error: { code: "invalid_input", message: "metadata must be an object" } });
    expect(flowAnswerViolation(noMeta.body)).toBeUndefined();
    const sent = input(42);
    const notText = await ask("text-chunking", sent);
    expect(notText.status).toBe(400);
    expect(expectContract("text-chunking", sent, notText).error).toMatchObject({ code: "invalid_input" });
    const badOverlap = await ask("text-chunking", input(DOC, { chunkSize: 50, chunkOverlap: 80 }));
    expect(badOverlap.body.error).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/overlap/) });
  });

  it("embeddings (OpenAI-compatible API with a key): the chunks come back with the stand-in's vectors, and the call is audited", async () => {
    const sent = input(chunks);
    const got = await ask("embeddings", sent);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    const out = expectContract("embeddings", sent, got);
    vectors = out.payload as typeof vectors;
    expect(vectors.map((v) => v.text)).toEqual(chunks.map((c) => c.text));
    expect(vectors.map((v) => (v as unknown as { start: number }).start)).toEqual(chunks.map((c) => c.start));
    vectors.forEach((v) => expect(v.embedding).toEqual(embed(v.text)));
    const call = model.calls.filter((c) => c.path === "/v1/embeddings").at(-1);
    expect(call).toMatchObject({ model: "text-embedding-3-small", status: 200 });
    const [record] = await until("the embeddings call's AI decision", () => auditsOf(sent.metadata.flowId).length === 1 && auditsOf(sent.metadata.flowId), { timeoutMs: 15_000 });
    expect(record).toMatchObject({
      instanceId, provider: "openai", model: "text-embedding-3-small", responseModel: "text-embedding-3-small", operationName: "embeddings",
      inputTokens: chunks.reduce((n, c) => n + countTokens(c.text), 0), outputTokens: 0, metadata: { attempts: 1 },
    });
  });

  it("response-generation (Ollama API): answers the question from the retrieved context, streaming off, audited with its tokens", async () => {
    const question = "What does the deploy gate hold while a runtime drains?";
    const sent = input({ question, context: chunks });
    const got = await ask("response-generation", sent);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    const out = expectContract("response-generation", sent, got);
    // What the stand-in answers for the prompt the flow builds (system prompt + "Context: …" + "Question: …").
    const prompt = `Context:\n${chunks.map((c) => c.text).join("\n\n")}\n\nQuestion: ${question}`;
    const expected = answer([{ role: "user", content: prompt }]);
    expect(expected).toBe("The deploy gate holds MQTT work while a runtime drains.");
    expect(out.payload).toMatchObject({ answer: expected, model: "llama3.2", outputTokens: countTokens(expected), finishReason: "stop" });
    const [record] = await until("the chat call's AI decision", () => auditsOf(sent.metadata.flowId).length === 1 && auditsOf(sent.metadata.flowId), { timeoutMs: 15_000 });
    expect(record).toMatchObject({ provider: "ollama", model: "llama3.2", operationName: "chat", prompt, response: expected, outputTokens: countTokens(expected), finishReason: "stop" });
    expect(record.inputTokens).toBe((out.payload as { inputTokens: number }).inputTokens);
  });

  it("query-processing ranks the embedded chunks against a question, and response-generation answers from the best ones", async () => {
    const question = "What happens to held work after the switch?";
    const sent = input({ query: question, candidates: vectors }, { topK: 2 });
    const got = await ask("query-processing", sent);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    const { results } = expectContract("query-processing", sent, got).payload as { results: { rank: number; score: number; index: number; text: string; embedding?: unknown }[] };
    // The same ranking computed here from the stand-in's vectors.
    const q = embed(question);
    const expected = vectors.map((v, index) => ({ index, score: v.embedding.reduce((s, x, k) => s + x * q[k]!, 0) }))
      .sort((a, b) => b.score - a.score || a.index - b.index).slice(0, 2);
    expect(results.map((r) => r.index)).toEqual(expected.map((e) => e.index));
    expect(results.map((r) => r.rank)).toEqual([1, 2]);
    expect(results[0]!.score).toBeCloseTo(expected[0]!.score, 4);
    expect(results[0]!.text).toContain("Held work is replayed to the new runtime after the switch.");
    expect(results[0]!.embedding).toBeUndefined();
    const [record] = await until("the query embedding's AI decision", () => auditsOf(sent.metadata.flowId).length === 1 && auditsOf(sent.metadata.flowId), { timeoutMs: 15_000 });
    expect(record).toMatchObject({ operationName: "embeddings", prompt: question, inputTokens: countTokens(question) });

    const respond = await ask("response-generation", input({ question, context: results }));
    expect(respond.body.payload.answer).toBe("Held work is replayed to the new runtime after the switch.");
    const mixed = await ask("query-processing", input({ query: question, candidates: [{ text: "x", embedding: [1, 0] }] }));
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.message).toMatch(/dimensions/);
  });

  it("an overloaded model (503 twice) is retried with back-off and the third attempt answers", async () => {
    model.fault({ status: 503, times: 2, pathPrefix: "/api/chat" });
    const sent = input("What runs side by side during a deployment?");
    const before = model.calls.length;
    const got = await ask("response-generation", sent);
    model.fault(undefined);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(expectContract("response-generation", sent, got).metadata.status).toBe("success");
    expect(model.calls.slice(before).map((c) => c.status)).toEqual([503, 503, 200]);
    const [record] = await until("the retried call's AI decision", () => auditsOf(sent.metadata.flowId).length === 1 && auditsOf(sent.metadata.flowId), { timeoutMs: 15_000 });
    expect(record.metadata).toMatchObject({ attempts: 3 });
  });

  it("a model that refuses the request (4xx) is not retried: status error model_rejected, and a dead letter", async () => {
    model.fault({ status: 400, times: 1, pathPrefix: "/v1/embeddings" });
    const sent = input(["one text"]);
    const got = await ask("embeddings", sent);
    model.fault(undefined);
    expect(got.status).toBe(502);
    const out = expectContract("embeddings", sent, got);
    expect(out).toMatchObject({ payload: null, metadata: { status: "error" }, error: { code: "model_rejected", attempts: 1 } });
    const letter = await until("the dead letter", () => deadLetters.find((d) => d.flowId === sent.metadata.flowId), { timeoutMs: 15_000 });
    expect(letter).toMatchObject({ instanceId, primitive: "embeddings", error: { code: "model_rejected" }, input: { payload: ["one text"], metadata: { flowId: sent.metadata.flowId } } });
    expect(auditsOf(sent.metadata.flowId)).toEqual([]);
  });

  it("a model that is down: every attempt refused, status error model_unavailable (503), a dead letter; answers again once it is back", async () => {
    await model.close();
    try {
      const sent = input({ question: "Who reports AI decisions?", context: ["The bridge reports every AI decision to the control plane."] });
      const got = await ask("response-generation", sent);
      expect(got.status).toBe(503);
      const out = expectContract("response-generation", sent, got);
      expect(out.error).toMatchObject({ code: "model_unavailable", attempts: 3, message: expect.stringContaining("/api/chat") });
      const letter = await until("the dead letter", () => deadLetters.find((d) => d.flowId === sent.metadata.flowId), { timeoutMs: 15_000 });
      expect(letter).toMatchObject({ primitive: "response-generation", error: { code: "model_unavailable", attempts: 3 }, input: { payload: sent.payload } });
    } finally {
      model = await startModelStandIn({ apiKey: API_KEY, port: modelPort });
    }
    const again = await ask("response-generation", input({ question: "Who reports AI decisions?", context: ["The bridge reports every AI decision to the control plane."] }));
    expect(again.body.payload.answer).toBe("The bridge reports every AI decision to the control plane.");
  });

  it("error-handling retries a primitive whose model is down until it is back, and answers with the primitive's msg_output", async () => {
    const inner = input({ question: "What is replayed after the switch?", context: [DOC] });
    const sent = input({ url: `${front}${routeOf("response-generation")}`, message: inner });
    await model.close();
    let pending: Promise<{ status: number; body: any }> | undefined;
    try {
      pending = ask("error-handling", sent);
      // The inner primitive gives up on its own (3 attempts, a dead letter); error-handling waits and calls it again.
      await until("response-generation's dead letter", () => deadLetters.some((d) => d.flowId === inner.metadata.flowId), { timeoutMs: 30_000 });
    } finally {
      model = await startModelStandIn({ apiKey: API_KEY, port: modelPort });
    }
    const got = await pending;
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    const out = expectContract("error-handling", sent, got);
    const { answer: answered, attempts } = out.payload as { answer: any; attempts: number };
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(msgOutputSchema.parse(answered)).toMatchObject({ metadata: { flowId: inner.metadata.flowId, source: "response-generation", status: "success" } });
    expect(answered.payload.answer).toBe("Held work is replayed to the new runtime after the switch.");
    expect(deadLetters.filter((d) => d.flowId === sent.metadata.flowId)).toEqual([]);
  });

  it("error-handling does not retry what retrying cannot fix: the primitive's error, one attempt, and its own dead letter", async () => {
    const inner = input(42); // text-chunking refuses it: invalid_input
    const sent = input({ url: `${front}${routeOf("text-chunking")}`, message: inner });
    const got = await ask("error-handling", sent);
    expect(expectContract("error-handling", sent, got).error).toMatchObject({ code: "invalid_input", attempts: 1 });
    const letter = await until("error-handling's dead letter", () => deadLetters.find((d) => d.flowId === sent.metadata.flowId), { timeoutMs: 15_000 });
    expect(letter).toMatchObject({ primitive: "error-handling", error: { code: "invalid_input" }, input: { payload: { message: inner } } });
    const elsewhere = await ask("error-handling", input({ url: "http://169.254.169.254/latest/meta-data", message: inner }));
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.error.message).toMatch(/not under ERROR_TARGETS/);
  });
});
