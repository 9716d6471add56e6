/**
 * The memory and error-handling primitives in a real Node-RED instance created
 * through the API (Worker, bridge, process driver), end to end:
 * - memory: turns appended and recalled oldest first, on a real Postgres;
 * - error-handling: a call to a primitive that is not reachable is retried,
 *   answered target_unavailable and dead-lettered; the letter travels
 *   redforge/dlq/{instance} → bridge → GET /api/dead-letters; replaying it
 *   through the API (once the target is back) sends its input again, the
 *   replay is marked succeeded with who and when, the memory holds the turn
 *   it carried, and a second replay is 409 already_replayed;
 * - approved models: a retained list past its expiresAt refuses model calls
 *   with model_policy_stale (no call leaves the instance), a fresh one lets
 *   them through, a withdrawn (cleared) one refuses again.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import mqtt from "mqtt";
import type { z } from "zod";
import { startModelStandIn } from "../../dev/model-stand-in/index.ts";
import { freePort, listen } from "../../dev/ports.ts";
import { primitiveFlow, routeOf } from "../../flows/primitives/build.mts";
import type { ApiBody } from "../../protocol/api/client.ts";
import { msgInputSchema } from "../../protocol/agents/messageContract.ts";
import type { deadLetterRecordSchema } from "../../protocol/api/deadLetters.ts";
import { modelPolicyTopic } from "../../protocol/modelPolicies.ts";
import { agentsPostgres, type AgentsPostgres } from "../harness/agentsPostgres.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";

const WAIT = { timeout: 180_000, interval: 250 };

let fleet: FleetStack;
let model: Awaited<ReturnType<typeof startModelStandIn>>;
let db: AgentsPostgres;
let instanceId: string;
let front: string;

function input(payload: unknown, config?: Record<string, unknown>) {
  const msg = { payload, metadata: { flowId: `wf-${crypto.randomUUID().slice(0, 8)}`, timestamp: new Date().toISOString(), source: "agents-api-test", contentType: "json" }, ...(config ? { config } : {}) };
  msgInputSchema.parse(msg);
  return msg;
}

async function ask(primitive: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${front}${routeOf(primitive)}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

type Letter = z.infer<typeof deadLetterRecordSchema>;

/** GET /api/dead-letters for this instance's error-handling letters (plain fetch: typed by the route's own schema). */
async function letters(): Promise<Letter[]> {
  const res = await fetch(`${fleet.stack.apiUrl}/api/dead-letters?instanceId=${instanceId}&primitive=error-handling`, { headers: { authorization: `Bearer ${fleet.token}` } });
  return ((await res.json()) as { items: Letter[] }).items;
}

async function replayLetter(id: number): Promise<{ status: number; body: any }> {
  const res = await fetch(`${fleet.stack.apiUrl}/api/dead-letters/${id}/replay`, { method: "POST", headers: { authorization: `Bearer ${fleet.token}` } });
  return { status: res.status, body: await res.json() };
}

