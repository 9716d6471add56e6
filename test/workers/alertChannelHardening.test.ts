/**
 * Alert channels may only send to public addresses (the control plane fetches
 * them: SSRF), unless development explicitly allows private ones; a refused
 * destination is never fetched at delivery either. Re-sealing after a key
 * rotation covers channel secrets, so the old key can go.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { alertChannels, alertNotifications, alerts } from "../../db/schema.ts";
import { channelUrlProblem, privateChannelsAllowed } from "../../core/alerts/channelUrl.ts";
import { deliverNotification } from "../../core/alerts/notify.ts";
import { keyId, open, parseKeyring } from "../../core/crypto/secretBox.ts";
import { randomBytes, toBase64 } from "../../protocol/encoding.ts";
import worker from "../../functions/index.ts";
import { createUser, expectErrorShape, unique, withDb } from "./helpers.ts";

/** The Worker with some variables changed (production-like channel checks, another key ring). */
async function call(vars: Record<string, string | undefined>, method: string, path: string, opts: { token: string; body?: unknown }) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://redforge.test${path}`, {
    method, headers: { Authorization: `Bearer ${opts.token}`, ...(opts.body ? { "Content-Type": "application/json" } : {}) },
    body: opts.body ? JSON.stringify(opts.body) : undefined,
  }), { ...env, ...vars }, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const STRICT = { REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE: undefined };

describe("channel URLs", () => {
  it.each([
    ["http://127.0.0.1:9000/hook", "private_address"],
    ["http://127.1/hook", "private_address"],
    ["http://2130706433/hook", "private_address"],
    ["http://0x7f.0.0.1/hook", "private_address"],
    ["http://[::1]/hook", "private_address"],
    ["http://[::ffff:127.0.0.1]/hook", "private_address"],
    ["http://[::ffff:169.254.169.254]/latest/meta-data", "private_address"],
    ["http://169.254.169.254/latest/meta-data/", "private_address"],
    ["http://[fd00:ec2::254]/latest", "private_address"],
    ["http://[fe80::1]/", "private_address"],
    ["http://[64:ff9b::10.0.0.1]/", "private_address"],
    ["http://10.1.2.3/", "private_address"],
    ["http://172.16.0.5/", "private_address"],
    ["http://192.168.1.1/", "private_address"],
    ["http://100.64.0.1/", "private_address"],
    ["http://0.0.0.0/", "private_address"],
    ["http://localhost:8080/", "local_name"],
    ["http://api.localhost/", "local_name"],
    ["http://metadata.google.internal/computeMetadata/v1/", "local_name"],
    ["http://printer.local/", "local_name"],
    ["http://intranet/", "local_name"],
    ["ftp://example.com/x", "scheme"],
    ["file:///etc/passwd", "scheme"],
    ["https://user:pass@hooks.example.com/x", "credentials"],
  ])("%s is refused (%s)", (url, problem) => {
    expect(channelUrlProblem(url)).toBe(problem);
  });

  it.each(["https://hooks.slack.com/services/T/B/X", "https://8.8.8.8/hook", "http://[2606:4700::1111]/hook", "https://example.com:8443/a?b=c"])("%s is allowed", (url) => {
    expect(channelUrlProblem(url)).toBeNull();
  });

  it("the API refuses a private destination with 400 naming the field, unless development allows private channels", async () => {
    const admin = await createUser("admin");
    const body = (url: string) => ({ team: unique("t"), name: "hook", kind: "webhook", url });
    for (const url of ["http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/"]) {
      const res = await call(STRICT, "POST", "/api/alerts/channels", { token: admin.token, body: body(url) });
      expect(res.status, url).toBe(400);
      expectErrorShape(res.body, "validation_failed");
      expect(res.body.error.details[0].path).toBe("url");
    }
    // Production ignores the development setting (a production Worker refuses the dev secrets these tests run with, so checked directly).
    expect(privateChannelsAllowed({ ENVIRONMENT: "production", REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE: "true" })).toBe(false);
    expect(privateChannelsAllowed({ REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE: "true" })).toBe(false);
    expect((await call(STRICT, "POST", "/api/alerts/channels", { token: admin.token, body: body("https://hooks.example.com/x") })).status).toBe(201);
    expect((await call({ REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE: "true" }, "POST", "/api/alerts/channels", { token: admin.token, body: body("http://127.0.0.1:9/x") })).status).toBe(201);
  });

  it("a delivery to a destination no longer allowed is never fetched: dead at once, with the reason", async () => {
    const admin = await createUser("admin");
    const team = unique("t");
    const ch = await call({ REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE: "true" }, "POST", "/api/alerts/channels", { token: admin.token, body: { team, name: "loop", kind: "webhook", url: "http://127.0.0.1:9/x" } });
    expect(ch.status).toBe(201);
    const outcome = await withDb(async (db) => {
      const [alert] = await db.insert(alerts).values({
        team, kind: "instance_down", severity: "warning", subject: crypto.randomUUID(), status: "firing", summary: "test", details: {},
        startedAt: new Date(), firedAt: new Date(),
      } as typeof alerts.$inferInsert).returning();
      const [n] = await db.insert(alertNotifications).values({ alertId: alert!.id, channelId: ch.body.id, team, event: "fired", payload: { type: "alert.fired" } } as typeof alertNotifications.$inferInsert).returning();
      const keys = parseKeyring(env.REDFORGE_ENCRYPTION_KEY!, undefined);
      const result = await deliverNotification(db, keys, n!.id, 0, (url) => channelUrlProblem(url));
      const [row] = await db.select().from(alertNotifications).where(eq(alertNotifications.id, n!.id));
      return { result, row: row! };
    });
    expect(outcome.result).toEqual({ status: "dead", attempts: 1 });
    expect(outcome.row.lastError).toMatch(/not allowed: private_address/);
  });
});

describe("re-seal covers alert channel secrets", () => {
  it("a channel sealed under the old key opens under the new key alone after POST /api/admin/reseal", async () => {
    const admin = await createUser("admin");
    const a = toBase64(randomBytes(32)), b = toBase64(randomBytes(32));
    const created = await call({ REDFORGE_ENCRYPTION_KEY: a, REDFORGE_ENCRYPTION_KEYS_PREVIOUS: "" }, "POST", "/api/alerts/channels", {
      token: admin.token, body: { team: unique("t"), name: "hook", kind: "webhook", url: "https://hooks.example.com/x" },
    });
    expect(created.status).toBe(201);
    const sealedOf = async () => (await withDb((db) => db.select({ s: alertChannels.secretSealed }).from(alertChannels).where(eq(alertChannels.id, created.body.id))))[0]!.s!;
    await expect(sealedOf()).resolves.toMatch(new RegExp(`^v2\\.${await keyId(a)}\\.`));

    const resealed = await call({ REDFORGE_ENCRYPTION_KEY: b, REDFORGE_ENCRYPTION_KEYS_PREVIOUS: a }, "POST", "/api/admin/reseal", { token: admin.token, body: {} });
    expect(resealed.status, JSON.stringify(resealed.body)).toBe(200);
    expect(resealed.body.columns["alert_channels.secret_sealed"].resealed).toBeGreaterThanOrEqual(1);
    const after = await sealedOf();
    expect(after).toMatch(new RegExp(`^v2\\.${await keyId(b)}\\.`));
    expect(await open(after, parseKeyring(b, undefined))).toBe(created.body.secret);
  });
});
