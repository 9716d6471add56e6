/**
 * Team quotas: the API that sets them, enforcement at instance creation,
 * PATCH of resources and scaling (409 QUOTA_EXCEEDED naming the limit,
 * nothing written), race-safety under parallel creates, and the deployment
 * gate's daily limits (429) called directly against the real database and KV.
 */
import { env } from "cloudflare:test";
import { and, count, eq, isNull, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLogs, deployments, instances, users } from "../../db/schema.ts";
import { ApiError } from "../../core/errors.ts";
import { assertDeploymentAllowed } from "../../core/governance/deploymentGate.ts";
import { addTokens } from "../../core/governance/tokenUsage.ts";
import { openKv } from "../../core/platform/kv.ts";
import { api, createCluster, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

/** An admin in a team of its own, so quotas set here touch no other test. */
async function teamAdmin(): Promise<TestUser & { team: string }> {
  const team = unique("team");
  const admin = await createUser("admin");
  await withDb((db) => db.update(users).set({ team }).where(eq(users.id, admin.id)));
  return { ...admin, team };
}

async function setQuota(token: string, team: string, limits: Record<string, number | null>) {
  const res = await api("PUT", `/api/quotas/${team}`, { token, body: limits });
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  return res;
}

const liveCount = (team: string) => withDb(async (db) => {
  const [row] = await db.select({ n: count() }).from(instances).where(and(eq(instances.team, team), isNull(instances.deletedAt)));
  return row!.n;
});

function create(token: string, clusterId: string, extra: Record<string, unknown> = {}) {
  return api("POST", "/api/instances", { token, body: { name: unique("q"), clusterId, ...extra } });
}

describe("quotas API", () => {
  it("an admin sets, reads, lists and removes a team's quota; bad limits are 400", async () => {
    const admin = await createUser("admin");
    const team = unique("team");
    const first = await setQuota(admin.token, team, { maxInstances: 5, maxCpuMillicores: 4000 });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ team, maxInstances: 5, maxCpuMillicores: 4000, maxMemoryMb: null, maxLlmTokensPerDay: null });
    // PUT writes the whole quota: limits left out are lifted.
    const second = await setQuota(admin.token, team, { maxInstances: 2 });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ maxInstances: 2, maxCpuMillicores: null });
    const trail = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.resourceType, "quota"), eq(auditLogs.resourceId, team))).orderBy(auditLogs.id));
    expect(trail.map((r) => r.action)).toEqual(["QUOTA_SET", "QUOTA_SET"]);
    expect(trail[1]!.details).toMatchObject({ from: { maxInstances: 5, maxCpuMillicores: 4000 }, to: { maxInstances: 2, maxCpuMillicores: null } });

    const viewer = await createUser("viewer");
    const got = await api("GET", `/api/quotas/${team}`, { token: viewer.token });
    expect(got.body).toMatchObject({ team, maxInstances: 2 });
    const listed = await api("GET", "/api/quotas", { token: viewer.token });
    expect(listed.body.items.map((q: { team: string }) => q.team)).toContain(team);

    for (const body of [{ maxInstances: -1 }, { maxInstances: 1.5 }, { maxInstances: "3" }, { maxPods: 3 }]) {
      const bad = await api("PUT", `/api/quotas/${team}`, { token: admin.token, body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expectErrorShape(bad.body, "validation_failed");
    }
    expect((await api("PUT", "/api/quotas/bad%20team", { token: admin.token, body: {} })).status).toBe(400);

    expect((await api("DELETE", `/api/quotas/${team}`, { token: admin.token })).status).toBe(204);
    const gone = await api("GET", `/api/quotas/${team}`, { token: admin.token });
    expect(gone.status).toBe(404);
    expectErrorShape(gone.body, "quota_not_found");
    expect((await api("DELETE", `/api/quotas/${team}`, { token: admin.token })).status).toBe(404);
  });
});

