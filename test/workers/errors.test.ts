/** Bad input of every kind gets a 4xx in the one error shape, never a 500. */
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { api, createCluster, createUser, expectErrorShape, type TestUser } from "./helpers.ts";

let admin: TestUser;
let clusterId: string;

beforeAll(async () => {
  admin = await createUser("admin");
  clusterId = (await createCluster(admin.token)).id;
});

describe("error shape", () => {
  it("malformed JSON is 400 malformed_json", async () => {
    const res = await api("POST", "/api/instances", { token: admin.token, raw: '{"name": "x",', headers: { "Content-Type": "application/json" } });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "malformed_json");
  });

  it("wrong types are 400 validation_failed naming the field", async () => {
    const res = await api("POST", "/api/instances", { token: admin.token, body: { name: 42, clusterId } });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "validation_failed");
    expect(res.body.error.details.some((d: any) => d.path === "name")).toBe(true);
  });

  it("unknown fields on writes are rejected", async () => {
    const res = await api("POST", "/api/instances", { token: admin.token, body: { name: "ok-name", clusterId, colour: "blue" } });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "validation_failed");
    expect(res.body.error.message).toContain("colour");
  });

  it("a body over 1 MiB is 413", async () => {
    const big = JSON.stringify({ name: "big", clusterId, env: { BLOB: "x".repeat(1024 * 1024) } });
    const res = await api("POST", "/api/instances", { token: admin.token, raw: big, headers: { "Content-Type": "application/json" } });
    expect(res.status).toBe(413);
    expectErrorShape(res.body, "payload_too_large");
  });

  it("a non-JSON body is 415", async () => {
    const res = await api("POST", "/api/clusters", { token: admin.token, raw: "name=x", headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    expect(res.status).toBe(415);
    expectErrorShape(res.body, "unsupported_media_type");
  });

  it("a JSON array or scalar body is a validation error, not a crash", async () => {
    for (const raw of ["[]", "null", '"x"', "42"]) {
      const res = await api("POST", "/api/clusters", { token: admin.token, raw, headers: { "Content-Type": "application/json" } });
      expect(res.status, raw).toBe(400);
    }
  });

  it("a malformed id in the path is 400, an unknown one 404", async () => {
    const bad = await api("GET", "/api/instances/not-a-uuid", { token: admin.token });
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "validation_failed");
    const missing = await api("GET", `/api/instances/${crypto.randomUUID()}`, { token: admin.token });
    expect(missing.status).toBe(404);
    expectErrorShape(missing.body, "instance_not_found");
  });

  it("an unknown route is 404 in the error shape", async () => {
    const res = await api("GET", "/api/nothing-here", { token: admin.token });
    expect(res.status).toBe(404);
    expectErrorShape(res.body, "not_found");
  });

  it("a forged cursor is 400 invalid_cursor; bad filters are 400", async () => {
    const res = await api("GET", "/api/instances?cursor=garbage", { token: admin.token });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "invalid_cursor");
    const filter = await api("GET", "/api/instances?status=sleeping", { token: admin.token });
    expect(filter.status).toBe(400);
    const limit = await api("GET", "/api/instances?limit=100000", { token: admin.token });
    expect(limit.status).toBe(400);
  });
});

describe("authentication errors", () => {
  it("a garbage token is 401 invalid_token", async () => {
    const res = await api("GET", "/api/instances", { token: "not.a.jwt" });
    expect(res.status).toBe(401);
    expectErrorShape(res.body, "invalid_token");
  });

  it("a token signed with another secret is 401", async () => {
    const forged = await new SignJWT({ role: "admin" }).setProtectedHeader({ alg: "HS256" }).setSubject(admin.id)
      .setIssuer("redforge").setAudience("redforge-api").setExpirationTime("5m").sign(new TextEncoder().encode("someone-elses-secret-of-some-length"));
    const res = await api("GET", "/api/instances", { token: forged });
    expect(res.status).toBe(401);
  });

  it("an expired token is 401 token_expired", async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;
    const expired = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(admin.id)
      .setIssuer("redforge").setAudience("redforge-api").setIssuedAt(past - 60).setExpirationTime(past)
      .sign(new TextEncoder().encode(env.JWT_SECRET!));
    const res = await api("GET", "/api/instances", { token: expired });
    expect(res.status).toBe(401);
    expectErrorShape(res.body, "token_expired");
  });

  it("an alg=none token is refused", async () => {
    const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const none = `${b64({ alg: "none" })}.${b64({ sub: admin.id, iss: "redforge", aud: "redforge-api", exp: 9999999999 })}.`;
    const res = await api("GET", "/api/instances", { token: none });
    expect(res.status).toBe(401);
  });
});

describe("static assets", () => {
  it("the console placeholder is served from the assets binding", async () => {
    const res = await env.ASSETS!.fetch("http://redforge.test/index.html");
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("RedForge Control Tower");
  });

  it("the API answers with a request id", async () => {
    const res = await SELF.fetch("http://redforge.test/api/health", { headers: { "X-Request-Id": "trace-123" } });
    expect(res.headers.get("X-Request-Id")).toBe("trace-123");
    await res.arrayBuffer();
  });
});