/** Forwards to the instance's front door: "the target is back". */
async function proxyOn(port: number) {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", async () => {
      const r = await fetch(`${front}${req.url}`, { method: req.method, headers: { "content-type": "application/json" }, body });
      res.writeHead(r.status, { "content-type": "application/json" }).end(await r.text());
    });
  });
  await listen(server, port, "127.0.0.1");
  return { close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function retain(topic: string, payload: string) {
  const client = await mqtt.connectAsync(fleet.stack.mqttUrl, { protocolVersion: 4 });
  try { await client.publishAsync(topic, payload, { qos: 1, retain: true }); } finally { await client.endAsync(); }
}

async function retained(topic: string): Promise<any> {
  const client = await mqtt.connectAsync(fleet.stack.mqttUrl, { protocolVersion: 4 });
  try {
    const got = new Promise<Buffer | undefined>((resolve) => {
      client.on("message", (_t, p) => resolve(p));
      setTimeout(() => resolve(undefined), 1_000);
    });
    await client.subscribeAsync(topic, { qos: 1 });
    const p = await got;
    return p && p.length ? JSON.parse(p.toString("utf8")) : undefined;
  } finally {
    await client.endAsync();
  }
}

beforeAll(async () => {
  model = await startModelStandIn();
  db = await agentsPostgres("redforge_agents_api_it");
  fleet = await startFleetStack("agents-api-dlq");
  const created = await fleet.api.POST("/api/instances", {
    body: {
      name: `memory-agent-${crypto.randomUUID().slice(0, 6)}`, clusterId: fleet.clusterId,
      flows: ["memory", "error-handling", "response-generation"].flatMap(primitiveFlow) as ApiBody<"/api/instances", "post">["flows"],
      env: {
        MEMORY_TABLE: "redforge_memory_it", ERROR_TARGETS: "http://127.0.0.1:", ERROR_MAX_ATTEMPTS: "2", ERROR_BACKOFF_MS: "100", ERROR_TIMEOUT_MS: "20000",
        CHAT_API: "ollama", CHAT_URL: model.url, MODEL_MAX_ATTEMPTS: "1",
      },
      secrets: { MEMORY_POSTGRES_URL: db.url },
    },
    // Bounded: a creation that never answers must fail with its own message, not as a 420 s hook timeout
    // (the clean-clone CI saw that once and could not say which step hung).
    signal: AbortSignal.timeout(120_000),
  });
  expect(created.response.status, JSON.stringify(created.error)).toBe(201);
  instanceId = created.data!.id;
  const inst = await vi.waitFor(async () => {
    const { data } = await fleet.api.GET("/api/instances/{id}", { params: { path: { id: instanceId } }, signal: AbortSignal.timeout(15_000) });
    expect(data).toMatchObject({ status: "running", endpoints: { front: expect.any(String) } });
    return data!;
  }, WAIT);
  front = inst.endpoints!.front!;
  // The flows started: a broken input answers 400 without touching a store.
  await vi.waitFor(async () => {
    expect((await ask("memory", { not: "a msg_input" })).status).toBe(400);
    expect((await ask("error-handling", { not: "a msg_input" })).status).toBe(400);
  }, WAIT);
}, 420_000);

afterAll(async () => {
  await fleet?.close();
  await model?.close();
  await db?.stop();
});

describe("memory and error-handling in an instance created through the API", () => {
  it("memory appends and recalls turns oldest first on Postgres", async () => {
    const conversationId = `conv-${crypto.randomUUID().slice(0, 8)}`;
    const appended = await ask("memory", input({ action: "append", conversationId, turns: [{ role: "user", content: "My order is 4711." }, { role: "assistant", content: "Noted: order 4711." }] }));
    expect(appended.status, JSON.stringify(appended.body)).toBe(200);
    expect(appended.body.payload).toMatchObject({ conversationId, appended: 2, turns: 2 });
    expect((await ask("memory", input({ action: "append", conversationId, role: "user", content: "Where is it?" }))).body.payload.turns).toBe(3);
    const recalled = await ask("memory", input({ action: "recall", conversationId, last: 2 }));
    expect(recalled.status).toBe(200);
    expect(recalled.body.payload.turns.map((t: { role: string; content: string }) => [t.role, t.content])).toEqual([["assistant", "Noted: order 4711."], ["user", "Where is it?"]]);
  }, 120_000);

  it("error-handling dead-letters a call it gave up on; the letter reaches the API and a replay through the API delivers it", async () => {
    const conversationId = `conv-${crypto.randomUUID().slice(0, 8)}`;
    const port = await freePort();
    const inner = input({ action: "append", conversationId, role: "user", content: "sent while the target was down" });
    const outer = input({ url: `http://127.0.0.1:${port}${routeOf("memory")}`, message: inner });
    const failed = await ask("error-handling", outer);
    expect(failed.status, JSON.stringify(failed.body)).toBe(503);
    expect(failed.body).toMatchObject({ metadata: { status: "error" }, error: { code: "target_unavailable", attempts: 2 } });

    // redforge/dlq/{instance} → bridge → control plane.
    const letter = await vi.waitFor(async () => {
      const items = await letters();
      expect(items).toHaveLength(1);
      return items[0]!;
    }, WAIT);
    expect(letter).toMatchObject({ flowId: outer.metadata.flowId, errorCode: "target_unavailable", attempts: 2, replayState: null, input: outer, redacted: false });

    // Nothing recalled yet; the target comes back; the letter is replayed through the API.
    expect((await ask("memory", input({ action: "recall", conversationId }))).body.payload.turns).toEqual([]);
    const proxy = await proxyOn(port);
    try {
      const replay = await replayLetter(letter.id);
      expect(replay.status, JSON.stringify(replay.body)).toBe(202);
      expect(replay.body).toMatchObject({ id: letter.id, replayState: "pending", replayCount: 1 });
      const settled = await vi.waitFor(async () => {
        const [l] = await letters();
        expect(l!.replayState).toBe("succeeded");
        return l!;
      }, WAIT);
      expect(settled).toMatchObject({ replayResult: { ok: true, status: 200 }, replayedBy: expect.any(String) });
      const recalled = await ask("memory", input({ action: "recall", conversationId }));
      expect(recalled.body.payload.turns.map((t: { content: string }) => t.content)).toEqual(["sent while the target was down"]);
      const again = await replayLetter(letter.id);
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe("already_replayed");
    } finally {
      await proxy.close();
    }
  }, 300_000);

  it("a policy list past its expiry refuses model calls with model_policy_stale; a fresh one lets them through; a withdrawn one refuses", async () => {
    const topic = modelPolicyTopic(instanceId);
    // The bridge published this instance's list, with its expiry.
    const published = await vi.waitFor(async () => {
      const m = await retained(topic);
      expect(m?.expiresAt).toEqual(expect.any(String));
      return m;
    }, WAIT);
    expect(Date.parse(published.expiresAt) - Date.parse(published.fetchedAt)).toBe(600_000);
    const question = () => input({ question: "Which model answers?", context: ["The approved model answers questions."] }, { model: "llama3.2" });
    const policies = [{ name: "approved-llama", models: ["llama3.2"] }];

    const hourAgo = Date.now() - 3_600_000;
    await retain(topic, JSON.stringify({ instanceId, policies, fetchedAt: new Date(hourAgo).toISOString(), expiresAt: new Date(hourAgo + 600_000).toISOString() }));
    const callsBefore = model.calls.length;
    const stale = await vi.waitFor(async () => {
      const r = await ask("response-generation", question());
      expect(r.status, JSON.stringify(r.body)).toBe(503);
      return r;
    }, { timeout: 30_000, interval: 250 });
    expect(stale.body).toMatchObject({ payload: null, error: { code: "model_policy_stale", message: expect.stringContaining("has not refreshed it") } });
    expect(model.calls.slice(callsBefore), "no call left the instance").toEqual([]);

    await retain(topic, JSON.stringify({ instanceId, policies, fetchedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString() }));
    await vi.waitFor(async () => expect((await ask("response-generation", question())).status).toBe(200), { timeout: 30_000, interval: 250 });

    await retain(topic, "");
    const withdrawn = await vi.waitFor(async () => {
      const r = await ask("response-generation", question());
      expect(r.status).toBe(503);
      return r;
    }, { timeout: 30_000, interval: 250 });
    expect(withdrawn.body.error).toMatchObject({ code: "model_policy_stale", message: expect.stringContaining("withdrew") });
  }, 180_000);
});