describe("instance quotas", () => {
  it("over maxInstances: 409 naming the limit, and nothing is created", async () => {
    const admin = await teamAdmin();
    const cluster = await createCluster(admin.token);
    await setQuota(admin.token, admin.team, { maxInstances: 2 });
    expect((await create(admin.token, cluster.id)).status).toBe(201);
    expect((await create(admin.token, cluster.id)).status).toBe(201);
    const name = unique("over");
    const res = await api("POST", "/api/instances", { token: admin.token, body: { name, clusterId: cluster.id } });
    expect(res.status).toBe(409);
    expectErrorShape(res.body, "QUOTA_EXCEEDED");
    expect(res.body.error.details).toEqual({ limit: "maxInstances", team: admin.team, used: 2, requested: 1, max: 2 });
    expect(await liveCount(admin.team)).toBe(2);
    const byName = await withDb((db) => db.select().from(instances).where(eq(instances.name, name)));
    expect(byName).toHaveLength(0);
    // The refusal itself is on the record, with its code.
    const refusals = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.userId, admin.id), eq(auditLogs.action, "REQUEST_REJECTED"))));
    expect(refusals.map((r) => (r.details as { errorCode?: string }).errorCode)).toContain("QUOTA_EXCEEDED");

    // Destroying one frees its place.
    const list = await api("GET", `/api/instances?team=${admin.team}`, { token: admin.token });
    expect((await api("DELETE", `/api/instances/${list.body.items[0].id}`, { token: admin.token })).status).toBe(202);
    expect((await create(admin.token, cluster.id)).status).toBe(201);
  });

  it("parallel creates cannot exceed maxInstances", async () => {
    const admin = await teamAdmin();
    const cluster = await createCluster(admin.token);
    await setQuota(admin.token, admin.team, { maxInstances: 3 });
    const results = await Promise.all(Array.from({ length: 10 }, () => create(admin.token, cluster.id)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(3);
    expect(statuses.filter((s) => s === 409)).toHaveLength(7);
    for (const r of results.filter((r) => r.status === 409)) expect(r.body.error.details.limit).toBe("maxInstances");
    expect(await liveCount(admin.team)).toBe(3);
  });

  it("CPU and memory count requests × replicas at create, PATCH and scale; shrinking always passes", async () => {
    const admin = await teamAdmin();
    const cluster = await createCluster(admin.token);
    await setQuota(admin.token, admin.team, { maxCpuMillicores: 1000, maxMemoryMb: 1024 });
    const a = await create(admin.token, cluster.id, { resources: { cpu: "600m", memory: "512Mi" } });
    expect(a.status).toBe(201);

    const tooMuchCpu = await create(admin.token, cluster.id, { resources: { cpu: "0.5", memory: "256Mi" } });
    expect(tooMuchCpu.status).toBe(409);
    expect(tooMuchCpu.body.error.details).toEqual({ limit: "maxCpuMillicores", team: admin.team, used: 600, requested: 500, max: 1000 });
    const tooMuchMemory = await create(admin.token, cluster.id, { resources: { cpu: "100m", memory: "1Gi" } });
    expect(tooMuchMemory.status).toBe(409);
    expect(tooMuchMemory.body.error.details).toMatchObject({ limit: "maxMemoryMb", used: 512, requested: 1024, max: 1024 });
    // Under a CPU/memory quota an instance must say what it needs.
    const undeclared = await create(admin.token, cluster.id);
    expect(undeclared.status).toBe(409);
    expect(undeclared.body.error.details.limit).toBe("maxCpuMillicores");
    expect(await liveCount(admin.team)).toBe(1);

    const patch = await api("PATCH", `/api/instances/${a.body.id}`, { token: admin.token, body: { resources: { cpu: "1500m", memory: "512Mi" } } });
    expect(patch.status).toBe(409);
    expect(patch.body.error.details).toMatchObject({ limit: "maxCpuMillicores", used: 0, requested: 1500 });
    const scale = await api("POST", `/api/instances/${a.body.id}/scale`, { token: admin.token, body: { replicas: 2 } });
    expect(scale.status).toBe(409);
    expect(scale.body.error.details).toMatchObject({ limit: "maxCpuMillicores", requested: 1200 });
    const unchanged = await api("GET", `/api/instances/${a.body.id}`, { token: admin.token });
    expect(unchanged.body).toMatchObject({ replicas: 1, resources: { cpu: "600m", memory: "512Mi" } });

    // A lowered quota does not trap the team: shrinking passes even while over.
    await setQuota(admin.token, admin.team, { maxCpuMillicores: 100, maxMemoryMb: 1024 });
    expect((await api("PATCH", `/api/instances/${a.body.id}`, { token: admin.token, body: { resources: { cpu: "300m", memory: "512Mi" } } })).status).toBe(200);
    expect((await api("POST", `/api/instances/${a.body.id}/scale`, { token: admin.token, body: { replicas: 0 } })).status).toBe(202);
    expect((await api("POST", `/api/instances/${a.body.id}/scale`, { token: admin.token, body: { replicas: 1 } })).status).toBe(409);
  });

  it("usage reports what the team holds against its limits", async () => {
    const admin = await teamAdmin();
    const cluster = await createCluster(admin.token);
    await setQuota(admin.token, admin.team, { maxInstances: 10, maxCpuMillicores: 4000, maxMemoryMb: 8192, maxLlmTokensPerDay: 50_000 });
    const a = await create(admin.token, cluster.id, { resources: { cpu: "500m", memory: "512Mi" } });
    await create(admin.token, cluster.id, { resources: { cpu: "1", memory: "1Gi" } });
    await api("POST", `/api/instances/${a.body.id}/scale`, { token: admin.token, body: { replicas: 2 } });
    await addTokens(openKv(env), admin.team, 1234, new Date());
    await withDb((db) => db.insert(deployments).values({ instanceId: a.body.id, strategy: "rolling", status: "succeeded" }));

    const viewer = await createUser("viewer");
    const res = await api("GET", `/api/quotas/${admin.team}/usage`, { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      team: admin.team,
      limits: { maxInstances: 10, maxCpuMillicores: 4000, maxMemoryMb: 8192, maxDeploymentsPerDay: null, maxLlmTokensPerDay: 50_000 },
      usage: { instances: 2, cpuMillicores: 2000, memoryMb: 2048, deploymentsToday: 1, llmTokensToday: 1234 },
    });
    const none = await api("GET", `/api/quotas/${unique("nobody")}/usage`, { token: viewer.token });
    expect(none.body).toMatchObject({ limits: null, usage: { instances: 0 } });
  });
});

