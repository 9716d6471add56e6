/**
 * AI decision logs end to end: a real Node-RED (process driver) runs a flow
 * that calls the model stand-in (dev/model-stand-in) over HTTP, builds msg.aiDecision from the
 * OpenAI-style answer and passes it to the redforge-ai-audit node; the record
 * travels over MQTT to the bridge, in a signed batch webhook to the Worker
 * (wrangler dev), and shows up in /api/ai/decisions with its cost priced and
 * its tokens counted in the team's daily counter — which then stops a
 * deployment once the team's LLM token quota is used up.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lineLogger } from "../../bridge/log.ts";
import { startBridge, type RunningBridge } from "../../bridge/main.ts";
import { startModelStandIn, type ModelStandIn } from "../../dev/model-stand-in/index.ts";
import { eventually } from "../harness/eventually.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

let stack: TestStack;
let bridge: RunningBridge;
let llm: ModelStandIn | undefined;
let tmp: string;
let token: string;
let clusterId: string;
const bridgeLog: string[] = [];

async function call(method: string, p: string, body?: unknown) {
  const res = await fetch(`${stack.apiUrl}${p}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

/** The stand-in's OpenAI-compatible chat, scripted so token counts follow from the question and the test knows them. */
async function startLlmStandIn(): Promise<number> {
  llm = await startModelStandIn({
    answeredModel: (model) => `${model}-2024-07-18`,
    answer: (messages) => {
      const question = messages.at(-1)?.content ?? "";
      return { content: `answer to: ${question}`, promptTokens: 1000 + question.length, completionTokens: 500 };
    },
  });
  return llm.port;
}

/** http in → build request → http request (LLM) → build msg.aiDecision → redforge-ai-audit → http response. */
function agentFlow(llmUrl: string) {
  const tab = "f1a0000000000001";
  const node = (id: string, type: string, wires: string[], extra: Record<string, unknown> = {}) =>
    ({ id, type, z: tab, x: 100, y: 100, wires: wires.length ? [wires] : [], ...extra });
  return [
    { id: tab, type: "tab", label: "support-agent" },
    node("n1", "http in", ["n2"], { url: "/ask", method: "post" }),
    node("n2", "function", ["n3"], {
      func: `msg.question = msg.payload.question;
msg.started = Date.now();
msg.url = ${JSON.stringify(`${llmUrl}/v1/chat/completions`)};
msg.headers = { "content-type": "application/json" };
msg.payload = { model: "gpt-4o-mini", messages: [{ role: "user", content: msg.question }] };
return msg;`, outputs: 1,
    }),
    node("n3", "http request", ["n4"], { method: "POST", ret: "obj", url: "" }),
    node("n4", "function", ["n5"], {
      func: `const r = msg.payload;
msg.aiDecision = {
  provider: "openai", model: "gpt-4o-mini", responseModel: r.model, responseId: r.id,
  prompt: msg.question, response: r.choices[0].message.content,
  inputTokens: r.usage.prompt_tokens, outputTokens: r.usage.completion_tokens,
  finishReason: r.choices[0].finish_reason, latencyMs: Date.now() - msg.started,
  traceId: "0af7651916cd43dd8448eb211c80319c"
};
msg.payload = { answer: r.choices[0].message.content };
return msg;`, outputs: 1,
    }),
    node("n5", "redforge-ai-audit", ["n6"], { property: "aiDecision" }),
    node("n6", "http response", []),
  ];
}

