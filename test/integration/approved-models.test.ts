/**
 * Approved models enforced at run time, end to end: an `approved_models`
 * policy written through the API reaches a real Node-RED instance (created
 * through the API, process driver) by way of the bridge (retained on
 * redforge/policy/models/{instance}); the response-generation primitive
 * calls an approved model and answers, refuses an unapproved one with
 * model_not_approved before any call leaves the instance, and the refusal is
 * an AI decision marked blocked in GET /api/ai/decisions. A policy change
 * reaches the running instance without a redeploy.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import mqtt from "mqtt";
import { startModelStandIn } from "../../dev/model-stand-in/index.ts";
import type { ApiBody } from "../../protocol/api/client.ts";
import { modelPolicyTopic } from "../../protocol/modelPolicies.ts";
import { msgInputSchema } from "../../protocol/agents/messageContract.ts";
import { primitiveFlow, routeOf } from "../../flows/primitives/build.mts";
import type { ApiClient } from "../harness/adminClient.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";

const WAIT = { timeout: 120_000, interval: 250 };
const APPROVED = "llama3.2";
const UNAPPROVED = "gpt-unapproved";

let fleet: FleetStack;
let api: ApiClient;
let model: Awaited<ReturnType<typeof startModelStandIn>>;

beforeAll(async () => {
  model = await startModelStandIn();
  fleet = await startFleetStack("approved-models", { modelPolicyRefreshMs: 1_000 });
  api = fleet.api;
}, 180_000);

afterAll(async () => {
  await fleet?.close();
  await model?.close();
});

function input(question: string, config: Record<string, unknown>) {
  const msg = { payload: { question, context: ["The approved model is the one the platform team chose. It answers questions about policies."] },
    metadata: { flowId: `wf-${crypto.randomUUID().slice(0, 8)}`, timestamp: new Date().toISOString(), source: "approved-models-test", contentType: "json" }, config };
  msgInputSchema.parse(msg);
  return msg;
}

/** The latest retained policy message for the instance, as the instance would read it. */
async function publishedPolicy(instanceId: string): Promise<{ policies: { name: string; models: string[] }[] } | undefined> {
  const client = await mqtt.connectAsync(fleet.stack.mqttUrl, { protocolVersion: 4 });
  try {
    const got = new Promise<Buffer | undefined>((resolve) => {
      client.on("message", (_t, payload) => resolve(payload));
      setTimeout(() => resolve(undefined), 1_000);
    });
    await client.subscribeAsync(modelPolicyTopic(instanceId), { qos: 1 });
    const payload = await got;
    return payload && payload.length ? JSON.parse(payload.toString("utf8")) : undefined;
  } finally {
    await client.endAsync();
  }
}

describe("approved models at run time", () => {
  it("an unapproved model is refused before the call and recorded as blocked; an approved one answers; a policy change applies live", async () => {
    const policy = await api.POST("/api/policies", {
      body: { name: `approved-llama-${crypto.randomUUID().slice(0, 6)}`, kind: "approved_models", rule: { models: [APPROVED], selector: { namePattern: "policy-agent-*" } } },
    });
    expect(policy.response.status, JSON.stringify(policy.error)).toBe(201);
    const policyName = policy.data!.name;

    const created = await api.POST("/api/instances", {
      body: {
        name: `policy-agent-${crypto.randomUUID().slice(0, 6)}`, clusterId: fleet.clusterId,
        flows: primitiveFlow("response-generation") as ApiBody<"/api/instances", "post">["flows"],
        env: { CHAT_API: "ollama", CHAT_URL: model.url, MODEL_MAX_ATTEMPTS: "1" },
      },
    });
    expect(created.response.status, JSON.stringify(created.error)).toBe(201);
    const instance = await vi.waitFor(async () => {
      const { data } = await api.GET("/api/instances/{id}", { params: { path: { id: created.data!.id } } });
      expect(data).toMatchObject({ status: "running", endpoints: { front: expect.any(String) } });
      return data!;
    }, WAIT);
    const url = `${instance.endpoints!.front}${routeOf("response-generation")}`;
    const ask = async (body: unknown) => {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json().catch(() => null)) as any };
    };
    // Ready once the primitive answers (a broken input: 400, no model call).
    await vi.waitFor(async () => expect((await ask({ not: "a msg_input" })).status).toBe(400), WAIT);
    // The bridge has handed the instance its policy.
    await vi.waitFor(async () => expect((await publishedPolicy(instance.id))?.policies.map((p) => p.name)).toEqual([policyName]), WAIT);

    const approved = await ask(input("Which model answers questions about policies?", { model: APPROVED }));
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body).toMatchObject({ metadata: { status: "success" }, payload: { model: APPROVED, answer: expect.stringContaining("policies") } });

    const callsBefore = model.calls.length;
    const refused = await ask(input("Which model answers questions about policies?", { model: UNAPPROVED }));
    expect(refused.status, JSON.stringify(refused.body)).toBe(403);
    expect(refused.body).toMatchObject({
      payload: null, metadata: { status: "error" },
      error: { code: "model_not_approved", message: expect.stringContaining(`model ${UNAPPROVED} is not on the approved list of policy ${policyName}`) },
    });
    expect(model.calls.slice(callsBefore), "no call left the instance for the refused model").toEqual([]);

    // The refusal is an AI decision marked blocked, next to the answered call.
    const blocked = await vi.waitFor(async () => {
      const { data } = await api.GET("/api/ai/decisions", { params: { query: { instanceId: instance.id, model: UNAPPROVED } } });
      expect(data?.items).toHaveLength(1);
      return data!.items[0]!;
    }, WAIT);
    expect(blocked).toMatchObject({
      finishReason: "blocked", provider: "ollama", inputTokens: 0, outputTokens: 0,
      metadata: { blocked: true, code: "model_not_approved", policy: policyName },
    });
    const answered = await api.GET("/api/ai/decisions", { params: { query: { instanceId: instance.id, model: APPROVED } } });
    expect(answered.data!.items.map((d) => d.finishReason)).not.toContain("blocked");

    // Approving the model reaches the running instance without a redeploy.
    const patched = await api.PATCH("/api/policies/{id}", {
      params: { path: { id: policy.data!.id } },
      body: { rule: { models: [APPROVED, UNAPPROVED], selector: { namePattern: "policy-agent-*" } } },
    });
    expect(patched.response.status, JSON.stringify(patched.error)).toBe(200);
    await vi.waitFor(async () => expect((await publishedPolicy(instance.id))?.policies[0]?.models).toContain(UNAPPROVED), WAIT);
    const now = await ask(input("Which model answers questions about policies?", { model: UNAPPROVED }));
    expect(now.status, JSON.stringify(now.body)).toBe(200);
    expect(model.calls.some((c) => c.model === UNAPPROVED)).toBe(true);
  }, 300_000);
});
