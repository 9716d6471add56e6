import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLogs } from "../../db/schema.ts";
import { createUser, api, expectErrorShape, withDb } from "./helpers.ts";

const login = (username: string, password: string) => api("POST", "/api/auth/login", { body: { username, password } });

describe("login throttling", () => {
  it("the 6th attempt within the window is 429 with Retry-After, even with the right password", async () => {
    const u = await createUser("viewer");
    for (let i = 0; i < 5; i++) expect((await login(u.username, "wrong-password")).status).toBe(401);
    const sixth = await login(u.username, "wrong-password");
    expect(sixth.status).toBe(429);
    expectErrorShape(sixth.body, "too_many_attempts");
    const retryAfter = Number(sixth.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);

    const right = await login(u.username, u.password);
    expect(right.status).toBe(429);
    expect(right.body.token).toBeUndefined();

    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.action, "LOGIN_THROTTLED")));
    const mine = rows.filter((r) => (r.details as { username?: string } | null)?.username === u.username);
    expect(mine).toHaveLength(2);
    expect(mine[0]!.statusCode).toBe(429);
  });

  it("counts per username: another user's failures do not lock you, and fewer than 5 do not lock", async () => {
    const a = await createUser("viewer");
    const b = await createUser("viewer");
    for (let i = 0; i < 6; i++) await login(a.username, "wrong-password");
    expect((await login(a.username, a.password)).status).toBe(429);
    for (let i = 0; i < 4; i++) expect((await login(b.username, "wrong-password")).status).toBe(401);
    expect((await login(b.username, b.password)).status).toBe(200);
  });

  it("unknown usernames are throttled the same way (no hint which names exist)", async () => {
    const name = `nobody-${crypto.randomUUID().slice(0, 8)}`;
    for (let i = 0; i < 5; i++) expect((await login(name, "wrong-password")).status).toBe(401);
    expect((await login(name, "wrong-password")).status).toBe(429);
  });
});
