/**
 * The foundation's promise, end to end: the built Worker under `wrangler dev`
 * on the real local stack, driven over HTTP exactly as a user would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import mqtt from "mqtt";
import { hashPassword } from "../../core/crypto/passwords.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

let stack: TestStack;
let adminToken: string;

async function call(method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; contentType?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined || opts.raw !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
  const res = await fetch(`${stack.apiUrl}${path}`, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) });
  const text = await res.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* keep text */ }
  return { status: res.status, body };
}

beforeAll(async () => {
  stack = await startTestStack({ worker: "wrangler" });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("control plane over HTTP (wrangler dev + local stack)", () => {
  it("health is 200 with database, KV and scheduler reachable", async () => {
    const res = await call("GET", "/api/health");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.checks.database.ok).toBe(true);
    expect(res.body.checks.scheduler.ok).toBe(true);
    expect(res.body.checks.kv).toMatchObject({ ok: true, backend: stack.kvBackend });
  });

  it("the admin logs in with the configured password", async () => {
    const res = await call("POST", "/api/auth/login", { body: { username: "admin", password: stack.cfg.worker.adminPassword } });
    expect(res.status).toBe(200);
    adminToken = res.body.token;
    expect((await call("GET", "/api/auth/me", { token: adminToken })).body.role).toBe("admin");
  });

  it("a cluster and an instance are created, listed, patched, stopped and deleted", async () => {
    const cluster = await call("POST", "/api/clusters", { token: adminToken, body: { name: "it-edge" } });
    expect(cluster.status).toBe(201);
    expect(cluster.body.webhookSecret).toMatch(/^whsec_/);
    const inst = await call("POST", "/api/instances", {
      token: adminToken,
      body: { name: "it-agent", clusterId: cluster.body.id, resources: { cpu: "500m", memory: "256Mi" }, flows: [{ id: "t1", type: "tab" }] },
    });
    expect(inst.status).toBe(201);
    expect(inst.body).toMatchObject({ status: "pending", desiredState: "running" });
    const id = inst.body.id;

    const list = await call("GET", `/api/instances?clusterId=${cluster.body.id}`, { token: adminToken });
    expect(list.body.items.map((i: any) => i.name)).toEqual(["it-agent"]);

    const patched = await call("PATCH", `/api/instances/${id}`, { token: adminToken, body: { resources: { cpu: "1", memory: "1Gi" } } });
    expect(patched.status).toBe(200);
    expect(patched.body.resources).toEqual({ cpu: "1", memory: "1Gi" });

    const stopped = await call("POST", `/api/instances/${id}/stop`, { token: adminToken });
    expect(stopped.status).toBe(202);
    expect(stopped.body.desiredState).toBe("stopped");

    expect((await call("DELETE", `/api/instances/${id}`, { token: adminToken })).status).toBe(202);
    expect((await call("GET", `/api/instances/${id}`, { token: adminToken })).status).toBe(404);
    expect((await call("DELETE", `/api/clusters/${cluster.body.id}`, { token: adminToken })).status).toBe(204);
  });

  it("a viewer reads but gets 403 on writes; no token gets 401; garbage gets 4xx in the error shape", async () => {
    const client = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
    await client.connect();
    await client.query("insert into users (username, email, password_hash, role) values ($1, $2, $3, 'viewer')",
      ["it-viewer", "it-viewer@example.test", await hashPassword("viewer-pass-123")]);
    await client.end();
    const login = await call("POST", "/api/auth/login", { body: { username: "it-viewer", password: "viewer-pass-123" } });
    expect(login.status).toBe(200);
    const viewer = login.body.token;
    expect((await call("GET", "/api/instances", { token: viewer })).status).toBe(200);
    const denied = await call("POST", "/api/clusters", { token: viewer, body: { name: "nope" } });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("forbidden");

    const anon = await call("GET", "/api/instances");
    expect(anon.status).toBe(401);
    expect(anon.body.error.code).toBe("unauthenticated");

    for (const raw of ["{not json", "\u0000\u0001", "[1,2,3]"]) {
      const res = await call("POST", "/api/instances", { token: adminToken, raw });
      expect(res.status, raw).toBeGreaterThanOrEqual(400);
      expect(res.status, raw).toBeLessThan(500);
      expect(typeof res.body.error.code).toBe("string");
    }
    const big = await call("POST", "/api/clusters", { token: adminToken, raw: JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) }) });
    expect(big.status).toBe(413);
  });

  it("every change above left an unbroken audit hash chain", async () => {
    const { auditRowHash, GENESIS_HASH } = await import("../../db/auditChain.ts");
    const client = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
    await client.connect();
    const { rows } = await client.query("select * from audit_logs order by id");
    await client.end();
    expect(rows.map((r) => r.action)).toEqual(expect.arrayContaining(["USER_LOGIN", "CLUSTER_REGISTERED", "INSTANCE_CREATED", "INSTANCE_UPDATED", "INSTANCE_STOP_REQUESTED", "INSTANCE_DESTROY_REQUESTED", "CLUSTER_DELETED", "UNAUTHORIZED_ACCESS"]));
    let prev = GENESIS_HASH;
    for (const r of rows) {
      expect(r.prev_hash).toBe(prev);
      const expected = await auditRowHash(prev, r.timestamp, {
        userId: r.user_id, action: r.action, resourceType: r.resource_type, resourceId: r.resource_id,
        details: r.details, ipAddress: r.ip_address, userAgent: r.user_agent, statusCode: r.status_code,
      });
      expect(r.hash, `row ${r.id} ${r.action}`).toBe(expected);
      prev = r.hash;
    }
  });

  it("the health sweep runs when QStash fires its schedule, and only QStash may call it", async () => {
    const unsigned = await call("POST", "/api/jobs/health-sweep", { body: {} });
    expect(unsigned.status).toBe(401);
    const forged = await fetch(`${stack.apiUrl}/api/jobs/health-sweep`, {
      method: "POST", headers: { "content-type": "application/json", "upstash-signature": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln" }, body: "{}",
    });
    expect(forged.status).toBe(401);
    const before = stack.qstash.stats();
    stack.qstash.fireSchedule("redforge-health-sweep");
    await stack.qstash.tick();
    await stack.qstash.idle();
    const after = stack.qstash.stats();
    // Delivered and answered 2xx: nothing left pending, nothing dead-lettered.
    expect(after.dlq).toBe(before.dlq);
    expect(after.pending).toBe(0);
  });

  it("the stack's MQTT broker delivers QoS 1 messages", async () => {
    const client = await mqtt.connectAsync(stack.mqttUrl, { protocolVersion: 4, clientId: `it-${Date.now()}` });
    const topic = `redforge/it/${Date.now()}`;
    const got = new Promise<string>((resolve) => client.on("message", (_t, m) => resolve(m.toString())));
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(topic, "hello", { qos: 1 });
    expect(await got).toBe("hello");
    await client.endAsync();
  });
});
