import { neon } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-http";
import { describe, expect, it } from "vitest";
import type { Db } from "../../db/client.ts";
import { compiledInsert } from "../../db/compiledInsert.ts";
import { flowVersions, instances } from "../../db/schema.ts";

// No connection is made: neon() only keeps the URL until a query runs.
const db = drizzle(neon("postgres://u:p@127.0.0.1:1/db")) as unknown as Db;

interface BatchItem { _prepare(): { getQuery(): { sql: string; params: unknown[] }; isResponseInArrayMode(): boolean; mapResult(r: unknown, b?: boolean): unknown } }
const built = (q: unknown) => (q as BatchItem)._prepare();

const insertInstance = compiledInsert((d, v: typeof instances.$inferInsert) => d.insert(instances).values(v).returning());
const insertFlowVersion = compiledInsert((d, v: typeof flowVersions.$inferInsert) => d.insert(flowVersions).values(v));

const instance = (over: Partial<typeof instances.$inferInsert> = {}): typeof instances.$inferInsert => ({
  id: crypto.randomUUID(), name: "a", clusterId: crypto.randomUUID(), flows: [{ id: "n1", type: "tab" }], resources: { cpu: "1" },
  env: { A: "1" }, stack: "5.0", labels: { env: "prod" }, secretsSealed: null, secretNames: [], team: "t", createdBy: crypto.randomUUID(),
  credentialSecretSealed: "sealed", ...over,
});

// Instance creation sends these through the compiled path (functions/routes/instances.ts): Postgres must get what drizzle would send.
describe("compiledInsert", () => {
  it("sends drizzle's own statement and parameters, call after call, jsonb as JSON text and null as NULL", () => {
    for (const v of [instance(), instance({ name: "b", flows: [], env: {}, secretsSealed: "s", secretNames: ["K"] }), instance({ createdBy: null })]) {
      const ours = built(insertInstance(db, v)).getQuery();
      const theirs = db.insert(instances).values(v).returning().toSQL();
      expect(ours.sql).toBe(theirs.sql);
      expect(ours.params).toEqual(theirs.params);
    }
    const fv = { instanceId: crypto.randomUUID(), version: 1, flows: [{ id: "x" }], digest: "d", createdBy: null };
    expect(built(insertFlowVersion(db, fv)).getQuery()).toMatchObject(db.insert(flowVersions).values(fv).toSQL());
  });

  it("leaves a column whose value is undefined to its DEFAULT, as drizzle does (a team-less row gets 'default', not NULL)", () => {
    const v = instance({ team: undefined, createdBy: undefined });
    const ours = built(insertInstance(db, v)).getQuery();
    expect(ours.sql).toBe(db.insert(instances).values(v).returning().toSQL().sql);
    expect(ours.sql).toMatch(/values \([^)]*default/);
    expect(ours.params).toEqual(db.insert(instances).values(v).returning().toSQL().params);
  });

  it("maps the RETURNING row as drizzle does (column names to fields, timestamps to Dates)", () => {
    const v = instance();
    const theirs = (db.insert(instances).values(v).returning() as unknown as BatchItem)._prepare();
    const ours = built(insertInstance(db, v));
    expect(ours.isResponseInArrayMode()).toBe(theirs.isResponseInArrayMode());
    const columns = Object.keys(instances).length;
    const row = Array.from({ length: columns }, (_, i) => (i === 0 ? v.id : null));
    const at = "2026-12-04 16:00:00.123+00";
    const result = { rows: [row.map((x, i) => x ?? (i >= 20 ? at : `v${i}`))], fields: [] };
    expect(ours.mapResult(result, true)).toEqual(theirs.mapResult(result, true));
  });
});
