import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../functions/app.ts";
import { api } from "./helpers.ts";

describe("GET /api/health", () => {
  it("is public and reports database, KV and scheduler as reachable", async () => {
    const res = await api("GET", "/api/health");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ok");
    expect(res.body.checks.database.ok).toBe(true);
    expect(res.body.checks.kv).toMatchObject({ ok: true, backend: "durable-object" });
    expect(res.body.checks.scheduler.ok).toBe(true);
  });

  it("is 503 degraded, naming the failing dependency, when the scheduler is unreachable", async () => {
    const app = createApp();
    const res = await app.request("/api/health", {}, { ...env, QSTASH_URL: "http://127.0.0.1:1" });
    expect(res.status).toBe(503);
    const body = await res.json<any>();
    expect(body.status).toBe("degraded");
    expect(body.checks.scheduler.ok).toBe(false);
    expect(body.checks.database.ok).toBe(true);
  });

  it("is 503 when the database is unreachable, without a stack trace", async () => {
    const app = createApp();
    const res = await app.request("/api/health", {}, { ...env, DATABASE_URL: "postgres://nobody:x@127.0.0.1:1/none" });
    expect(res.status).toBe(503);
    const body = await res.json<any>();
    expect(body.checks.database.ok).toBe(false);
    expect(JSON.stringify(body)).not.toContain("at ");
  });
});

describe("GET /api/health/live", () => {
  it("is public and answers 200 with no dependency reachable (bench/api's no-database baseline)", async () => {
    const app = createApp();
    const res = await app.request("/api/health/live", {}, { ...env, DATABASE_URL: "postgres://nobody:x@127.0.0.1:1/none", QSTASH_URL: "http://127.0.0.1:1" });
    expect(res.status).toBe(200);
    expect(await res.json<any>()).toMatchObject({ status: "ok", timestamp: expect.any(String) });
  });
});
