/**
 * The scheduled side of compliance, end to end: the built Worker under
 * `wrangler dev`, PUT /api/config syncing real schedules into the QStash
 * emulator, the emulator firing them with signed deliveries, reports landing
 * in wrangler's local R2 (persisted under the stack's state dir) and the
 * purge recording itself in the audit chain.
 */
import crypto from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../harness/eventually.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

let stack: TestStack;
let token: string;

async function call(method: string, p: string, body?: unknown) {
  const res = await fetch(`${stack.apiUrl}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  let json: any = null;
  try { json = JSON.parse(buf.toString("utf8")); } catch { /* a report body */ }
  return { status: res.status, headers: res.headers, buf, body: json };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

beforeAll(async () => {
  stack = await startTestStack({ worker: "wrangler" });
  const login = await fetch(`${stack.apiUrl}/api/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: stack.cfg.worker.adminPassword }),
  });
  token = ((await login.json()) as { token: string }).token;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("scheduled compliance exports and retention purge (wrangler dev + QStash emulator)", () => {
  it("PUT /api/config creates the schedules; firing them writes the reports and runs the purge", async () => {
    const put = await call("PUT", "/api/config", {
      reports: { schedule: "0 2 * * *", kinds: ["access", "data_retention"], framework: "gdpr", format: "ndjson", period: "day" },
      retention: { audit_logs: 365, ai_decision_logs: 90, instance_health: 30 },
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(stack.qstash.stats().schedules).toBeGreaterThanOrEqual(3); // + the health sweep

    stack.qstash.fireSchedule("redforge-compliance-export");
    await stack.qstash.tick();
    await stack.qstash.idle();
    const listed = await eventually(async () => {
      const r = await call("GET", "/api/reports?trigger=scheduled");
      if (r.body.items.length < 2) throw new Error(`only ${r.body.items.length} scheduled reports yet`);
      return r.body.items;
    });
    expect(listed.map((r: any) => r.kind).sort()).toEqual(["access", "data_retention"]);
    for (const report of listed) {
      const got = await call("GET", report.downloadUrl);
      expect(got.status).toBe(200);
      expect(crypto.createHash("sha256").update(got.buf).digest("hex")).toBe(report.digest);
      const header = JSON.parse(got.buf.toString("utf8").split("\n")[0]!);
      expect(header).toMatchObject({ type: "report", reportType: "GDPR_RECORDS", kind: report.kind });
    }
    // wrangler dev keeps R2 objects on disk under its --persist-to directory.
    const persisted = await filesUnder(path.join(stack.cfg.stateDir, "wrangler"));
    expect(persisted.some((f) => f.includes("r2"))).toBe(true);

    // A second delivery for the same period writes nothing new.
    stack.qstash.fireSchedule("redforge-compliance-export");
    await stack.qstash.tick();
    await stack.qstash.idle();
    expect((await call("GET", "/api/reports?trigger=scheduled")).body.items).toHaveLength(2);

    stack.qstash.fireSchedule("redforge-retention-purge");
    await stack.qstash.tick();
    await stack.qstash.idle();
    const purge = await eventually(async () => {
      const r = await call("GET", "/api/audit?action=RETENTION_PURGED&limit=1");
      if (!r.body.items.length) throw new Error("no purge recorded yet");
      return r.body.items[0];
    });
    // Everything here is minutes old: nothing is past retention, nothing is deleted.
    expect(purge.details.tables.audit_logs).toMatchObject({ retentionDays: 365, deleted: 0 });
    expect((await call("GET", "/api/audit/verify")).body.ok).toBe(true);
  });
});
