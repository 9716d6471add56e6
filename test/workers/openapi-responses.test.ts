/**
 * The document tells the truth about answers: real responses of the routes,
 * driven through a resource's life, validate against the schema the document
 * gives for that operation and status (response objects are closed, so an
 * undocumented field fails too), errors included.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createUser, unique, type ApiResponse, type TestUser } from "./helpers.ts";

let doc: any;
let admin: TestUser;
const checked = new Set<string>();

const local = (schema: unknown) => JSON.parse(JSON.stringify(schema).replaceAll("#/components/schemas/", "#/$defs/"));

/** The operation a concrete path answers to: `/api/instances/1f…` → `/api/instances/{id}`. */
function template(path: string, method: string): string {
  const bare = path.split("?")[0]!;
  const hit = Object.keys(doc.paths).find((t) => doc.paths[t][method] && new RegExp(`^${t.replace(/\{\w+\}/g, "[^/]+")}$`).test(bare));
  if (!hit) throw new Error(`no documented operation for ${method.toUpperCase()} ${bare}`);
  return hit;
}

function documentedSchema(t: string, method: string, status: number, where: string) {
  const responses = doc.paths[t][method].responses;
  let response = responses[String(status)] ?? responses[`${String(status)[0]}XX`];
  expect(response, `not documented: ${where}`).toBeDefined();
  if (response.$ref) response = doc.components.responses[response.$ref.split("/").pop()];
  return response.content?.["application/json"]?.schema;
}

/** Calls the API and validates the answer against the document's schema for its operation and status. */
async function call(method: string, path: string, opts: Parameters<typeof api>[2] = {}): Promise<ApiResponse> {
  const res = await api(method, path, { token: admin.token, ...opts });
  const t = template(path, method.toLowerCase());
  const where = `${method} ${t} → ${res.status}`;
  const schema = documentedSchema(t, method.toLowerCase(), res.status, `${where}: ${JSON.stringify(res.body).slice(0, 300)}`);
  if (res.status === 204) expect(schema, where).toBeUndefined();
  else {
    expect(schema, `${where} has no JSON schema`).toBeDefined();
    const result = z.fromJSONSchema({ ...local(schema), $defs: local(doc.components.schemas) }).safeParse(res.body);
    expect(result.error?.issues ?? [], `${where}: ${JSON.stringify(res.body).slice(0, 400)}`).toEqual([]);
  }
  checked.add(`${method} ${t} ${res.status}`);
  return res;
}

beforeAll(async () => {
  admin = await createUser("admin");
  doc = (await api("GET", "/api/openapi.json")).body;
});

