/**
 * Instance creation without a quota runs as one HTTP non-interactive
 * transaction (functions/routes/instances.ts): what it must still guarantee.
 */
import { eq, inArray } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs, clusters, flowVersions, instances } from "../../db/schema.ts";
import { adminLogin, api, createCluster, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

let admin: string;
let viewer: TestUser;
let clusterId: string;
beforeAll(async () => {
  admin = await adminLogin();
  viewer = await createUser("viewer");
  clusterId = (await createCluster(admin)).id;
});

describe("instance creation in one transaction", () => {
  it("12 concurrent creates of one name: one 201, eleven 409 instance_name_taken, one row, one flow version, one audit row, and the chain verifies", async () => {
    const name = unique("same");
    const answers = await Promise.all(Array.from({ length: 12 }, () => api("POST", "/api/instances", { token: admin, body: { name, clusterId } })));
    const created = answers.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    for (const r of answers.filter((a) => a.status !== 201)) {
      expect(r.status).toBe(409);
      expectErrorShape(r.body, "instance_name_taken");
    }
    const id = created[0]!.body.id as string;
    await withDb(async (db) => {
      expect(await db.select({ id: instances.id }).from(instances).where(eq(instances.name, name))).toHaveLength(1);
      expect(await db.select({ v: flowVersions.version }).from(flowVersions).where(eq(flowVersions.instanceId, id))).toEqual([{ v: 1 }]);
      const rows = await db.select().from(auditLogs).where(inArray(auditLogs.resourceId, [id]));
      expect(rows.map((r) => r.action)).toEqual(["INSTANCE_CREATED"]);
      expect(rows[0]!.details).toMatchObject({ name, clusterId });
    });
    const verify = await api("GET", "/api/audit/verify", { token: viewer.token });
    expect(verify.status).toBe(200);
    expect(verify.body, JSON.stringify(verify.body)).toMatchObject({ ok: true });
  });

  it("a deleted cluster is 400 cluster_not_found and leaves nothing", async () => {
    const gone = (await createCluster(admin)).id;
    await withDb((db) => db.update(clusters).set({ deletedAt: new Date() }).where(eq(clusters.id, gone)));
    const name = unique("orphan");
    const res = await api("POST", "/api/instances", { token: admin, body: { name, clusterId: gone } });
    expect(res.status).toBe(400);
    expectErrorShape(res.body, "cluster_not_found");
    expect(await withDb((db) => db.select().from(instances).where(eq(instances.name, name)))).toHaveLength(0);
  });
});
