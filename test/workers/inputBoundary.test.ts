/**
 * Issue 12, the input boundary: what the API refuses before anything else
 * reads it (lone surrogates, control characters in a query token, deep or
 * wide JSON, bodies on GET, javascript: URLs from a bridge), and that every
 * refusal still answers in the one error shape and leaves its audit row.
 */
import { env, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { SignJWT } from "jose";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError } from "../../core/errors.ts";
import { onError } from "../../functions/middleware/errorHandler.ts";
import { auditLogs } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let viewer: TestUser;
let cluster: { id: string; webhookSecret: string };

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
  cluster = await createCluster(admin.token);
});

/** `{"a":{"a":…}}` nested `depth` deep, built as text (JSON.stringify recurses). */
const nestedObjectText = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
const nestedArrayText = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

async function signed(path: string, text: string) {
  const headers = await webhookHeaders(cluster.webhookSecret, text);
  return api("POST", path, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

describe("strings the validators accept are safe everywhere", () => {
  it("a lone UTF-16 surrogate in a login username is 400, not 500", async () => {
    for (const username of ["\ud800", "a\udc00b", "\udbff"]) {
      const res = await api("POST", "/api/auth/login", { raw: JSON.stringify({ username, password: "x" }), headers: { "Content-Type": "application/json" } });
      expect(res.status, JSON.stringify(username)).toBe(400);
      expectErrorShape(res.body, "validation_failed");
      expect(res.body.error.message).toMatch(/surrogate/);
    }
  });

  it("a lone surrogate anywhere in a body (a key, deep in flows) is 400; a paired one is accepted", async () => {
    const lone = await api("POST", "/api/instances", { token: admin.token, raw: '{"name":"x","clusterId":"' + cluster.id + '","flows":[{"id":"n","type":"t","\\udfff":1}]}', headers: { "Content-Type": "application/json" } });
    expect(lone.status).toBe(400);
    expectErrorShape(lone.body, "validation_failed");
    const paired = await api("POST", "/api/instances", { token: admin.token, body: { name: "pair-ok", clusterId: cluster.id, flows: [{ id: "n", type: "t", label: "\ud83d\ude00" }] } });
    expect(paired.status).toBe(201);
  });

  it("a query token holding NUL, CR or LF is 401 on /ws/fleet, not 500", async () => {
    for (const token of ["%00", "abc%0D%0AX-Evil:%201", "a%0Ab", "%7F"]) {
      const res = await SELF.fetch(`http://redforge.test/ws/fleet?token=${token}`, { headers: { Upgrade: "websocket" } });
      expect(res.status, token).toBe(401);
      expectErrorShape(await res.json(), "invalid_token");
    }
  });

  it("a validly signed token with a malformed subject is 401 invalid_token, not 400", async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const sub of ["not-a-uuid", "x".repeat(300), "'; drop table users; --"]) {
      const token = await new SignJWT({ username: "admin", role: "admin" })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(sub).setIssuer("redforge").setAudience("redforge-api")
        .setIssuedAt(now).setExpirationTime(now + 60).sign(new TextEncoder().encode(env.JWT_SECRET!));
      const res = await api("GET", "/api/instances", { token });
      expect(res.status, sub).toBe(401);
      expectErrorShape(res.body, "invalid_token");
    }
  });
});