beforeAll(async () => {
  stack = await startTestStack({ worker: "wrangler" });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-ai-e2e-"));
  await fs.chmod(tmp, 0o755);
  const login = await fetch(`${stack.apiUrl}/api/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: stack.cfg.worker.adminPassword }),
  });
  token = ((await login.json()) as any).token;
  const cluster = await call("POST", "/api/clusters", { name: "ai-e2e", driver: "process" });
  clusterId = cluster.body.id;
  bridge = await startBridge({
    clusterId, api: stack.apiUrl, secret: cluster.body.webhookSecret, driver: "process", stateDir: tmp,
    mqttUrl: stack.mqttUrl, log: lineLogger((line) => { bridgeLog.push(line); }),
  });
  await bridge.aiAudit!.subscribed();
}, 180_000);

afterAll(async () => {
  await bridge?.close();
  await stack?.stop();
  await llm?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("AI decision records from a real Node-RED flow", () => {
  it("arrive in the control plane priced, count against the team's daily tokens, and the exhausted budget stops a deployment", async () => {
    const price = await call("PUT", "/api/ai/prices", { provider: "openai", model: "gpt-4o-mini", inputUsdPerMtok: 0.15, outputUsdPerMtok: 0.6 });
    expect(price.status).toBe(200);
    const llmPort = await startLlmStandIn();

    const created = await call("POST", "/api/instances", { name: "ai-agent", clusterId, flows: agentFlow(`http://127.0.0.1:${llmPort}`) });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    const team = created.body.team;
    const front = await eventually(async () => {
      const inst = (await call("GET", `/api/instances/${id}`)).body;
      return inst?.status === "running" && inst.endpoints?.front ? inst.endpoints.front as string : undefined;
    }, 90_000);

    const questions = ["reset my password", "where is my order 42", "cancel subscription"];
    for (const question of questions) {
      // The flow's http-in route is live a little after the deploy answers (FACTS.md): retry until it is.
      const answer = await eventually(async () => {
        const res = await fetch(`${front}/ask`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ question }) });
        return res.status === 200 ? (await res.json()) as { answer: string } : undefined;
      }, 30_000);
      expect(answer.answer).toBe(`answer to: ${question}`);
    }

    const items = await eventually(async () => {
      const res = await call("GET", `/api/ai/decisions?instanceId=${id}`);
      return res.body?.items?.length === questions.length ? res.body.items as any[] : undefined;
    }, 30_000).catch((err) => { throw new Error(`${err.message}; bridge log:\n${bridgeLog.slice(-20).join("\n")}`); });

    const expectedInput = (q: string) => 1000 + q.length;
    for (const question of questions) {
      const rec = items.find((r) => r.prompt === question);
      expect(rec, `record for "${question}"`).toBeDefined();
      expect(rec).toMatchObject({
        instanceId: id, flowName: "support-agent", flowId: "f1a0000000000001", provider: "openai", model: "gpt-4o-mini",
        responseModel: "gpt-4o-mini-2024-07-18", operationName: "chat", response: `answer to: ${question}`,
        inputTokens: expectedInput(question), outputTokens: 500, tokensUsed: expectedInput(question) + 500,
        finishReason: "stop", traceId: "0af7651916cd43dd8448eb211c80319c",
      });
      expect(rec.latencyMs).toBeGreaterThanOrEqual(0);
      expect(Number(rec.costUsd)).toBeCloseTo((expectedInput(question) * 0.15 + 500 * 0.6) / 1e6, 8);
    }

    const totalTokens = questions.reduce((n, q) => n + expectedInput(q) + 500, 0);
    const totals = await call("GET", `/api/ai/decisions/totals?groupBy=flow&instanceId=${id}`);
    expect(totals.body.items).toEqual([expect.objectContaining({
      key: { flowName: "support-agent" }, calls: 3, inputTokens: totalTokens - 1500, outputTokens: 1500, unpricedCalls: 0,
    })]);

    const usage = await call("GET", `/api/quotas/${encodeURIComponent(team)}/usage`);
    expect(usage.status, JSON.stringify(usage.body)).toBe(200);
    expect(usage.body.usage.llmTokensToday).toBe(totalTokens);
    expect(bridge.aiAudit!.stats).toMatchObject({ delivered: 3, dropped: 0, malformed: 0 });
    expect(llm!.calls.filter((c) => c.path === "/v1/chat/completions" && c.status === 200)).toHaveLength(3);

    // The team's token budget, fed by these records, now stops further deployments.
    const roomy = await call("PUT", `/api/quotas/${encodeURIComponent(team)}`, { maxLlmTokensPerDay: totalTokens + 1 });
    expect([200, 201]).toContain(roomy.status);
    expect((await call("POST", "/api/policies/evaluate", { action: "deploy", instanceId: id })).body).toEqual({ allowed: true });
    expect((await call("PUT", `/api/quotas/${encodeURIComponent(team)}`, { maxLlmTokensPerDay: totalTokens })).status).toBe(200);
    const deploy = await call("POST", "/api/deployments", { instanceId: id, flows: agentFlow(`http://127.0.0.1:${llmPort}`) });
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(429);
    expect(deploy.body.error).toMatchObject({ code: "QUOTA_EXCEEDED", details: { limit: "maxLlmTokensPerDay", used: totalTokens, max: totalTokens } });
  }, 180_000);
});
