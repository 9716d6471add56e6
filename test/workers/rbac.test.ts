/**
 * Every route × every role: admin, operator, viewer, a custom role (`auditor`:
 * instances:read + audit:read), and no credentials.
 * Allowed calls get their success status; denied ones 403 and change nothing;
 * anonymous ones 401 (except the explicitly public routes).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { alerts, instances, roles } from "../../db/schema.ts";
import { api, createCluster, createInstance, createUser, unique, withDb, type TestUser } from "./helpers.ts";

type Role = "admin" | "operator" | "viewer" | "auditor";
const ROLES: Role[] = ["admin", "operator", "viewer", "auditor"];
const AUDITOR_PERMISSIONS = [{ resource: "instances", action: "read" }, { resource: "audit", action: "read" }];

interface Fixture {
  clusterId: string; instanceId: string; emptyClusterId: string; apiKeyId?: string;
  /** Set by a request that targets a user or custom role, for its `unchanged` check. */
  userId?: string; roleName?: string;
}
interface RouteCase {
  route: string;
  allowed: Role[] | "public";
  success: number;
  request: (f: Fixture, caller: TestUser) => Promise<{ method: string; path: string; body?: unknown }>;
  /** For denied callers: proves the call changed nothing. */
  unchanged?: (f: Fixture, admin: TestUser) => Promise<void>;
}

let users: Record<Role, TestUser>;

async function freshFixture(admin: TestUser): Promise<Fixture> {
  const cluster = await createCluster(admin.token);
  const empty = await createCluster(admin.token);
  const instance = await createInstance(admin.token, cluster.id);
  return { clusterId: cluster.id, instanceId: instance.id, emptyClusterId: empty.id };
}

const instanceStillRunning = async (f: Fixture, admin: TestUser) => {
  const res = await api("GET", `/api/instances/${f.instanceId}`, { token: admin.token });
  expect(res.status).toBe(200);
  expect(res.body.desiredState).toBe("running");
};