describe("JSON depth and breadth are bounded in one place", () => {
  it("flows nested 5,000 deep in POST and PATCH /api/instances are 400 naming the limit", async () => {
    const flows = `[{"id":"n1","type":"function","x":${nestedObjectText(5000)}}]`;
    const post = await api("POST", "/api/instances", { token: admin.token, raw: `{"name":"deep","clusterId":"${cluster.id}","flows":${flows}}`, headers: { "Content-Type": "application/json" } });
    expect(post.status).toBe(400);
    expectErrorShape(post.body, "json_too_deep");
    expect(post.body.error.message).toMatch(/64/);
    const inst = await createInstance(admin.token, cluster.id);
    const patch = await api("PATCH", `/api/instances/${inst.id}`, { token: admin.token, raw: `{"flows":${flows}}`, headers: { "Content-Type": "application/json" } });
    expect(patch.status).toBe(400);
    expectErrorShape(patch.body, "json_too_deep");
  });

  it("a body at the depth limit passes the guard; one level more does not", async () => {
    const at = await api("POST", "/api/clusters", { token: admin.token, raw: `{"name":"x","labels":${nestedObjectText(62)}}`, headers: { "Content-Type": "application/json" } });
    expect(at.status).toBe(400);
    expectErrorShape(at.body, "validation_failed");
    const over = await api("POST", "/api/clusters", { token: admin.token, raw: `{"name":"x","labels":${nestedObjectText(64)}}`, headers: { "Content-Type": "application/json" } });
    expect(over.status).toBe(400);
    expectErrorShape(over.body, "json_too_deep");
  });

  it("an object or array with more than 10,000 members is 413 naming the limit", async () => {
    const wideArray = `{"name":"x","labels":[${Array.from({ length: 10_001 }, () => "0").join(",")}]}`;
    const a = await api("POST", "/api/clusters", { token: admin.token, raw: wideArray, headers: { "Content-Type": "application/json" } });
    expect(a.status).toBe(413);
    expectErrorShape(a.body, "json_too_wide");
    expect(a.body.error.message).toMatch(/10000/);
    const wideObject = `{${Array.from({ length: 10_001 }, (_, i) => `"k${i}":0`).join(",")}}`;
    const o = await api("POST", "/api/clusters", { token: admin.token, raw: wideObject, headers: { "Content-Type": "application/json" } });
    expect(o.status).toBe(413);
    expectErrorShape(o.body, "json_too_wide");
  });

  it("a signed command.result or AI batch nested 100,000 deep is 400 after its signature verifies; unsigned is 401", async () => {
    const deepResult = `{"type":"command.result","commandId":"c1","status":"ok","result":{"x":${nestedArrayText(100_000)}}}`;
    const res = await signed(`/api/webhooks/clusters/${cluster.id}`, deepResult);
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "json_too_deep");
    const unsigned = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: deepResult, headers: { "Content-Type": "application/json" } });
    expect(unsigned.status).toBe(401);
    const deepBatch = `{"batchId":"batch-deep-1","records":[${nestedObjectText(100_000)}]}`;
    const ai = await signed(`/api/webhooks/clusters/${cluster.id}/ai-decisions`, deepBatch);
    expect(ai.status).toBe(400);
    expectErrorShape(ai.body, "json_too_deep");
  });
});

describe("bodies are refused early and cancelled", () => {
  it("a GET or HEAD announcing a body is 400 before routing or authentication", async () => {
    for (const headers of [{ "Content-Length": "5" }, { "Transfer-Encoding": "chunked" }] as Record<string, string>[]) {
      const res = await api("GET", "/api/instances", { headers });
      expect(res.status, JSON.stringify(headers)).toBe(400);
      expectErrorShape(res.body, "body_not_allowed");
    }
    const head = await SELF.fetch("http://redforge.test/api/health", { method: "HEAD", headers: { "Content-Length": "5" } });
    expect(head.status).toBe(400);
  });

  it("a body-less write as a browser sends it (an empty body, Content-Length 0, no Content-Type) is not 415", async () => {
    const inst = await createInstance(admin.token, cluster.id);
    const res = await SELF.fetch(`http://redforge.test/api/instances/${inst.id}/stop`, {
      method: "POST", headers: { Authorization: `Bearer ${admin.token}`, "Content-Length": "0" }, body: "",
    });
    expect(res.status, await res.clone().text()).toBe(202);
  });

  it("a refused streamed body (413, 415) is drained or cancelled, not left for the runtime", async () => {
    for (const [contentType, size, status] of [["application/json", 4 * 1024 * 1024, 413], ["text/plain", 64 * 1024, 415]] as const) {
      let sent = 0;
      let cancelled = false;
      const body = new ReadableStream<Uint8Array>({
        pull(ctl) {
          if (sent >= size) return ctl.close();
          sent += 16 * 1024;
          ctl.enqueue(new Uint8Array(16 * 1024).fill(0x20));
        },
        cancel() { cancelled = true; },
      });
      const res = await SELF.fetch("http://redforge.test/api/clusters", {
        method: "POST", body, headers: { "Content-Type": contentType, Authorization: `Bearer ${admin.token}` },
        // @ts-expect-error: workerd needs duplex for a streamed request body
        duplex: "half",
      });
      expect(res.status).toBe(status);
      await res.body?.cancel();
      await expect.poll(() => cancelled || sent >= size, { timeout: 5000 }).toBe(true);
      // The Worker answers the next request at once (it did not stall on the refused body).
      const next = await api("GET", "/api/health");
      expect(next.status).toBe(200);
    }
  });
  it("any refusal before the body guards (a 429 per address) cancels the unread body too", async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) { ctl.enqueue(new Uint8Array(64 * 1024)); },
      cancel() { cancelled = true; },
    });
    const app = new Hono<AppEnv>().onError(onError).use(async () => { throw new ApiError(429, "rate_limited", "too many requests"); });
    // @ts-expect-error: workerd needs duplex for a streamed request body
    const res = await app.request(new Request("http://redforge.test/api/clusters", { method: "POST", body, duplex: "half" }));
    expect(res.status).toBe(429);
    expect(cancelled).toBe(true);
  });
});

