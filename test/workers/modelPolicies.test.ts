/**
 * The bridge's approved-model endpoint: signed by the cluster's secret (a
 * forged request is 401), it lists every live instance of that cluster with
 * exactly the enabled approved_models policies covering it.
 */
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { instances } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;

async function ask(cluster: { id: string; webhookSecret: string }, secret = cluster.webhookSecret) {
  const text = "{}";
  const headers = await webhookHeaders(secret, text);
  return api("POST", `/api/webhooks/clusters/${cluster.id}/model-policies`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

beforeAll(async () => {
  admin = await createUser("admin");
});

describe("POST /api/webhooks/clusters/:id/model-policies", () => {
  it("gives each instance of the cluster the policies whose selector covers it", async () => {
    const team = unique("team");
    const cluster = await createCluster(admin.token);
    const covered = await createInstance(admin.token, cluster.id);
    const other = await createInstance(admin.token, cluster.id);
    await withDb((db) => db.update(instances).set({ team }).where(eq(instances.id, covered.id)));
    const scoped = await api("POST", "/api/policies", { token: admin.token, body: { name: unique("llama-only"), kind: "approved_models", rule: { models: ["llama3.2"], providers: ["ollama"], selector: { team } } } });
    expect(scoped.status, JSON.stringify(scoped.body)).toBe(201);
    const disabled = await api("POST", "/api/policies", { token: admin.token, body: { name: unique("off"), kind: "approved_models", enabled: false, rule: { models: ["nothing"], selector: { team } } } });
    expect(disabled.status).toBe(201);

    const res = await ask(cluster);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.ttlSeconds).toBeGreaterThan(0);
    expect(res.body.instances[covered.id]).toContainEqual({ name: scoped.body.name, models: ["llama3.2"], providers: ["ollama"] });
    expect(res.body.instances[covered.id].map((p: any) => p.name)).not.toContain(disabled.body.name);
    expect(res.body.instances[other.id].map((p: any) => p.name)).not.toContain(scoped.body.name);
  });

  it("a request not signed by the cluster's secret is 401", async () => {
    const cluster = await createCluster(admin.token);
    const other = await createCluster(admin.token);
    const res = await ask(cluster, other.webhookSecret);
    expect(res.status).toBe(401);
    expectErrorShape(res.body, "invalid_signature");
  });
});
