/**
 * The model stand-in (dev/model-stand-in) over HTTP: both APIs' shapes,
 * token counts a test can predict, deterministic vectors whose cosine
 * follows shared words, an extractive answer from the context, streaming as
 * each API streams, and injected faults.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answer, countTokens, embed, NO_ANSWER_PREFIX } from "../../dev/model-stand-in/answers.ts";
import { startModelStandIn, type ModelStandIn } from "../../dev/model-stand-in/index.ts";

let model: ModelStandIn;
beforeAll(async () => { model = await startModelStandIn(); });
afterAll(async () => { await model?.close(); });

const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${model.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text, type: res.headers.get("content-type") };
};
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

const context = "Context:\nThe gate holds MQTT work while it drains. Blue and green run side by side. The bridge replays held work.\n\nQuestion: what does the gate do while it drains?";

describe("model stand-in", () => {
  it("answers a chat from its context, the same way every time, with tokens counted", async () => {
    const messages = [{ role: "system", content: "Answer from the context." }, { role: "user", content: context }];
    const ollama = await post("/api/chat", { model: "llama3.2", messages, stream: false });
    expect(ollama.status).toBe(200);
    expect(ollama.json).toMatchObject({
      model: "llama3.2", done: true, done_reason: "stop",
      message: { role: "assistant", content: "The gate holds MQTT work while it drains." },
      prompt_eval_count: countTokens("Answer from the context.") + countTokens(context), eval_count: countTokens("The gate holds MQTT work while it drains."),
    });
    const openai = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages });
    expect(openai.json).toMatchObject({
      object: "chat.completion", model: "gpt-4o-mini",
      choices: [{ index: 0, message: { role: "assistant", content: "The gate holds MQTT work while it drains." }, finish_reason: "stop" }],
      usage: { prompt_tokens: ollama.json.prompt_eval_count, completion_tokens: ollama.json.eval_count, total_tokens: ollama.json.prompt_eval_count + ollama.json.eval_count },
    });
    expect((await post("/v1/chat/completions", { model: "gpt-4o-mini", messages })).json.choices).toEqual(openai.json.choices);
    expect(answer([{ role: "user", content: "Question: who won the cup?" }])).toBe(`${NO_ANSWER_PREFIX} who won the cup?`);
  });

  it("completes a prompt on both APIs", async () => {
    const gen = await post("/api/generate", { model: "llama3.2", prompt: context, stream: false });
    expect(gen.json).toMatchObject({ response: "The gate holds MQTT work while it drains.", done: true, prompt_eval_count: countTokens(context) });
    const comp = await post("/v1/completions", { model: "gpt-4o-mini", prompt: context });
    expect(comp.json).toMatchObject({ object: "text_completion", choices: [{ text: "The gate holds MQTT work while it drains.", finish_reason: "stop" }] });
  });

  it("embeds deterministically: same text same vector, shared words closer, both APIs agree, base64 as the OpenAI SDK asks", async () => {
    const texts = ["the gate drains mqtt work", "the gate drains http work", "postgres stores vectors"];
    const ollama = await post("/api/embed", { model: "nomic-embed-text", input: texts });
    expect(ollama.json.embeddings).toHaveLength(3);
    expect(ollama.json.embeddings[0]).toHaveLength(64);
    expect(ollama.json.prompt_eval_count).toBe(texts.reduce((n, t) => n + countTokens(t), 0));
    const [a, b, c] = ollama.json.embeddings as number[][];
    expect(cosine(a!, a!)).toBeCloseTo(1, 4);
    expect(cosine(a!, b!)).toBeGreaterThan(cosine(a!, c!));
    const openai = await post("/v1/embeddings", { model: "text-embedding-3-small", input: texts[0], dimensions: 16 });
    expect(openai.json).toMatchObject({ object: "list", data: [{ object: "embedding", index: 0 }], usage: { prompt_tokens: countTokens(texts[0]!) } });
    expect(openai.json.data[0].embedding).toEqual(embed(texts[0]!, 16));
    const b64 = await post("/v1/embeddings", { model: "text-embedding-3-small", input: [texts[0]], encoding_format: "base64" });
    const buf = Buffer.from(b64.json.data[0].embedding, "base64");
    const floats = Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4));
    floats.forEach((x, i) => expect(x).toBeCloseTo(a![i]!, 5));
  });

  it("streams as each API does: Ollama NDJSON unless stream is false, OpenAI server-sent events when stream is true", async () => {
    const messages = [{ role: "user", content: context }];
    const nd = await post("/api/chat", { model: "llama3.2", messages });
    expect(nd.type).toBe("application/x-ndjson");
    const lines = nd.text.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ done: true, eval_count: countTokens("The gate holds MQTT work while it drains.") });
    expect(lines.map((l) => l.message.content).join("")).toBe("The gate holds MQTT work while it drains.");
    const sse = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages, stream: true, stream_options: { include_usage: true } });
    expect(sse.type).toBe("text/event-stream");
    const events = sse.text.split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe("The gate holds MQTT work while it drains.");
    expect(chunks.at(-1).usage.completion_tokens).toBe(countTokens("The gate holds MQTT work while it drains."));
  });

  it("answers malformed requests in each API's error shape, and lists models", async () => {
    expect(await post("/api/chat", { messages: [] })).toMatchObject({ status: 400, json: { error: "model is required" } });
    expect(await post("/v1/embeddings", { model: "m", input: 42 })).toMatchObject({ status: 400, json: { error: { type: "invalid_request_error" } } });
    expect((await post("/v1/nothing", { model: "m" })).status).toBe(404);
    expect(((await (await fetch(`${model.url}/api/tags`)).json()) as any).models.length).toBeGreaterThan(0);
    expect(((await (await fetch(`${model.url}/v1/models`)).json()) as any).object).toBe("list");
  });

  it("injects faults for the next N calls (a model that is overloaded, then recovers) and records every call", async () => {
    const before = model.calls.length;
    model.fault({ status: 503, times: 2, pathPrefix: "/api/embed" });
    expect((await post("/api/embed", { model: "m", input: "x" })).status).toBe(503);
    expect((await post("/v1/embeddings", { model: "m", input: "x" })).status).toBe(200);
    expect((await post("/api/embed", { model: "m", input: "x" })).json).toEqual({ error: "injected fault (503)" });
    expect((await post("/api/embed", { model: "m", input: "x" })).status).toBe(200);
    model.fault(undefined);
    expect(model.calls.slice(before).map((c) => `${c.path} ${c.status}`)).toEqual(["/api/embed 503", "/v1/embeddings 200", "/api/embed 503", "/api/embed 200"]);
  });

  it("a test can script the answer, its token counts and the model name answers carry", async () => {
    const scripted = await startModelStandIn({
      answeredModel: (m) => `${m}-2024-07-18`,
      answer: (messages) => ({ content: `answer to: ${messages.at(-1)!.content}`, promptTokens: 1000, completionTokens: 500 }),
    });
    try {
      const res = await fetch(`${scripted.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }) });
      expect(await res.json()).toMatchObject({ model: "gpt-4o-mini-2024-07-18", choices: [{ message: { content: "answer to: hi" } }], usage: { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500 } });
    } finally {
      await scripted.close();
    }
  });

  it("wants the API key on OpenAI routes when given one", async () => {
    const keyed = await startModelStandIn({ apiKey: "sk-test" });
    try {
      const call = (auth?: string) => fetch(`${keyed.url}/v1/embeddings`, { method: "POST", headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify({ model: "m", input: "x" }) });
      expect((await call()).status).toBe(401);
      expect((await call("Bearer sk-test")).status).toBe(200);
    } finally {
      await keyed.close();
    }
  });
});