describe("deployment gate (assertDeploymentAllowed)", () => {
  async function gateFixture(limits: Record<string, number | null>) {
    const admin = await teamAdmin();
    const cluster = await createCluster(admin.token);
    const created = await create(admin.token, cluster.id);
    await setQuota(admin.token, admin.team, limits);
    const [instance] = await withDb((db) => db.select().from(instances).where(eq(instances.id, created.body.id)));
    return { admin, instance: instance! };
  }

  async function gate(instance: typeof instances.$inferSelect, now: Date): Promise<ApiError | undefined> {
    try {
      await withDb((db) => assertDeploymentAllowed({ db, kv: openKv(env) }, { instance, now }));
      return undefined;
    } catch (err) {
      if (err instanceof ApiError) return err;
      throw err;
    }
  }

  it("counts the team's deployments since UTC midnight: 429 maxDeploymentsPerDay at the limit", async () => {
    const { admin, instance } = await gateFixture({ maxDeploymentsPerDay: 2 });
    const now = new Date("2030-03-10T15:00:00Z");
    const yesterday = new Date("2030-03-09T23:59:00Z");
    await withDb((db) => db.insert(deployments).values([
      { instanceId: instance.id, strategy: "rolling", status: "succeeded", createdAt: yesterday },
      { instanceId: instance.id, strategy: "rolling", status: "succeeded", createdAt: new Date("2030-03-10T00:00:01Z") },
    ]));
    expect(await gate(instance, now)).toBeUndefined();
    await withDb((db) => db.insert(deployments).values({ instanceId: instance.id, strategy: "rolling", status: "failed", createdAt: new Date("2030-03-10T09:00:00Z") }));
    const denied = await gate(instance, now);
    expect(denied?.status).toBe(429);
    expect(denied?.code).toBe("QUOTA_EXCEEDED");
    expect(denied?.details).toEqual({ limit: "maxDeploymentsPerDay", team: admin.team, used: 2, requested: 1, max: 2 });
    // The next UTC day starts from zero.
    expect(await gate(instance, new Date("2030-03-11T00:00:00Z"))).toBeUndefined();
  });

  it("an exhausted LLM token budget stops deployments until the next UTC day", async () => {
    const { admin, instance } = await gateFixture({ maxLlmTokensPerDay: 1000 });
    const now = new Date("2030-04-01T12:00:00Z");
    const kv = openKv(env);
    await addTokens(kv, admin.team, 999, now);
    expect(await gate(instance, now)).toBeUndefined();
    await addTokens(kv, admin.team, 1, now);
    const denied = await gate(instance, now);
    expect(denied?.status).toBe(429);
    expect(denied?.details).toEqual({ limit: "maxLlmTokensPerDay", team: admin.team, used: 1000, requested: 0, max: 1000 });
    expect(await gate(instance, new Date("2030-04-02T00:00:00Z"))).toBeUndefined();
  });

  it("called inside the transaction that records the deployment, parallel deployments cannot exceed the daily limit", async () => {
    const { instance } = await gateFixture({ maxDeploymentsPerDay: 3 });
    const now = new Date();
    const attempt = () => withDb((db) => db.transaction(async (tx) => {
      await assertDeploymentAllowed({ db: tx, kv: openKv(env) }, { instance, now });
      await tx.insert(deployments).values({ instanceId: instance.id, strategy: "rolling", status: "pending", createdAt: now });
    })).then(() => "ok", (err) => (err instanceof ApiError ? err.code : String(err)));
    const outcomes = await Promise.all(Array.from({ length: 8 }, attempt));
    expect(outcomes.filter((o) => o === "ok")).toHaveLength(3);
    expect(outcomes.filter((o) => o === "QUOTA_EXCEEDED")).toHaveLength(5);
    const [row] = await withDb((db) => db.select({ n: count() }).from(deployments).where(eq(deployments.instanceId, instance.id)));
    expect(row!.n).toBe(3);
  });

  it("creates of a team without a quota do not queue on the team's quota lock; with a quota they do", async () => {
    const admin = await teamAdmin();
    const cluster = await createCluster(admin.token);
    // Hold the team's lock (core/governance/quotas.ts TEAM_QUOTA_LOCK) in a transaction of our own.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = withDb((db) => db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(7470003, hashtext(${admin.team}))`);
      locked();
      await held;
    }));
    await isLocked;
    try {
      expect((await create(admin.token, cluster.id)).status).toBe(201);
      // With a quota the check waits for the lock: Postgres shows it waiting, and it answers once released.
      await setQuota(admin.token, admin.team, { maxInstances: 10 });
      let settled = false;
      const queued = create(admin.token, cluster.id).finally(() => (settled = true));
      let waiting = 0;
      for (let tries = 0; tries < 600 && waiting === 0 && !settled; tries++) {
        const [row] = await withDb((db) => db.execute<{ n: number }>(sql`select count(*)::int as n from pg_locks
          where locktype = 'advisory' and not granted and classid = 7470003 and objid::bigint = (hashtext(${admin.team})::bigint & 4294967295)`)).then((r) => r.rows);
        waiting = row!.n;
        if (waiting === 0) await new Promise((r) => setTimeout(r, 100));
      }
      expect(settled).toBe(false);
      expect(waiting).toBe(1);
      release();
      expect((await queued).status).toBe(201);
    } finally {
      release();
      await holder;
    }
  });

  it("a team without a quota is never stopped by counts", async () => {
    const admin = await teamAdmin();
    const cluster = await createCluster(admin.token);
    const created = await create(admin.token, cluster.id);
    const [instance] = await withDb((db) => db.select().from(instances).where(eq(instances.id, created.body.id)));
    await addTokens(openKv(env), admin.team, 10_000_000, new Date());
    expect(await gate(instance!, new Date())).toBeUndefined();
  });
});
