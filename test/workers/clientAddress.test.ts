/**
 * The client address an audit row records: only the platform's header, and in
 * the exact text Postgres's inet gives back, or the row's hash (computed from
 * the text the Worker had) would never verify.
 */
import { env } from "cloudflare:test";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { inetText } from "../../db/auditChain.ts";
import { auditLogs } from "../../db/schema.ts";
import { createApp } from "../../functions/app.ts";
import { api, createUser, withDb } from "./helpers.ts";

// Every textual family an IPv6 (or IPv4) address comes in: embedded IPv4 (compatible, mapped, translated),
// upper case, leading zeros, uncompressed, compressed runs in each place, a single zero group, ties between runs.
const FORMS = [
  "1.2.3.4", "0.0.0.0", "255.255.255.255",
  "::1.2.3.4", "::ffff:1.2.3.4", "::FFFF:1.2.3.4", "0:0:0:0:0:ffff:102:304", "::ffff:0102:0304", "::ffff:0:1.2.3.4",
  "64:ff9b::1.2.3.4", "::0.1.2.3", "::0.0.1.2", "::0.0.0.1", "::1", "::", "::ffff:0.0.0.0", "::ffff:0:0", "::ffff",
  "2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1",
  "2001:db8:0:1:1:1:1:1", "1::", "1:0:0:0:0:0:0:0", "0:1:0:0:0:0:0:0", "fe80::1:2:3:4", "::2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7::", "::1:0:0:0", "1:0:0:1:0:0:0:1", "::5:6:7:8", "::1:2:3:4", "::0:1:2:3:4",
];

const trusted = createApp();
function requestFrom(ip: string, token: string) {
  return trusted.request("http://redforge.test/api/api-keys", {
    method: "POST", headers: { "Content-Type": "application/json", "CF-Connecting-IP": ip, Authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: `ip-${ip}` }),
  }, { ...env, REDFORGE_TRUST_CLIENT_IP: "true" });
}

describe("client addresses in the audit chain", () => {
  it("inetText gives exactly what Postgres's inet prints, for every form", async () => {
    const printed = await withDb((db) => Promise.all(FORMS.map(async (f) => {
      const { rows } = await db.execute<{ host: string }>(sql`select host(${f}::inet) as host`);
      return rows[0]!.host;
    })));
    expect(FORMS.map((f) => inetText(f))).toEqual(printed);
  });

  it("a request from each address form leaves a row that verifies", async () => {
    const op = await createUser("operator");
    for (const form of FORMS) {
      const res = await requestFrom(form, op.token);
      expect(res.status, form).toBe(201);
    }
    // In the order they were written: a select without ORDER BY has none (seen once in CI under load).
    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.userId, op.id)).orderBy(auditLogs.id));
    expect(rows.map((r) => r.ipAddress)).toEqual(FORMS.map((f) => inetText(f)));
    const admin = await createUser("admin");
    const verify = await api("GET", "/api/audit/verify", { token: admin.token });
    expect(verify.body).toMatchObject({ ok: true });
  });

  it("a header that is not an address records none", async () => {
    for (const bad of ["not-an-ip", "1.2.3.4, 5.6.7.8", "::ffff:1.2.3", "1.2.3.04", "[::1]", "fe80::1%eth0"]) {
      expect(inetText(bad), bad).toBeNull();
    }
  });
});
