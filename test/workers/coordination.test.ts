/**
 * Coordination sessions in the control plane: the coordinator's AI decision
 * records (metadata.coordination) arriving in the ai-decisions webhook build
 * the session, its answers and its audit trail; GET /api/coordination/sessions
 * (+ /:id) shows them live and decided, texts only with ai_prompts:read.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, type TestUser } from "./helpers.ts";

let admin: TestUser;
let viewer: TestUser;

interface Cluster { id: string; webhookSecret: string }

async function send(cluster: Cluster, records: unknown[], batchId: string = crypto.randomUUID()) {
  const text = JSON.stringify({ batchId, records });
  const headers = await webhookHeaders(cluster.webhookSecret, text);
  return api("POST", `/api/webhooks/clusters/${cluster.id}/ai-decisions`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

const startedAt = "2026-12-02T10:00:00.000Z";
const summary = (sessionId: string) => ({ sessionId, pattern: "voting", rule: "majority", startedAt, participants: ["p1", "p2", "p3"], quorum: 2 });

const vote = (instanceId: string, sessionId: string, participant: string, answer: string) => ({
  instanceId, provider: "ollama", model: `model-${participant}`, operationName: "coordination.vote", flowName: "coordination", flowId: sessionId,
  prompt: "What colour?", response: answer, latencyMs: 120, timestamp: "2026-12-02T10:00:01.000Z",
  metadata: { coordination: { ...summary(sessionId), kind: "answer", participant, role: "voter", round: 1, requestId: `req-${participant}`, status: "success", inputTokens: 40, outputTokens: 6, modelLatencyMs: 90, error: null } },
});

const decision = (instanceId: string, sessionId: string) => ({
  instanceId, provider: "redforge", model: "coordination:majority", operationName: "coordination.decision", flowName: "coordination", flowId: sessionId,
  prompt: "What colour?", response: "green", confidence: 2 / 3, latencyMs: 900, timestamp: "2026-12-02T10:00:02.000Z",
  metadata: { coordination: { ...summary(sessionId), kind: "decision", status: "decided", decidedAt: "2026-12-02T10:00:02.000Z", outcome: { answer: "green", winner: "p1", reason: "2 of 3 votes gave this answer", tally: [{ answer: "green", count: 2 }, { answer: "red", count: 1 }], missing: [] } } },
});

beforeAll(async () => {
  [admin, viewer] = await Promise.all([createUser("admin"), createUser("viewer")]);
});

describe("coordination sessions", () => {
  it("are live from their first answer, decided with the decision, and audited answer by answer", async () => {
    const cluster = await createCluster(admin.token);
    const { id: instanceId } = await createInstance(admin.token, cluster.id);
    const sessionId = crypto.randomUUID();
    expect((await send(cluster, [vote(instanceId, sessionId, "p1", "green"), vote(instanceId, sessionId, "p2", "green")])).status).toBe(202);

    const live = await api("GET", `/api/coordination/sessions?instanceId=${instanceId}&state=live`, { token: admin.token });
    expect(live.status).toBe(200);
    expect(live.body.items).toEqual([expect.objectContaining({ id: sessionId, status: "collecting", live: true, question: "What colour?", settings: { participants: ["p1", "p2", "p3"], quorum: 2 } })]);
    expect(live.body.items[0].answers).toEqual([
      expect.objectContaining({ instanceId: "p1", role: "voter", answer: "green", model: "model-p1", inputTokens: 40, outputTokens: 6, latencyMs: 120, modelLatencyMs: 90 }),
      expect.objectContaining({ instanceId: "p2" }),
    ]);

    const batchId = crypto.randomUUID();
    expect((await send(cluster, [vote(instanceId, sessionId, "p3", "red"), decision(instanceId, sessionId)], batchId)).status).toBe(202);
    // The bridge retrying the same batch: stored once, answers not doubled.
    expect((await send(cluster, [vote(instanceId, sessionId, "p3", "red"), decision(instanceId, sessionId)], batchId)).body).toMatchObject({ duplicate: true });
    // An answer arriving after the decision is kept but does not reopen the session.
    expect((await send(cluster, [vote(instanceId, sessionId, "p9", "late")])).status).toBe(202);

    const one = await api("GET", `/api/coordination/sessions/${sessionId}`, { token: admin.token });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ status: "decided", live: false, answer: "green", redacted: false, outcome: { winner: "p1" }, decidedAt: "2026-12-02T10:00:02.000Z" });
    expect(one.body.answers.map((a: any) => a.instanceId)).toEqual(["p1", "p2", "p3", "p9"]);
    expect((await api("GET", `/api/coordination/sessions?instanceId=${instanceId}&state=past`, { token: admin.token })).body.items.map((s: any) => s.id)).toEqual([sessionId]);

    const audit = await api("GET", `/api/audit?resourceType=coordination_session&resourceId=${sessionId}&limit=100`, { token: admin.token });
    const actions = audit.body.items.map((e: any) => e.action).filter((a: string) => a.startsWith("COORDINATION_")).sort();
    expect(actions).toEqual(["COORDINATION_ANSWER", "COORDINATION_ANSWER", "COORDINATION_ANSWER", "COORDINATION_ANSWER", "COORDINATION_DECISION"]);
    expect(JSON.stringify(audit.body.items)).not.toContain("\"green\"");
  });

  it("hide question, answers and the tally's texts from a role without ai_prompts:read", async () => {
    const cluster = await createCluster(admin.token);
    const { id: instanceId } = await createInstance(admin.token, cluster.id);
    const sessionId = crypto.randomUUID();
    await send(cluster, [vote(instanceId, sessionId, "p1", "green"), decision(instanceId, sessionId)]);
    const res = await api("GET", `/api/coordination/sessions/${sessionId}`, { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ question: null, answer: null, redacted: true, answers: [expect.objectContaining({ answer: null, model: "model-p1", inputTokens: 40 })] });
    expect(res.body.outcome).toMatchObject({ winner: "p1", tally: [{ answer: null, count: 2 }, { answer: null, count: 1 }] });
    expect(res.body.outcome.answer).toBeUndefined();
  });

  it("an instance cannot write into another instance's session", async () => {
    const cluster = await createCluster(admin.token);
    const [{ id: owner }, { id: intruder }] = [await createInstance(admin.token, cluster.id), await createInstance(admin.token, cluster.id)];
    const sessionId = crypto.randomUUID();
    await send(cluster, [vote(owner, sessionId, "p1", "green")]);
    await send(cluster, [vote(intruder, sessionId, "p2", "forged"), decision(intruder, sessionId)]);
    const res = await api("GET", `/api/coordination/sessions/${sessionId}`, { token: admin.token });
    expect(res.body).toMatchObject({ instanceId: owner, status: "collecting" });
    expect(res.body.answers.map((a: any) => a.instanceId)).toEqual(["p1"]);
  });

  it("answer 404 for an unknown session, 400 for a bad id or filter, 401 without a token", async () => {
    const missing = await api("GET", `/api/coordination/sessions/${crypto.randomUUID()}`, { token: admin.token });
    expect(missing.status).toBe(404);
    expectErrorShape(missing.body, "coordination_session_not_found");
    expect((await api("GET", "/api/coordination/sessions/not-a-uuid", { token: admin.token })).status).toBe(400);
    expect((await api("GET", "/api/coordination/sessions?state=maybe", { token: admin.token })).status).toBe(400);
    expect((await api("GET", "/api/coordination/sessions?cursor=bogus", { token: admin.token })).status).toBe(400);
    expect((await api("GET", "/api/coordination/sessions")).status).toBe(401);
  });
});