const CASES: RouteCase[] = [
  { route: "GET /api/health", allowed: "public", success: 200, request: async () => ({ method: "GET", path: "/api/health" }) },
  { route: "GET /api/auth/me", allowed: ["admin", "operator", "viewer", "auditor"], success: 200, request: async () => ({ method: "GET", path: "/api/auth/me" }) },
  { route: "POST /api/api-keys", allowed: ["admin", "operator", "viewer"], success: 201, request: async () => ({ method: "POST", path: "/api/api-keys", body: { name: "ci" } }) },
  { route: "GET /api/api-keys", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/api-keys" }) },
  {
    route: "DELETE /api/api-keys/:id", allowed: ["admin", "operator", "viewer"], success: 200,
    request: async (_f, caller) => {
      const key = await api("POST", "/api/api-keys", { token: caller.token, body: { name: "to-revoke" } });
      return { method: "DELETE", path: `/api/api-keys/${key.body.id}` };
    },
  },
  { route: "POST /api/clusters", allowed: ["admin"], success: 201, request: async () => ({ method: "POST", path: "/api/clusters", body: { name: unique("rbac") } }) },
  { route: "GET /api/clusters", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/clusters" }) },
  { route: "GET /api/clusters/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async (f) => ({ method: "GET", path: `/api/clusters/${f.clusterId}` }) },
  { route: "POST /api/clusters/:id/rotate-secret", allowed: ["admin"], success: 200, request: async (f) => ({ method: "POST", path: `/api/clusters/${f.clusterId}/rotate-secret` }) },
  {
    route: "DELETE /api/clusters/:id", allowed: ["admin"], success: 204,
    request: async (f) => ({ method: "DELETE", path: `/api/clusters/${f.emptyClusterId}` }),
    unchanged: async (f, admin) => expect((await api("GET", `/api/clusters/${f.emptyClusterId}`, { token: admin.token })).status).toBe(200),
  },
  {
    route: "POST /api/instances", allowed: ["admin"], success: 201,
    request: async (f) => ({ method: "POST", path: "/api/instances", body: { name: unique("rbac"), clusterId: f.clusterId } }),
  },
  { route: "GET /api/instances", allowed: ["admin", "operator", "viewer", "auditor"], success: 200, request: async () => ({ method: "GET", path: "/api/instances" }) },
  { route: "GET /api/instances/:id", allowed: ["admin", "operator", "viewer", "auditor"], success: 200, request: async (f) => ({ method: "GET", path: `/api/instances/${f.instanceId}` }) },
  {
    route: "PATCH /api/instances/:id", allowed: ["admin", "operator"], success: 200,
    request: async (f) => ({ method: "PATCH", path: `/api/instances/${f.instanceId}`, body: { resources: { cpu: "250m" } } }),
  },
  {
    route: "DELETE /api/instances/:id", allowed: ["admin"], success: 202,
    request: async (f) => ({ method: "DELETE", path: `/api/instances/${f.instanceId}` }),
    unchanged: instanceStillRunning,
  },
  {
    route: "POST /api/instances/:id/scale", allowed: ["admin", "operator"], success: 202,
    request: async (f) => ({ method: "POST", path: `/api/instances/${f.instanceId}/scale`, body: { replicas: 0 } }),
    unchanged: instanceStillRunning,
  },
  { route: "GET /api/metrics/instances/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async (f) => ({ method: "GET", path: `/api/metrics/instances/${f.instanceId}` }) },
  { route: "GET /api/audit", allowed: ["admin", "operator", "viewer", "auditor"], success: 200, request: async () => ({ method: "GET", path: "/api/audit?limit=5" }) },
  { route: "GET /api/audit/verify", allowed: ["admin", "operator", "viewer", "auditor"], success: 200, request: async () => ({ method: "GET", path: "/api/audit/verify" }) },
  { route: "GET /api/audit/export", allowed: ["admin", "operator", "viewer", "auditor"], success: 200, request: async () => ({ method: "GET", path: `/api/audit/export?format=csv&from=${encodeURIComponent(new Date().toISOString())}` }) },
  { route: "GET /api/metrics/fleet", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/metrics/fleet" }) },
  { route: "POST /api/instances/:id/start", allowed: ["admin", "operator"], success: 202, request: async (f) => ({ method: "POST", path: `/api/instances/${f.instanceId}/start` }) },
  { route: "POST /api/instances/:id/restart", allowed: ["admin", "operator"], success: 202, request: async (f) => ({ method: "POST", path: `/api/instances/${f.instanceId}/restart` }) },
  {
    route: "POST /api/instances/:id/stop", allowed: ["admin", "operator"], success: 202,
    request: async (f) => ({ method: "POST", path: `/api/instances/${f.instanceId}/stop` }),
    unchanged: instanceStillRunning,
  },
  {
    route: "POST /api/users", allowed: ["admin"], success: 201,
    request: async () => {
      const username = unique("rbac");
      return { method: "POST", path: "/api/users", body: { username, email: `${username}@x.test`, password: "long-enough-password", role: "viewer" } };
    },
  },
  { route: "GET /api/users", allowed: ["admin"], success: 200, request: async () => ({ method: "GET", path: "/api/users" }) },
  { route: "GET /api/users/:id", allowed: ["admin"], success: 200, request: async (_f, caller) => ({ method: "GET", path: `/api/users/${caller.id}` }) },
  {
    route: "PATCH /api/users/:id", allowed: ["admin"], success: 200,
    request: async (f) => {
      f.userId = (await createUser("viewer")).id;
      return { method: "PATCH", path: `/api/users/${f.userId}`, body: { disabled: true } };
    },
    unchanged: async (f, admin) => expect((await api("GET", `/api/users/${f.userId}`, { token: admin.token })).body.disabled).toBe(false),
  },
  {
    route: "DELETE /api/users/:id", allowed: ["admin"], success: 204,
    request: async (f) => {
      f.userId = (await createUser("viewer")).id;
      return { method: "DELETE", path: `/api/users/${f.userId}` };
    },
    unchanged: async (f, admin) => expect((await api("GET", `/api/users/${f.userId}`, { token: admin.token })).status).toBe(200),
  },
  { route: "GET /api/roles", allowed: ["admin"], success: 200, request: async () => ({ method: "GET", path: "/api/roles" }) },
  {
    route: "POST /api/roles", allowed: ["admin"], success: 201,
    request: async () => ({ method: "POST", path: "/api/roles", body: { name: unique("rbac"), permissions: [{ resource: "metrics", action: "read" }] } }),
  },
  {
    route: "PATCH /api/roles/:name", allowed: ["admin"], success: 200,
    request: async (f) => {
      f.roleName = await newCustomRole();
      return { method: "PATCH", path: `/api/roles/${f.roleName}`, body: { permissions: [{ resource: "*", action: "*" }] } };
    },
    unchanged: async (f, admin) => {
      const listed = await api("GET", "/api/roles", { token: admin.token });
      expect(listed.body.items.find((r: { name: string }) => r.name === f.roleName).permissions).toEqual([{ resource: "metrics", action: "read" }]);
    },
  },
  {
    route: "DELETE /api/roles/:name", allowed: ["admin"], success: 204,
    request: async (f) => {
      f.roleName = await newCustomRole();
      return { method: "DELETE", path: `/api/roles/${f.roleName}` };
    },
    unchanged: async (f, admin) => {
      const listed = await api("GET", "/api/roles", { token: admin.token });
      expect(listed.body.items.some((r: { name: string }) => r.name === f.roleName)).toBe(true);
    },
  },
  { route: "GET /api/ai/decisions", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/ai/decisions" }) },
  { route: "GET /api/ai/decisions/totals", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/ai/decisions/totals?groupBy=model" }) },
  { route: "GET /api/ai/prices", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/ai/prices" }) },
  {
    route: "PUT /api/ai/prices", allowed: ["admin"], success: 200,
    request: async () => ({ method: "PUT", path: "/api/ai/prices", body: { provider: "rbac", model: unique("m"), inputUsdPerMtok: 1, outputUsdPerMtok: 2 } }),
  },
  {
    route: "DELETE /api/ai/prices/:id", allowed: ["admin"], success: 204,
    request: async () => {
      const res = await api("PUT", "/api/ai/prices", { token: users.admin.token, body: { provider: "rbac", model: unique("m"), inputUsdPerMtok: 1, outputUsdPerMtok: 2 } });
      return { method: "DELETE", path: `/api/ai/prices/${res.body.id}` };
    },
  },
  { route: "GET /api/quotas", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/quotas" }) },
  { route: "GET /api/quotas/:team", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: `/api/quotas/${await newQuotaTeam()}` }) },
  { route: "GET /api/quotas/:team/usage", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: `/api/quotas/${await newQuotaTeam()}/usage` }) },
  {
    route: "PUT /api/quotas/:team", allowed: ["admin"], success: 201,
    request: async () => {
      governed.team = unique("rbac");
      return { method: "PUT", path: `/api/quotas/${governed.team}`, body: { maxInstances: 0 } };
    },
    unchanged: async (_f, admin) => expect((await api("GET", `/api/quotas/${governed.team}`, { token: admin.token })).status).toBe(404),
  },
  {
    route: "DELETE /api/quotas/:team", allowed: ["admin"], success: 204,
    request: async () => ({ method: "DELETE", path: `/api/quotas/${await newQuotaTeam()}` }),
    unchanged: async (_f, admin) => expect((await api("GET", `/api/quotas/${governed.team}`, { token: admin.token })).status).toBe(200),
  },
  { route: "GET /api/policies", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/policies" }) },
  { route: "GET /api/policies/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: `/api/policies/${await newPolicy()}` }) },
  {
    route: "POST /api/policies", allowed: ["admin"], success: 201,
    request: async () => ({ method: "POST", path: "/api/policies", body: { name: unique("rbac"), kind: "max_replicas", rule: { max: 1 }, enabled: false } }),
  },
  {
    route: "PATCH /api/policies/:id", allowed: ["admin"], success: 200,
    request: async () => ({ method: "PATCH", path: `/api/policies/${await newPolicy()}`, body: { rule: { max: 5 } } }),
    unchanged: async (_f, admin) => expect((await api("GET", `/api/policies/${governed.policyId}`, { token: admin.token })).body.rule.max).toBe(1),
  },
  {
    route: "DELETE /api/policies/:id", allowed: ["admin"], success: 204,
    request: async () => ({ method: "DELETE", path: `/api/policies/${await newPolicy()}` }),
    unchanged: async (_f, admin) => expect((await api("GET", `/api/policies/${governed.policyId}`, { token: admin.token })).status).toBe(200),
  },
  {
    route: "POST /api/policies/evaluate", allowed: ["admin", "operator", "viewer"], success: 200,
    request: async (f) => ({ method: "POST", path: "/api/policies/evaluate", body: { action: "scale", instanceId: f.instanceId, replicas: 1 } }),
  },
  // Alerts: rules are created disabled so the evaluation job never fires them meanwhile.
  { route: "GET /api/alerts", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/alerts" }) },
  { route: "GET /api/alerts/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: `/api/alerts/${await newFiringAlert()}` }) },
  {
    route: "POST /api/alerts/:id/ack", allowed: ["admin", "operator"], success: 200,
    request: async () => ({ method: "POST", path: `/api/alerts/${await newFiringAlert()}/ack` }),
    unchanged: async (_f, admin) => expect((await api("GET", `/api/alerts/${alerting.alertId}`, { token: admin.token })).body.status).toBe("firing"),
  },
  { route: "GET /api/alerts/notifications", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/alerts/notifications?status=dead" }) },
  { route: "GET /api/alerts/rules", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/alerts/rules" }) },
  { route: "GET /api/alerts/rules/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: `/api/alerts/rules/${await newAlertRule()}` }) },
  {
    route: "POST /api/alerts/rules", allowed: ["admin"], success: 201,
    request: async () => ({ method: "POST", path: "/api/alerts/rules", body: { team: unique("rbac"), name: "down", kind: "instance_down", enabled: false } }),
  },
  {
    route: "PATCH /api/alerts/rules/:id", allowed: ["admin", "operator"], success: 200,
    request: async () => ({ method: "PATCH", path: `/api/alerts/rules/${await newAlertRule()}`, body: { params: { minutes: 9 } } }),
    unchanged: async (_f, admin) => expect((await api("GET", `/api/alerts/rules/${alerting.ruleId}`, { token: admin.token })).body.params.minutes).toBe(5),
  },
  {
    route: "DELETE /api/alerts/rules/:id", allowed: ["admin"], success: 204,
    request: async () => ({ method: "DELETE", path: `/api/alerts/rules/${await newAlertRule()}` }),
    unchanged: async (_f, admin) => expect((await api("GET", `/api/alerts/rules/${alerting.ruleId}`, { token: admin.token })).status).toBe(200),
  },
  { route: "GET /api/alerts/channels", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/alerts/channels" }) },
  { route: "GET /api/alerts/channels/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: `/api/alerts/channels/${await newAlertChannel()}` }) },
  {
    route: "POST /api/alerts/channels", allowed: ["admin"], success: 201,
    request: async () => ({ method: "POST", path: "/api/alerts/channels", body: { team: unique("rbac"), name: "hook", kind: "webhook", url: "http://127.0.0.1:9/hook" } }),
  },
  {
    route: "DELETE /api/alerts/channels/:id", allowed: ["admin"], success: 204,
    request: async () => ({ method: "DELETE", path: `/api/alerts/channels/${await newAlertChannel()}` }),
    unchanged: async (_f, admin) => expect((await api("GET", `/api/alerts/channels/${alerting.channelId}`, { token: admin.token })).status).toBe(200),
  },
  // Deployments: the fixture instance is made "running" (what a bridge would report) so a create can start.
  {
    route: "POST /api/deployments", allowed: ["admin", "operator"], success: 202,
    request: async (f) => {
      await runningInstance(f);
      return { method: "POST", path: "/api/deployments", body: { instanceId: f.instanceId, flows: [{ id: "t", type: "tab" }] } };
    },
    unchanged: async (f, admin) => {
      const res = await api("GET", `/api/deployments?instanceId=${f.instanceId}`, { token: admin.token });
      expect(res.body.items).toEqual([]);
    },
  },
  { route: "GET /api/deployments", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/deployments?limit=5" }) },
  { route: "GET /api/deployments/versions", allowed: ["admin", "operator", "viewer"], success: 200, request: async (f) => ({ method: "GET", path: `/api/deployments/versions?instanceId=${f.instanceId}` }) },
  {
    route: "GET /api/deployments/versions/:id", allowed: ["admin", "operator", "viewer"], success: 200,
    request: async (f) => {
      const versions = await api("GET", `/api/deployments/versions?instanceId=${f.instanceId}`, { token: users.admin.token });
      return { method: "GET", path: `/api/deployments/versions/${versions.body.items[0].id}` };
    },
  },
  { route: "GET /api/deployments/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async (f) => ({ method: "GET", path: `/api/deployments/${await startedDeployment(f)}` }) },
  // Allowed callers pass RBAC and reach the state check (a deployment waiting on its first step is neither paused nor rollbackable yet): 409.
  ...(["promote", "abort", "rollback"] as const).map((what): RouteCase => ({
    route: `POST /api/deployments/:id/${what}`, allowed: ["admin", "operator"], success: 409,
    request: async (f) => ({ method: "POST", path: `/api/deployments/${await startedDeployment(f)}/${what}` }),
    unchanged: async (f, admin) => {
      const res = await api("GET", `/api/deployments?instanceId=${f.instanceId}`, { token: admin.token });
      expect(res.body.items[0].status).toBe("in_progress");
    },
  })),
  // Pipelines and CI hooks take the deployments permissions; approving a promotion takes deployments:approve,
  // which of the built-in roles only admins have (operators request, a second person approves: docs/ci.md).
  { route: "GET /api/pipelines", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/pipelines" }) },
  {
    route: "POST /api/pipelines", allowed: ["admin", "operator"], success: 201,
    request: async () => ({ method: "POST", path: "/api/pipelines", body: { name: unique("rbac"), stages: [{ name: "prod", selector: "rbac=none" }] } }),
  },
  {
    route: "POST /api/pipelines/promotions/:id/approve", allowed: ["admin"], success: 202,
    request: async (f) => ({ method: "POST", path: `/api/pipelines/promotions/${await awaitingPromotion(f)}/approve` }),
    unchanged: async (_f, admin) => {
      const res = await api("GET", `/api/pipelines/promotions/${promoting.id}`, { token: admin.token });
      expect(res.body).toMatchObject({ status: "awaiting_approval", rolloutId: null });
    },
  },
  { route: "GET /api/webhooks/ci", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/webhooks/ci" }) },
  {
    route: "POST /api/webhooks/ci", allowed: ["admin", "operator"], success: 201,
    request: async () => ({ method: "POST", path: "/api/webhooks/ci", body: { name: unique("rbac"), action: { kind: "rollout", selector: "rbac=none" } } }),
  },
  // Rollouts take the deployments permissions. Their targets are instances of their own that never run, so a started
  // rollout fails its one instance (instance_not_running) and touches nothing else; actions on it (ended) are 409.
  { route: "GET /api/rollouts", allowed: ["admin", "operator", "viewer"], success: 200, request: async () => ({ method: "GET", path: "/api/rollouts?limit=5" }) },
  { route: "GET /api/rollouts/:id", allowed: ["admin", "operator", "viewer"], success: 200, request: async (f) => ({ method: "GET", path: `/api/rollouts/${await endedRollout(f)}` }) },
  {
    route: "POST /api/rollouts", allowed: ["admin", "operator"], success: 202,
    request: async (f) => ({ method: "POST", path: "/api/rollouts", body: { selector: `rbac-rollout=${await rolloutTarget(f)}`, flows: [{ id: "t", type: "tab" }] } }),
  },
  ...(["pause", "resume", "approve", "abort"] as const).map((what): RouteCase => ({
    route: `POST /api/rollouts/:id/${what}`, allowed: ["admin", "operator"], success: 409,
    request: async (f) => ({ method: "POST", path: `/api/rollouts/${await endedRollout(f)}/${what}` }),
  })),
  // Compliance: reports, config (schedules off so nothing is synced to a non-loopback URL), re-seal.
  {
    route: "POST /api/reports", allowed: ["admin"], success: 201,
    request: async () => ({ method: "POST", path: "/api/reports", body: { kind: "data_retention", ...reportRange() } }),
  },
  { route: "GET /api/reports", allowed: ["admin"], success: 200, request: async () => ({ method: "GET", path: "/api/reports" }) },
  { route: "GET /api/reports/:id", allowed: ["admin"], success: 200, request: async () => ({ method: "GET", path: `/api/reports/${await newReport()}` }) },
  { route: "GET /api/reports/:id/download", allowed: ["admin"], success: 200, request: async () => ({ method: "GET", path: `/api/reports/${await newReport()}/download` }) },
  { route: "GET /api/config", allowed: ["admin"], success: 200, request: async () => ({ method: "GET", path: "/api/config" }) },
  {
    route: "PUT /api/config", allowed: ["admin"], success: 200,
    request: async () => ({ method: "PUT", path: "/api/config", body: { reports: { schedule: null, kinds: ["audit_trail"] }, retention: { audit_logs: null, ai_decision_logs: null, instance_health: null } } }),
  },
  { route: "GET /api/admin/encryption", allowed: ["admin"], success: 200, request: async () => ({ method: "GET", path: "/api/admin/encryption" }) },
  { route: "POST /api/admin/reseal", allowed: ["admin"], success: 200, request: async () => ({ method: "POST", path: "/api/admin/reseal", body: {} }) },
];

const reportRange = () => ({ from: new Date(Date.now() - 60_000).toISOString(), to: new Date(Date.now() + 60_000).toISOString() });

/** A small report made by the admin, as a target for GET /api/reports/:id(/download). */
async function newReport(): Promise<string> {
  const res = await api("POST", "/api/reports", { token: users.admin.token, body: { kind: "data_retention", ...reportRange() } });
  if (res.status !== 201) throw new Error(`report create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** A pending instance (it never runs) labelled with a value of its own; returns that value. */
async function rolloutTarget(f: Fixture): Promise<string> {
  const value = unique("r");
  const res = await api("POST", "/api/instances", { token: users.admin.token, body: { name: unique("rbac"), clusterId: f.clusterId, labels: { "rbac-rollout": value } } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return value;
}

/**
 * A rollout an admin started on a target that never runs: it fails inside its start (the one instance is refused
 * as not running), so every action on it is a 409. Made once: each case only needs an id to act on.
 */
let ended: Promise<string> | undefined;
function endedRollout(f: Fixture): Promise<string> {
  ended ??= (async () => {
    const res = await api("POST", "/api/rollouts", { token: users.admin.token, body: { selector: `rbac-rollout=${await rolloutTarget(f)}`, flows: [] } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.status).toBe("failed");
    return res.body.id as string;
  })();
  return ended;
}

async function runningInstance(f: Fixture): Promise<void> {
  await withDb((db) => db.update(instances).set({ status: "running" }).where(eq(instances.id, f.instanceId)));
}

/** A deployment started by an admin on the fixture's instance (it waits for a bridge that never answers). */
async function startedDeployment(f: Fixture): Promise<string> {
  await runningInstance(f);
  const res = await api("POST", "/api/deployments", { token: users.admin.token, body: { instanceId: f.instanceId, flows: [] } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id;
}

/** The promotion the last approve case made (for its `unchanged` check), requested by an operator none of the callers is. */
const promoting: { id?: string; requester?: TestUser } = {};

/** A promotion awaiting approval onto a stage that selects the fixture's instance. */
async function awaitingPromotion(f: Fixture): Promise<string> {
  const label = unique("rbac");
  await withDb((db) => db.update(instances).set({ labels: { rbac: label } }).where(eq(instances.id, f.instanceId)));
  const pipeline = await api("POST", "/api/pipelines", { token: users.admin.token, body: { name: unique("rbac"), stages: [{ name: "prod", selector: `rbac=${label}`, requiresApproval: true }] } });
  if (pipeline.status !== 201) throw new Error(`pipeline create failed: ${pipeline.status} ${JSON.stringify(pipeline.body)}`);
  promoting.requester ??= await createUser("operator");
  const res = await api("POST", `/api/pipelines/${pipeline.body.id}/stages/prod/promote`, { token: promoting.requester.token, body: { flows: [{ id: "t", type: "tab" }] } });
  if (res.status !== 202) throw new Error(`promote failed: ${res.status} ${JSON.stringify(res.body)}`);
  promoting.id = res.body.id;
  return res.body.id;
}

/** A custom role made by the admin, as a target for PATCH/DELETE /api/roles/:name. */
async function newCustomRole(): Promise<string> {
  const name = unique("rbac");
  const res = await api("POST", "/api/roles", { token: users.admin.token, body: { name, permissions: [{ resource: "metrics", action: "read" }] } });
  if (res.status !== 201) throw new Error(`role create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return name;
}

/** Targets for the quota and policy rows (the last one made, for their `unchanged` checks). */
const governed: { team?: string; policyId?: string } = {};

/** A quota on a team of its own (no instances are in it, so it limits nothing). */
async function newQuotaTeam(): Promise<string> {
  governed.team = unique("rbac");
  const res = await api("PUT", `/api/quotas/${governed.team}`, { token: users.admin.token, body: { maxInstances: 5 } });
  if (res.status !== 201) throw new Error(`quota put failed: ${res.status} ${JSON.stringify(res.body)}`);
  return governed.team;
}

/** A disabled policy, so it denies nothing while the matrix runs. */
async function newPolicy(): Promise<string> {
  const res = await api("POST", "/api/policies", { token: users.admin.token, body: { name: unique("rbac"), kind: "max_replicas", rule: { max: 1 }, enabled: false } });
  if (res.status !== 201) throw new Error(`policy create failed: ${res.status} ${JSON.stringify(res.body)}`);
  governed.policyId = res.body.id;
  return res.body.id;
}

/** Targets for the alert rows (the last one made, for their `unchanged` checks). */
const alerting: { alertId?: string; ruleId?: string; channelId?: string } = {};

/** A firing alert of no rule, on a team of its own (written directly: evaluation is tested in alerts.test.ts). */
async function newFiringAlert(): Promise<string> {
  const now = new Date();
  const [row] = await withDb((db) => db.insert(alerts).values({
    team: unique("rbac"), kind: "instance_down", severity: "warning", subject: crypto.randomUUID(), status: "firing", summary: "rbac", startedAt: now, firedAt: now,
  }).returning());
  alerting.alertId = row!.id;
  return row!.id;
}

async function newAlertRule(): Promise<string> {
  const res = await api("POST", "/api/alerts/rules", { token: users.admin.token, body: { team: unique("rbac"), name: "ready", kind: "instance_not_ready", enabled: false } });
  if (res.status !== 201) throw new Error(`alert rule create failed: ${res.status} ${JSON.stringify(res.body)}`);
  alerting.ruleId = res.body.id;
  return res.body.id;
}

async function newAlertChannel(): Promise<string> {
  const res = await api("POST", "/api/alerts/channels", { token: users.admin.token, body: { team: unique("rbac"), name: "hook", kind: "slack", url: "http://127.0.0.1:9/slack" } });
  if (res.status !== 201) throw new Error(`alert channel create failed: ${res.status} ${JSON.stringify(res.body)}`);
  alerting.channelId = res.body.id;
  return res.body.id;
}

beforeAll(async () => {
  // Upsert: the role may already exist when the test database is reused.
  await withDb((db) => db.insert(roles).values({ name: "auditor", permissions: AUDITOR_PERMISSIONS })
    .onConflictDoUpdate({ target: roles.name, set: { permissions: AUDITOR_PERMISSIONS } }));
  users = {
    admin: await createUser("admin"), operator: await createUser("operator"), viewer: await createUser("viewer"),
    auditor: await createUser("auditor"),
  };
});

describe.each(CASES)("$route", (rc) => {
  it.each(ROLES)("as %s", async (role) => {
    const admin = users.admin;
    const f = await freshFixture(admin);
    const req = await rc.request(f, users[role]);
    const res = await api(req.method, req.path, { token: users[role].token, body: req.body });
    const allowed = rc.allowed === "public" || rc.allowed.includes(role);
    if (allowed) {
      expect(res.status, JSON.stringify(res.body)).toBe(rc.success);
    } else {
      expect(res.status, JSON.stringify(res.body)).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
      await rc.unchanged?.(f, admin);
    }
  });

  it("without credentials", async () => {
    const f = await freshFixture(users.admin);
    const req = await rc.request(f, users.admin);
    const res = await api(req.method, req.path, { body: req.body });
    if (rc.allowed === "public") {
      expect(res.status).toBe(rc.success);
    } else {
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("unauthenticated");
      expect(res.headers.get("WWW-Authenticate")).toContain("Bearer");
    }
  });
});