describe("a bridge's reports", () => {
  it("an instance's endpoints must be http(s) URLs: a javascript: URL is 400", async () => {
    const inst = await createInstance(admin.token, cluster.id);
    for (const admin of ["javascript:alert(1)", "data:text/html,<script>1</script>", "not a url", "ftp://x/"]) {
      const res = await signed(`/api/webhooks/clusters/${cluster.id}`, JSON.stringify({ type: "instance.status", instanceId: inst.id, state: "running", endpoints: { admin } }));
      expect(res.status, admin).toBe(400);
      expectErrorShape(res.body, "validation_failed");
    }
    const front = await signed(`/api/webhooks/clusters/${cluster.id}`, JSON.stringify({ type: "instance.status", instanceId: inst.id, state: "running", endpoints: { admin: "http://127.0.0.1:1880", front: "javascript:1" } }));
    expect(front.status).toBe(400);
    const ok = await signed(`/api/webhooks/clusters/${cluster.id}`, JSON.stringify({ type: "instance.status", instanceId: inst.id, state: "running", endpoints: { admin: "https://nr.example.test/admin", front: "http://127.0.0.1:1881" } }));
    expect(ok.status).toBe(202);
  });
});

describe("a rejected request always leaves its audit row", () => {
  const rowsFor = (userId: string) =>
    withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.userId, userId), eq(auditLogs.action, "UNAUTHORIZED_ACCESS"))));

  it("a viewer's DELETE with NUL or a 300-character id is 403 and audited with the id sanitised and truncated", async () => {
    const who = await createUser("viewer");
    const uuid = crypto.randomUUID();
    const nul = await api("DELETE", `/api/instances/%00${uuid}`, { token: who.token, headers: { "User-Agent": "evil\u0001\u007fagent\u001b[2J" } });
    expect(nul.status).toBe(403);
    const long = await api("DELETE", `/api/instances/${"a".repeat(300)}`, { token: who.token });
    expect(long.status).toBe(403);
    const crlf = await api("DELETE", `/api/instances/%0D%0A%E2%80%AE${uuid}`, { token: who.token });
    expect(crlf.status).toBe(403);
    const rows = await rowsFor(who.id);
    const ids = rows.map((r) => r.resourceId);
    expect(ids).toContain(uuid);
    expect(ids).toContain("a".repeat(255));
    expect(rows).toHaveLength(3);
    for (const id of ids) expect(id).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(rows.find((r) => r.resourceId === uuid && r.userAgent?.startsWith("evil"))?.userAgent).toBe("evilagent[2J");
    const verify = await api("GET", "/api/audit/verify", { token: viewer.token });
    expect(verify.body.ok).toBe(true);
  });
});