describe("responses match the document", () => {
  it("auth, health and the document itself", async () => {
    await call("GET", "/api/health", { token: undefined });
    await call("POST", "/api/auth/login", { token: undefined, body: { username: "admin", password: env.REDFORGE_ADMIN_PASSWORD } });
    await call("POST", "/api/auth/login", { token: undefined, body: { username: unique("nobody"), password: "wrong password" } });
    await call("GET", "/api/auth/me");
    await call("GET", "/api/auth/me", { token: "not-a-token" });
    await call("GET", "/api/openapi.json");
  });

  it("clusters, instances, metrics and deployments through their life", async () => {
    const cluster = (await call("POST", "/api/clusters", { body: { name: unique("oa"), labels: { site: "a" } } })).body;
    await call("GET", `/api/clusters/${cluster.id}`);
    await call("GET", "/api/clusters?limit=2");
    await call("POST", `/api/clusters/${cluster.id}/rotate-secret`);
    const inst = (await call("POST", "/api/instances", {
      body: { name: unique("oa"), clusterId: cluster.id, flows: [{ id: "t1", type: "tab" }], env: { A: "1" }, secrets: { KEY: "v" }, resources: { cpu: "100m" } },
    })).body;
    await call("GET", `/api/instances/${inst.id}`);
    await call("GET", `/api/instances?clusterId=${cluster.id}`);
    await call("PATCH", `/api/instances/${inst.id}`, { body: { env: { A: "2" } } });
    await call("PATCH", `/api/instances/${inst.id}`, { body: { nope: 1 } });
    await call("POST", `/api/instances/${inst.id}/scale`, { body: { replicas: 1 } });
    await call("POST", `/api/instances/${inst.id}/stop`);
    await call("POST", `/api/instances/${inst.id}/start`);
    await call("GET", `/api/metrics/instances/${inst.id}`);
    await call("GET", "/api/metrics/fleet");
    await call("GET", `/api/deployments?instanceId=${inst.id}`);
    await call("GET", `/api/deployments/versions?instanceId=${inst.id}`);
    await call("POST", "/api/deployments", { body: { instanceId: inst.id, flows: [{ id: "t1", type: "tab" }] } });
    await call("GET", `/api/deployments/${crypto.randomUUID()}`);
    await call("POST", "/api/policies/evaluate", { body: { action: "scale", instanceId: inst.id, replicas: 1 } });
    await call("POST", "/api/policies/evaluate", { body: { action: "deploy", instanceId: inst.id } });
    await call("DELETE", `/api/clusters/${cluster.id}`);
    await call("DELETE", `/api/instances/${inst.id}`);
    await call("GET", `/api/instances/${inst.id}`);
  });

  it("users, roles and API keys", async () => {
    const user = (await call("POST", "/api/users", { body: { username: unique("oa"), email: `${unique("oa")}@example.test`, password: "a long enough password", role: "viewer" } })).body;
    await call("GET", `/api/users/${user.id}`);
    await call("GET", "/api/users?limit=2");
    await call("PATCH", `/api/users/${user.id}`, { body: { disabled: true } });
    await call("DELETE", `/api/users/${user.id}`);
    await call("GET", "/api/roles");
    const role = (await call("POST", "/api/roles", { body: { name: unique("oa"), permissions: [{ resource: "instances", action: "read" }] } })).body;
    await call("PATCH", `/api/roles/${role.name}`, { body: { permissions: [{ resource: "metrics", action: "read" }] } });
    await call("DELETE", `/api/roles/viewer`);
    await call("DELETE", `/api/roles/${role.name}`);
    const login = await call("POST", "/api/auth/login", { token: undefined, body: { username: "admin", password: env.REDFORGE_ADMIN_PASSWORD } });
    const key = (await call("POST", "/api/api-keys", { token: login.body.token, body: { name: "oa", scopes: [{ resource: "instances", action: "read" }] } })).body;
    await call("GET", "/api/api-keys", { token: login.body.token });
    await call("GET", "/api/auth/me", { token: key.key });
    await call("POST", "/api/clusters", { token: key.key, body: { name: unique("oa") } });
    await call("DELETE", `/api/api-keys/${key.id}`, { token: login.body.token });
  });

  it("governance: policies, quotas, AI, audit, config, reports", async () => {
    const team = unique("oa-team");
    const policy = (await call("POST", "/api/policies", { body: { name: unique("oa"), kind: "max_replicas", rule: { max: 3, selector: { team } }, enabled: false } })).body;
    await call("GET", "/api/policies");
    await call("GET", `/api/policies/${policy.id}`);
    await call("PATCH", `/api/policies/${policy.id}`, { body: { rule: { max: 2, selector: { team } } } });
    await call("POST", "/api/policies/evaluate", { body: { action: "model_call", model: "gpt-4o-mini" } });
    await call("DELETE", `/api/policies/${policy.id}`);
    await call("PUT", `/api/quotas/${team}`, { body: { maxInstances: 5 } });
    await call("PUT", `/api/quotas/${team}`, { body: { maxInstances: 6 } });
    await call("GET", `/api/quotas/${team}`);
    await call("GET", `/api/quotas/${team}/usage`);
    await call("GET", "/api/quotas");
    await call("DELETE", `/api/quotas/${team}`);
    const price = (await call("PUT", "/api/ai/prices", { body: { provider: unique("oa"), model: "m", inputUsdPerMtok: 1, outputUsdPerMtok: 2 } })).body;
    await call("GET", "/api/ai/prices");
    await call("DELETE", `/api/ai/prices/${price.id}`);
    await call("GET", "/api/ai/decisions?limit=2");
    await call("GET", "/api/ai/decisions/totals?groupBy=model");
    await call("GET", "/api/audit?limit=3");
    await call("GET", "/api/audit/verify");
    await call("GET", "/api/config");
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const report = (await call("POST", "/api/reports", { body: { kind: "access", from, to: new Date().toISOString() } })).body;
    await call("GET", `/api/reports/${report.id}`);
    await call("GET", "/api/reports?limit=2");
  });

  it("the bridge's side: cluster token and signed reports", async () => {
    const cluster = (await call("POST", "/api/clusters", { body: { name: unique("oa") } })).body;
    const inst = (await call("POST", "/api/instances", { body: { name: unique("oa"), clusterId: cluster.id } })).body;
    const signed = async (path: string, body: unknown) => {
      const text = JSON.stringify(body);
      return call("POST", path, { token: undefined, raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    };
    await signed(`/api/clusters/${cluster.id}/token`, { bridgeVersion: "test" });
    await signed(`/api/webhooks/clusters/${cluster.id}`, { type: "instance.status", instanceId: inst.id, state: "running", endpoints: { admin: "http://127.0.0.1:1" } });
    await signed(`/api/webhooks/clusters/${cluster.id}`, {
      type: "health.report",
      instances: [{ instanceId: inst.id, state: "running", live: true, ready: true, missingNodeTypes: [], checkedAt: new Date().toISOString() }],
    });
    await signed(`/api/webhooks/clusters/${cluster.id}`, { type: "command.result", commandId: "cmd-unknown", status: "ok" });
    await signed(`/api/webhooks/clusters/${cluster.id}`, { type: "cluster.warnings", warnings: [{ code: "broker_queue_limit", message: "kept only 100 of 1200", detectedAt: new Date().toISOString() }] });
    // The warning as GET /api/clusters/:id answers it, against its documented shape.
    await call("GET", `/api/clusters/${cluster.id}`);
    const batch = { batchId: unique("batch"), records: [{ instanceId: inst.id, provider: "openai", model: "gpt-4o-mini", inputTokens: 3, outputTokens: 4 }] };
    await signed(`/api/webhooks/clusters/${cluster.id}/ai-decisions`, batch);
    await signed(`/api/webhooks/clusters/${cluster.id}/ai-decisions`, batch);
    await call("POST", `/api/webhooks/clusters/${cluster.id}`, { token: undefined, body: { type: "health.report", instances: [] } });
  });

  it("covered a broad set of operations, with a check that does refuse a wrong answer", () => {
    expect(checked.size).toBeGreaterThan(60);
    const cluster = z.fromJSONSchema({ ...local(documentedSchema("/api/clusters/{id}", "get", 200, "cluster")), $defs: local(doc.components.schemas) });
    const body = { id: crypto.randomUUID(), name: "a", driver: "process", labels: {}, status: "registered", lastSeenAt: null, warnings: [], createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), instanceCount: 0, connected: false, bridgeVersion: null, connectedAt: null };
    expect(cluster.safeParse(body).success).toBe(true);
    expect(cluster.safeParse({ ...body, undocumented: 1 }).success).toBe(false);
    expect(cluster.safeParse({ ...body, instanceCount: "0" }).success).toBe(false);
    expect(cluster.safeParse({ ...body, warnings: [{ code: "broker_queue_limit", message: "m", detectedAt: new Date().toISOString() }] }).success).toBe(true);
    expect(cluster.safeParse({ ...body, warnings: [{ code: "not_a_code", message: "m", detectedAt: new Date().toISOString() }] }).success).toBe(false);
    const error = z.fromJSONSchema({ ...local(documentedSchema("/api/clusters/{id}", "get", 404, "404")), $defs: local(doc.components.schemas) });
    expect(error.safeParse({ error: { code: "cluster_not_found", message: "m" } }).success).toBe(true);
    expect(error.safeParse({ message: "m" }).success).toBe(false);
  });
});
