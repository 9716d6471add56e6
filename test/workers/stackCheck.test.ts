/**
 * A creation's stack check reads the cluster's reported stacks from an isolate cache when they
 * say "supported" (core/fleet/stacks.ts): one ClusterLink call less per creation. What must not
 * change: a stack the cached report does not list is asked afresh, so a bridge that now runs it is
 * not refused from a stale answer, and a stack it does not run is still 422.
 */
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createUser, unique, type TestUser } from "./helpers.ts";

let admin: TestUser;
beforeAll(async () => {
  admin = await createUser("admin");
});

async function helloFrom(cluster: { id: string; webhookSecret: string }, stacks: string[]) {
  const body = JSON.stringify({ bridgeVersion: "test" });
  const headers = await webhookHeaders(cluster.webhookSecret, body);
  const token = (await api("POST", `/api/clusters/${cluster.id}/token`, { raw: body, headers: { ...headers, "Content-Type": "application/json" } })).body.token;
  const res = await SELF.fetch(`http://redforge.test/api/clusters/${cluster.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  ws.accept();
  ws.send(JSON.stringify({ kind: "hello", bridgeVersion: "test", driver: "process", stacks: stacks.map((id) => ({ id, nodeRed: `${id}.0` })) }));
  // Straight from the ClusterLink: GET /api/stacks would refresh the isolate's cached report itself.
  const link = env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(cluster.id));
  await vi.waitFor(async () => expect((await link.hello())?.stacks?.map((s) => s.id)).toEqual(stacks), { timeout: 10_000, interval: 50 });
  return ws;
}

const create = (clusterId: string, stack: string) =>
  api("POST", "/api/instances", { token: admin.token, body: { name: unique("sc"), clusterId, stack } });

describe("stack check with the isolate's cached report", () => {
  it("a stack missing from the cached report is asked afresh: refused while the bridge lacks it, accepted once it runs it", async () => {
    const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("sc") } })).body;
    const first = await helloFrom(cluster, ["5.0"]);
    // Fills the cache with the report [5.0]; the next 5.0 creation may be answered from it.
    expect((await create(cluster.id, "5.0")).status).toBe(201);
    expect((await create(cluster.id, "5.0")).status).toBe(201);
    const refused = await create(cluster.id, "4.1");
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: "stack_unsupported", details: { stack: "4.1", supported: ["5.0"] } });
    first.close();
    // The bridge comes back running 4.1 too: within the cache's lifetime, 4.1 is not refused from the old report.
    const second = await helloFrom(cluster, ["5.0", "4.1"]);
    const accepted = await create(cluster.id, "4.1");
    expect(accepted.status).toBe(201);
    expect(accepted.body.stack).toBe("4.1");
    second.close();
  });
});
