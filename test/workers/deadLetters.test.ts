/**
 * Dead letters in the control plane: the bridge's signed batch webhook (a
 * forged batch, a foreign instance and a bad shape store nothing; a letter
 * sent again is stored once) and GET /api/dead-letters with its filters,
 * pages, RBAC and input redaction for roles without ai_prompts:read.
 */
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs, deadLetters } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let operator: TestUser;
let viewer: TestUser;

interface Cluster { id: string; webhookSecret: string }

async function send(cluster: Cluster, letters: unknown[], opts: { secret?: string } = {}) {
  const text = JSON.stringify({ letters });
  const headers = await webhookHeaders(opts.secret ?? cluster.webhookSecret, text);
  return api("POST", `/api/webhooks/clusters/${cluster.id}/dead-letters`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

const hex64 = () => Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");

const letter = (instanceId: string, extra: Record<string, unknown> = {}) => ({
  letterId: hex64(), instanceId, flowId: "wf-42", primitive: "embeddings", nodeRedFlow: "rfembed-tab",
  failedAt: "2026-12-02T10:00:03.100Z",
  error: { code: "model_unavailable", message: "http://127.0.0.1:1/v1/embeddings gave ECONNREFUSED (attempt 3 of 3)", attempts: 3 },
  input: { payload: "the customer's question", metadata: { flowId: "wf-42" } },
  ...extra,
});

async function setup() {
  const cluster = await createCluster(admin.token);
  const instance = await createInstance(admin.token, cluster.id);
  return { cluster, instanceId: instance.id as string };
}

const storedFor = (instanceId: string) => withDb((db) => db.select().from(deadLetters).where(eq(deadLetters.instanceId, instanceId)));

beforeAll(async () => {
  [admin, operator, viewer] = await Promise.all([createUser("admin"), createUser("operator"), createUser("viewer")]);
});

describe("dead-letter webhook", () => {
  it("stores a signed batch once: the same letter sent again is a duplicate", async () => {
    const { cluster, instanceId } = await setup();
    const first = letter(instanceId);
    const res = await send(cluster, [first, letter(instanceId, { error: { code: "model_rejected", message: "HTTP 400" } })]);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toEqual({ accepted: true, stored: 2, duplicates: 0 });
    const again = await send(cluster, [first]);
    expect(again.body).toEqual({ accepted: true, stored: 0, duplicates: 1 });
    const rows = await storedFor(instanceId);
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.letterId === first.letterId)).toMatchObject({
      clusterId: cluster.id, flowId: "wf-42", primitive: "embeddings", errorCode: "model_unavailable", attempts: 3,
      input: first.input, failedAt: new Date(first.failedAt),
    });
  });

  it("a forged batch is 401, a foreign instance 403, a bad shape 400: nothing stored", async () => {
    const { cluster, instanceId } = await setup();
    const other = await setup();
    const forged = await send(cluster, [letter(instanceId)], { secret: other.cluster.webhookSecret });
    expect(forged.status).toBe(401);
    expectErrorShape(forged.body, "invalid_signature");
    const foreign = await send(cluster, [letter(instanceId), letter(other.instanceId)]);
    expect(foreign.status).toBe(403);
    expectErrorShape(foreign.body, "instance_not_in_cluster");
    expect(foreign.body.error.details).toEqual({ instanceIds: [other.instanceId] });
    const bad = await send(cluster, [letter(instanceId, { error: { message: "no code" } })]);
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "validation_failed");
    expect(await storedFor(instanceId)).toHaveLength(0);
  });
});

describe("GET /api/dead-letters", () => {
  it("filters by instance, error code, primitive and time, newest first, in pages", async () => {
    const { cluster, instanceId } = await setup();
    await send(cluster, [
      letter(instanceId, { failedAt: "2026-12-01T10:00:00Z" }),
      letter(instanceId, { failedAt: "2026-12-02T10:00:00Z", primitive: "response-generation" }),
      letter(instanceId, { failedAt: "2026-12-03T10:00:00Z", error: { code: "model_rejected", message: "HTTP 400", attempts: 1 } }),
    ]);
    const all = await api("GET", `/api/dead-letters?instanceId=${instanceId}`, { token: operator.token });
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect(all.body.items.map((l: any) => l.failedAt)).toEqual(["2026-12-03T10:00:00.000Z", "2026-12-02T10:00:00.000Z", "2026-12-01T10:00:00.000Z"]);
    expect(all.body.items[0]).not.toHaveProperty("letterId");

    const rejected = await api("GET", `/api/dead-letters?instanceId=${instanceId}&errorCode=model_rejected`, { token: operator.token });
    expect(rejected.body.items.map((l: any) => l.errorCode)).toEqual(["model_rejected"]);
    const byPrimitive = await api("GET", `/api/dead-letters?instanceId=${instanceId}&primitive=response-generation`, { token: operator.token });
    expect(byPrimitive.body.items).toHaveLength(1);
    const window = await api("GET", `/api/dead-letters?instanceId=${instanceId}&from=2026-12-01T12:00:00Z&to=2026-12-02T12:00:00Z`, { token: operator.token });
    expect(window.body.items.map((l: any) => l.failedAt)).toEqual(["2026-12-02T10:00:00.000Z"]);

    const page1 = await api("GET", `/api/dead-letters?instanceId=${instanceId}&limit=2`, { token: operator.token });
    expect(page1.body.items).toHaveLength(2);
    const page2 = await api("GET", `/api/dead-letters?instanceId=${instanceId}&limit=2&cursor=${page1.body.nextCursor}`, { token: operator.token });
    expect(page2.body.items).toHaveLength(1);
    expect(page2.body.nextCursor).toBeNull();
  });

  it("inputs only for ai_prompts:read (that read is audited); a viewer sees them redacted", async () => {
    const { cluster, instanceId } = await setup();
    await send(cluster, [letter(instanceId)]);
    const asOperator = await api("GET", `/api/dead-letters?instanceId=${instanceId}`, { token: operator.token });
    expect(asOperator.body.items[0]).toMatchObject({ redacted: false, input: { payload: "the customer's question" } });
    const audited = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.action, "DEAD_LETTER_INPUTS_READ")));
    expect(audited.some((a) => a.userId === operator.id)).toBe(true);
    const asViewer = await api("GET", `/api/dead-letters?instanceId=${instanceId}`, { token: viewer.token });
    expect(asViewer.status).toBe(200);
    expect(asViewer.body.items[0]).toMatchObject({ redacted: true, input: null, errorCode: "model_unavailable" });
  });

  it("bad filters are 400; no credentials 401; a role without dead_letters:read 403", async () => {
    const bad = await api("GET", "/api/dead-letters?instanceId=not-a-uuid", { token: operator.token });
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "validation_failed");
    const unknown = await api("GET", "/api/dead-letters?color=blue", { token: operator.token });
    expect(unknown.status).toBe(400);
    expect((await api("GET", "/api/dead-letters")).status).toBe(401);
    const role = await api("POST", "/api/roles", { token: admin.token, body: { name: `metrics-only-${crypto.randomUUID().slice(0, 6)}`, permissions: [{ resource: "metrics", action: "read" }] } });
    expect(role.status, JSON.stringify(role.body)).toBe(201);
    const limited = await createUser(role.body.name);
    const refused = await api("GET", "/api/dead-letters", { token: limited.token });
    expect(refused.status).toBe(403);
    expectErrorShape(refused.body, "forbidden");
  });
});
