import { and, eq, inArray, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs, deployments, flowVersions } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let operator: TestUser;
let clusterId: string;

beforeAll(async () => {
  admin = await createUser("admin");
  operator = await createUser("operator");
  clusterId = (await createCluster(admin.token)).id;
});

const flows = [{ id: "tab1", type: "tab", label: "Agent" }, { id: "n1", type: "inject", z: "tab1" }];

describe("instances", () => {
  it("create returns 201 with pending status and desired running, and stores flow version 1", async () => {
    const name = unique("agent");
    const res = await api("POST", "/api/instances", {
      token: admin.token,
      body: { name, clusterId, flows, resources: { cpu: "500m", memory: "512Mi" }, env: { MODEL: "llama3.2" } },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name, clusterId, status: "pending", desiredState: "running", resources: { cpu: "500m", memory: "512Mi" }, env: { MODEL: "llama3.2" } });
    expect(res.body.flows).toHaveLength(2);
    const versions = await withDb((db) => db.select().from(flowVersions).where(eq(flowVersions.instanceId, res.body.id)));
    expect(versions.map((v) => v.version)).toEqual([1]);
  });

  it("a duplicate name is 409 instance_name_taken; a destroyed instance frees its name", async () => {
    const first = await createInstance(admin.token, clusterId);
    const dup = await api("POST", "/api/instances", { token: admin.token, body: { name: first.name, clusterId } });
    expect(dup.status).toBe(409);
    expectErrorShape(dup.body, "instance_name_taken");
    expect((await api("DELETE", `/api/instances/${first.id}`, { token: admin.token })).status).toBe(202);
    const again = await api("POST", "/api/instances", { token: admin.token, body: { name: first.name, clusterId } });
    expect(again.status).toBe(201);
  });

  it("an unknown cluster is 400 cluster_not_found", async () => {
    const res = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("x"), clusterId: crypto.randomUUID() } });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "cluster_not_found");
  });

  it("names must be DNS labels", async () => {
    const res = await api("POST", "/api/instances", { token: admin.token, body: { name: "Not_Valid!", clusterId } });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe("name");
  });

  it("patch updates resources and env, adds a flow version, and rejects an empty or unknown update", async () => {
    const inst = await createInstance(admin.token, clusterId);
    const res = await api("PATCH", `/api/instances/${inst.id}`, { token: operator.token, body: { resources: { memory: "1Gi" }, flows } });
    expect(res.status).toBe(200);
    expect(res.body.resources).toEqual({ memory: "1Gi" });
    const versions = await withDb((db) => db.select().from(flowVersions).where(eq(flowVersions.instanceId, inst.id)));
    expect(versions.map((v) => v.version).sort()).toEqual([1, 2]);
    expect((await api("PATCH", `/api/instances/${inst.id}`, { token: admin.token, body: {} })).status).toBe(400);
    const rename = await api("PATCH", `/api/instances/${inst.id}`, { token: admin.token, body: { name: "renamed" } });
    expect(rename.status).toBe(400);
    expect(rename.body.error.message).toContain("name");
  });

  it("stop and start record the desired state and answer 202", async () => {
    const inst = await createInstance(admin.token, clusterId);
    const stop = await api("POST", `/api/instances/${inst.id}/stop`, { token: operator.token });
    expect(stop.status).toBe(202);
    expect(stop.body).toMatchObject({ id: inst.id, desiredState: "stopped" });
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).body.desiredState).toBe("stopped");
    const start = await api("POST", `/api/instances/${inst.id}/start`, { token: operator.token });
    expect(start.body.desiredState).toBe("running");
  });

  it("delete answers 202 destroyed; the instance is then gone from get and list", async () => {
    const inst = await createInstance(admin.token, clusterId);
    const del = await api("DELETE", `/api/instances/${inst.id}`, { token: admin.token });
    expect(del.status).toBe(202);
    expect(del.body.desiredState).toBe("destroyed");
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).status).toBe(404);
    const list = await api("GET", `/api/instances?clusterId=${clusterId}&limit=200`, { token: admin.token });
    expect(list.body.items.map((i: any) => i.id)).not.toContain(inst.id);
    expect((await api("DELETE", `/api/instances/${inst.id}`, { token: admin.token })).status).toBe(404);
  });

  it("list pages through every instance exactly once with a cursor, and filters", async () => {
    const own = (await createCluster(admin.token)).id;
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await createInstance(admin.token, own));
    await api("POST", `/api/instances/${created[0]!.id}/stop`, { token: admin.token });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: any = await api("GET", `/api/instances?clusterId=${own}&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: admin.token });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((i: any) => i.id));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect([...seen].sort()).toEqual(created.map((c) => c.id).sort());
    const stopped = await api("GET", `/api/instances?clusterId=${own}&desiredState=stopped`, { token: admin.token });
    expect(stopped.body.items.map((i: any) => i.id)).toEqual([created[0]!.id]);
    const byName = await api("GET", `/api/instances?q=${created[3]!.name}`, { token: admin.token });
    expect(byName.body.items.map((i: any) => i.id)).toEqual([created[3]!.id]);
  });

  it("every change writes an audit row with user, action, ip and user agent; env values never appear", async () => {
    const name = unique("audited");
    const res = await api("POST", "/api/instances", {
      token: admin.token, body: { name, clusterId, env: { API_KEY: "sk-very-secret" } },
      headers: { "User-Agent": "rbac-test/1.0" }, clientAddress: "203.0.113.9",
    });
    const id = res.body.id;
    await api("POST", `/api/instances/${id}/stop`, { token: admin.token });
    await api("DELETE", `/api/instances/${id}`, { token: admin.token });
    const rows = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.resourceId, id), inArray(auditLogs.action, ["INSTANCE_CREATED", "INSTANCE_STOP_REQUESTED", "INSTANCE_DESTROY_REQUESTED"]))));
    expect(rows.map((r) => r.action).sort()).toEqual(["INSTANCE_CREATED", "INSTANCE_DESTROY_REQUESTED", "INSTANCE_STOP_REQUESTED"]);
    const created = rows.find((r) => r.action === "INSTANCE_CREATED")!;
    expect(created.userId).toBe(admin.id);
    expect(created.userAgent).toBe("rbac-test/1.0");
    expect(created.ipAddress).toBe("203.0.113.9");
    expect(JSON.stringify(created.details)).not.toContain("sk-very-secret");
    expect((created.details as any).envKeys).toEqual(["API_KEY"]);
  });

  it("a row written for an IPv6 client in any notation still verifies", async () => {
    const { auditRowHash } = await import("../../db/auditChain.ts");
    const name = unique("v6");
    const res = await api("POST", "/api/instances", { token: admin.token, body: { name, clusterId }, clientAddress: "2001:DB8:0:0::1" });
    const [row] = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.resourceId, res.body.id), eq(auditLogs.action, "INSTANCE_CREATED"))));
    expect(row!.ipAddress).toBe("2001:db8::1");
    const recomputed = await auditRowHash(row!.prevHash, row!.timestamp, {
      userId: row!.userId, action: row!.action, resourceType: row!.resourceType, resourceId: row!.resourceId,
      details: row!.details, ipAddress: row!.ipAddress, userAgent: row!.userAgent, statusCode: row!.statusCode,
    });
    expect(recomputed).toBe(row!.hash);
  });

  it("secrets are write-only: names visible, values never in responses or audit, but delivered to the bridge", async () => {
    const { env: workerEnv, runInDurableObject } = await import("cloudflare:test");
    const viewer = await createUser("viewer");
    const value = `sk-live-${crypto.randomUUID()}`;
    const res = await api("POST", "/api/instances", {
      token: admin.token, body: { name: unique("sec"), clusterId, env: { MODEL: "m" }, secrets: { OPENAI_API_KEY: value, DB_PASSWORD: "pw-123456" } },
    });
    expect(res.status).toBe(201);
    expect(res.body.secretNames).toEqual(["DB_PASSWORD", "OPENAI_API_KEY"]);
    const seen = [
      JSON.stringify(res.body),
      JSON.stringify((await api("GET", `/api/instances/${res.body.id}`, { token: viewer.token })).body),
      JSON.stringify((await api("GET", `/api/instances/${res.body.id}`, { token: admin.token })).body),
      JSON.stringify((await api("GET", `/api/instances?limit=200`, { token: admin.token })).body),
      JSON.stringify(await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, res.body.id)))),
    ];
    for (const text of seen) expect(text).not.toContain(value);
    const stored = await withDb((db) => db.execute(sql`select secrets_sealed from instances where id = ${res.body.id}`));
    expect(JSON.stringify(stored.rows)).not.toContain(value);

    // The bridge gets the value, inside the instance.create command only.
    const link = workerEnv.CLUSTER_LINK.get(workerEnv.CLUSTER_LINK.idFromName(clusterId));
    const args = await runInDurableObject(link, (_o, state) =>
      state.storage.sql.exec<{ args: string }>("SELECT args FROM outbox WHERE id = ?", res.body.commandId).one().args);
    expect(JSON.parse(args).spec.env).toMatchObject({ MODEL: "m", OPENAI_API_KEY: value });

    const patched = await api("PATCH", `/api/instances/${res.body.id}`, { token: admin.token, body: { secrets: { DB_PASSWORD: null, NEW_TOKEN: "t-0000000" } } });
    expect(patched.status).toBe(200);
    expect(patched.body.secretNames).toEqual(["NEW_TOKEN", "OPENAI_API_KEY"]);
  });

  it("a forbidden write is itself audited as UNAUTHORIZED_ACCESS", async () => {
    const viewer = await createUser("viewer");
    const res = await api("POST", "/api/instances", { token: viewer.token, body: { name: unique("nope"), clusterId } });
    expect(res.status).toBe(403);
    const rows = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.userId, viewer.id), eq(auditLogs.action, "UNAUTHORIZED_ACCESS"))));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.statusCode).toBe(403);
  });
});

describe("clusters", () => {
  it("shows the webhook secret once, rotates it, and refuses to delete a cluster with instances", async () => {
    const name = unique("edge");
    const created = await api("POST", "/api/clusters", { token: admin.token, body: { name, driver: "process", labels: { site: "plant-7" } } });
    expect(created.status).toBe(201);
    expect(created.body.webhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const got = await api("GET", `/api/clusters/${created.body.id}`, { token: admin.token });
    expect(got.body.webhookSecret).toBeUndefined();
    expect(JSON.stringify(got.body)).not.toContain(created.body.webhookSecret);
    const listed = await api("GET", "/api/clusters?limit=200", { token: admin.token });
    expect(JSON.stringify(listed.body)).not.toContain("whsec_");
    const rotated = await api("POST", `/api/clusters/${created.body.id}/rotate-secret`, { token: admin.token });
    expect(rotated.body.webhookSecret).not.toBe(created.body.webhookSecret);

    const dup = await api("POST", "/api/clusters", { token: admin.token, body: { name } });
    expect(dup.status).toBe(409);
    expectErrorShape(dup.body, "cluster_name_taken");

    const inst = await createInstance(admin.token, created.body.id);
    const blocked = await api("DELETE", `/api/clusters/${created.body.id}`, { token: admin.token });
    expect(blocked.status).toBe(409);
    expectErrorShape(blocked.body, "cluster_not_empty");
    await api("DELETE", `/api/instances/${inst.id}`, { token: admin.token });
    expect((await api("DELETE", `/api/clusters/${created.body.id}`, { token: admin.token })).status).toBe(204);
    expect((await api("GET", `/api/clusters/${created.body.id}`, { token: admin.token })).status).toBe(404);
  });

  it("a cluster whose destroyed instance reported AI decisions and was deployed can be deleted; its history stays", async () => {
    const name = unique("history");
    const cluster = await createCluster(admin.token, name);
    const inst = await createInstance(admin.token, cluster.id);
    const text = JSON.stringify({ batchId: crypto.randomUUID(), records: [{ instanceId: inst.id, provider: "openai", model: "gpt-4o-mini", flowName: "support", inputTokens: 10, outputTokens: 5 }] });
    const sent = await api("POST", `/api/webhooks/clusters/${cluster.id}/ai-decisions`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    // A finished deployment of version 1 is history too (deployments reference the instance and its versions).
    await withDb(async (db) => {
      const [v1] = await db.select().from(flowVersions).where(eq(flowVersions.instanceId, inst.id));
      await db.insert(deployments).values({ instanceId: inst.id, strategy: "blue_green", status: "succeeded", toVersionId: v1!.id });
    });
    expect((await api("DELETE", `/api/instances/${inst.id}`, { token: admin.token })).status).toBe(202);

    const deleted = await api("DELETE", `/api/clusters/${cluster.id}`, { token: admin.token });
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(204);
    expect((await api("GET", `/api/clusters/${cluster.id}`, { token: admin.token })).status).toBe(404);
    expect(JSON.stringify((await api("GET", "/api/clusters?limit=200", { token: admin.token })).body)).not.toContain(cluster.id);
    expect((await api("DELETE", `/api/clusters/${cluster.id}`, { token: admin.token })).status).toBe(404);

    // History kept: the decisions and the deployment are still there, naming the instance.
    const decisions = await api("GET", `/api/ai/decisions?instanceId=${inst.id}`, { token: admin.token });
    expect(decisions.status).toBe(200);
    expect(decisions.body.items).toHaveLength(1);
    const history = await api("GET", `/api/deployments?instanceId=${inst.id}`, { token: admin.token });
    expect(history.body.items).toHaveLength(1);
    const audit = await api("GET", `/api/audit?action=CLUSTER_DELETED&resourceId=${cluster.id}`, { token: admin.token });
    expect(audit.body.items[0].details).toMatchObject({ name });

    // Detached: its bridge's secret no longer verifies, nothing new lands in it, and the name is free again.
    const late = await api("POST", `/api/webhooks/clusters/${cluster.id}/ai-decisions`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(late.status).toBe(401);
    const into = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("late"), clusterId: cluster.id, flows } });
    expect(into.status).toBe(400);
    expectErrorShape(into.body, "cluster_not_found");
    expect((await api("POST", "/api/clusters", { token: admin.token, body: { name } })).status).toBe(201);
  });
});
