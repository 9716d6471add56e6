/**
 * A deployment whose start was cut between its row's commit and its DeploymentRun (a workerd restart, a crash):
 * the row is made here directly in the database, in_progress with no object behind it. Older than the grace it
 * no longer blocks the instance (the next start settles it failed / start_interrupted, with its audit row);
 * younger, it may be a start that is merely slow, and the instance is still refused 409 deployment_in_progress.
 */
import { env } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs, deployments } from "../../db/schema.ts";
import { START_GRACE_MS } from "../../core/deployments/orphans.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
const FLOWS = [{ id: "t1", type: "tab", label: "v2" }];

beforeAll(async () => {
  admin = await createUser("admin");
});

/** A running instance (its bridge reported it) on a cluster of its own. */
async function runningInstance(): Promise<string> {
  const cluster = await createCluster(admin.token);
  const inst = await createInstance(admin.token, cluster.id);
  const text = JSON.stringify({ type: "instance.status", instanceId: inst.id, state: "running" });
  const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
  expect(res.status).toBe(202);
  return inst.id;
}

/** What a cut start leaves: the row, in_progress, created `ageMs` ago, and no DeploymentRun started. */
async function orphanRow(instanceId: string, ageMs: number): Promise<string> {
  const [row] = await withDb((db) => db.insert(deployments).values({
    instanceId, strategy: "blue-green", status: "in_progress", currentPhase: "DEPLOY", createdAt: new Date(Date.now() - ageMs),
  }).returning({ id: deployments.id }));
  return row!.id;
}

const deploy = (instanceId: string) => api("POST", "/api/deployments", { token: admin.token, body: { instanceId, flows: FLOWS, analysisSeconds: 0, rollbackWindowSeconds: 0 } });

describe("a deployment row whose start was interrupted", () => {
  it("older than the grace: GET shows it failed, the next deployment starts and settles it (start_interrupted, audited once)", async () => {
    const instanceId = await runningInstance();
    const orphan = await orphanRow(instanceId, START_GRACE_MS + 5 * 60_000);
    // No DeploymentRun behind it.
    expect(await env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(orphan)).state()).toBeNull();

    // Before anything settles it, the API already says what it is.
    const before = await api("GET", `/api/deployments/${orphan}`, { token: admin.token });
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ id: orphan, status: "failed", error: { code: "start_interrupted" } });

    const started = await deploy(instanceId);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(started.body.id).not.toBe(orphan);
    expect(started.body.status).toBe("in_progress");

    const [row] = await withDb((db) => db.select().from(deployments).where(eq(deployments.id, orphan)));
    expect(row).toMatchObject({ status: "failed", errorCode: "start_interrupted" });
    expect(row!.error).toMatch(/interrupted/);
    expect(row!.completedAt).not.toBeNull();
    const after = await api("GET", `/api/deployments/${orphan}`, { token: admin.token });
    expect(after.body).toMatchObject({ status: "failed", error: { code: "start_interrupted" } });

    const audit = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.resourceType, "deployment"), eq(auditLogs.resourceId, orphan))));
    expect(audit.map((a) => a.action)).toEqual(["DEPLOYMENT_FAILED"]);
    expect(audit[0]!.details).toMatchObject({ instanceId, code: "start_interrupted" });

    // The new one is the instance's one active deployment now.
    const again = await deploy(instanceId);
    expect(again.status).toBe(409);
    expectErrorShape(again.body, "deployment_in_progress");
    expect(again.body.error.details.deploymentId).toBe(started.body.id);
  });

  it("younger than the grace: it may be a slow start, so the instance is still refused and the row stays", async () => {
    const instanceId = await runningInstance();
    const fresh = await orphanRow(instanceId, 0);
    const res = await deploy(instanceId);
    expect(res.status).toBe(409);
    expectErrorShape(res.body, "deployment_in_progress");
    expect(res.body.error.details.deploymentId).toBe(fresh);
    const [row] = await withDb((db) => db.select().from(deployments).where(eq(deployments.id, fresh)));
    expect(row).toMatchObject({ status: "in_progress", errorCode: null });
    expect((await api("GET", `/api/deployments/${fresh}`, { token: admin.token })).body.status).toBe("in_progress");
  });
});
