/**
 * The policy engine: rules validated on write against their kind, denials
 * that name the policy and say why, enforced where the action happens
 * (scale, the deployment gate) and answered without acting by /evaluate.
 * Policies are global, so every rule here selects only this file's instances
 * (a unique cluster label, a unique name prefix or a unique team).
 */
import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it, vi } from "vitest";
import { instances } from "../../db/schema.ts";
import { ApiError } from "../../core/errors.ts";
import { assertDeploymentAllowed } from "../../core/governance/deploymentGate.ts";
import { evaluateModelPolicy, insideWindow, ruleShapes, selects, type Policy } from "../../core/governance/policies.ts";
import { openKv } from "../../core/platform/kv.ts";
import { adminLogin, api, createCluster, createUser, expectErrorShape, unique, withDb } from "./helpers.ts";

const made: string[] = [];
afterAll(async () => {
  const token = await adminLogin();
  for (const id of made) await api("DELETE", `/api/policies/${id}`, { token });
});

async function newPolicy(token: string, body: Record<string, unknown>) {
  const res = await api("POST", "/api/policies", { token, body: { name: unique("p"), ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  made.push(res.body.id);
  return res.body as { id: string; name: string; kind: string; rule: any; enabled: boolean };
}

async function instanceOn(token: string, clusterId: string, name = unique("i")) {
  const res = await api("POST", "/api/instances", { token, body: { name, clusterId } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; name: string };
}

describe("policies API", () => {
  it("an admin creates, lists, disables and deletes a policy; viewers read; names are unique", async () => {
    const admin = await createUser("admin");
    const p = await newPolicy(admin.token, { kind: "approved_models", rule: { models: ["gpt-4o-mini"], selector: { team: unique("nobody") } } });
    expect(p).toMatchObject({ kind: "approved_models", enabled: true, rule: { models: ["gpt-4o-mini"] } });
    const viewer = await createUser("viewer");
    const listed = await api("GET", "/api/policies", { token: viewer.token });
    expect(listed.body.items.map((x: { id: string }) => x.id)).toContain(p.id);
    expect((await api("GET", `/api/policies/${p.id}`, { token: viewer.token })).body.name).toBe(p.name);

    const dup = await api("POST", "/api/policies", { token: admin.token, body: { name: p.name, kind: "max_replicas", rule: { max: 1 } } });
    expect(dup.status).toBe(409);
    expectErrorShape(dup.body, "policy_exists");

    const off = await api("PATCH", `/api/policies/${p.id}`, { token: admin.token, body: { enabled: false, rule: { models: ["a", "b"] } } });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ enabled: false, rule: { models: ["a", "b"] } });

    expect((await api("DELETE", `/api/policies/${p.id}`, { token: admin.token })).status).toBe(204);
    expect((await api("GET", `/api/policies/${p.id}`, { token: admin.token })).status).toBe(404);
  });

  it("rules are validated on write against their kind: 400 validation_failed naming the field", async () => {
    const admin = await createUser("admin");
    const cases: [Record<string, unknown>, string][] = [
      [{ kind: "no_such_kind", rule: {} }, "kind"],
      [{ kind: "approved_models", rule: { models: [] } }, "rule.models"],
      [{ kind: "approved_models", rule: { models: ["x"], extra: 1 } }, "rule"],
      [{ kind: "deployment_window", rule: { days: ["mon"], start: "25:00", end: "17:00" } }, "rule.start"],
      [{ kind: "deployment_window", rule: { days: ["funday"], start: "09:00", end: "17:00" } }, "rule.days.0"],
      [{ kind: "deployment_window", rule: { days: ["mon"], start: "09:00", end: "17:00", timezone: "Mars/Olympus" } }, "rule.timezone"],
      [{ kind: "deployment_window", rule: { days: ["mon"], start: "09:00", end: "09:00" } }, "rule.end"],
      [{ kind: "max_replicas", rule: { max: -1 } }, "rule.max"],
      [{ kind: "max_replicas", rule: { max: 2, selector: { namePattern: "Prod_*" } } }, "rule.selector.namePattern"],
    ];
    for (const [body, path] of cases) {
      const res = await api("POST", "/api/policies", { token: admin.token, body: { name: unique("bad"), ...body } });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expectErrorShape(res.body, "validation_failed");
      expect(res.body.error.details.map((d: { path: string }) => d.path), JSON.stringify(res.body)).toContain(path);
    }
    const p = await newPolicy(admin.token, { kind: "max_replicas", rule: { max: 3, selector: { team: unique("nobody") } } });
    const badPatch = await api("PATCH", `/api/policies/${p.id}`, { token: admin.token, body: { rule: { max: "lots" } } });
    expect(badPatch.status).toBe(400);
    expect((await api("GET", `/api/policies/${p.id}`, { token: admin.token })).body.rule.max).toBe(3);
  });
});

describe("approved models (evaluateModelPolicy)", () => {
  const policy = (rule: unknown, enabled = true): Policy => ({ name: "llm-allowlist", kind: "approved_models", rule, enabled });
  const facts = { name: "chatbot", team: "support", labels: {} };

  it("denies a model or provider not on the list, with the policy and a reason", () => {
    const list = [policy({ models: ["gpt-4o-mini", "claude-haiku"], providers: ["openai", "anthropic"] })];
    expect(evaluateModelPolicy(list, { model: "gpt-4o-mini", provider: "openai" })).toEqual({ allowed: true });
    const model = evaluateModelPolicy(list, { model: "gpt-5", provider: "openai" });
    expect(model).toMatchObject({ allowed: false, policy: "llm-allowlist", kind: "approved_models" });
    expect(model.allowed === false && model.reason).toContain("gpt-5");
    const provider = evaluateModelPolicy(list, { model: "claude-haiku", provider: "someone-else" });
    expect(provider.allowed === false && provider.reason).toContain("someone-else");
  });

  it("ignores disabled policies, and scoped ones for calls they do not select", () => {
    expect(evaluateModelPolicy([policy({ models: ["a"] }, false)], { model: "b" }).allowed).toBe(true);
    const scoped = [policy({ models: ["a"], selector: { team: "research" } })];
    expect(evaluateModelPolicy(scoped, { model: "b", instance: facts }).allowed).toBe(true);
    expect(evaluateModelPolicy(scoped, { model: "b", instance: { ...facts, team: "research" } }).allowed).toBe(false);
  });

  it("POST /evaluate answers for a model call", async () => {
    const admin = await createUser("admin");
    const label = unique("ai");
    const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("c"), labels: { suite: label } } })).body;
    const inst = await instanceOn(admin.token, cluster.id);
    const p = await newPolicy(admin.token, { kind: "approved_models", rule: { models: ["small-model"], selector: { labels: { suite: label } } } });
    const viewer = await createUser("viewer");
    const denied = await api("POST", "/api/policies/evaluate", { token: viewer.token, body: { action: "model_call", model: "huge-model", instanceId: inst.id } });
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({ allowed: false, policy: p.name });
    const ok = await api("POST", "/api/policies/evaluate", { token: viewer.token, body: { action: "model_call", model: "small-model", instanceId: inst.id } });
    expect(ok.body).toEqual({ allowed: true });
  });
});

describe("deployment windows", () => {
  const window = (r: Record<string, unknown>) => ruleShapes.deployment_window.parse(r);

  it("checks day and time in the rule's time zone, including windows past midnight", () => {
    const office = window({ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00", timezone: "America/New_York" });
    // 2030-03-11 is a Monday; New York is on EDT (UTC-4) by then.
    expect(insideWindow(office, new Date("2030-03-11T14:00:00Z"))).toBe(true);
    expect(insideWindow(office, new Date("2030-03-11T21:00:00Z"))).toBe(false);
    expect(insideWindow(office, new Date("2030-03-16T14:00:00Z"))).toBe(false);
    const night = window({ days: ["fri"], start: "22:00", end: "02:00" });
    expect(insideWindow(night, new Date("2030-03-15T23:00:00Z"))).toBe(true);
    // Saturday 01:00 still belongs to Friday's window; Friday 01:00 belongs to Thursday's.
    expect(insideWindow(night, new Date("2030-03-16T01:00:00Z"))).toBe(true);
    expect(insideWindow(night, new Date("2030-03-15T01:00:00Z"))).toBe(false);
  });

  it("no deployments to prod instances outside the window: 403 POLICY_DENIED from the gate, the same answer from /evaluate", async () => {
    const admin = await createUser("admin");
    const env_ = unique("prod");
    const prod = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("c"), labels: { env: env_ } } })).body;
    const dev = await createCluster(admin.token);
    const prodInst = await instanceOn(admin.token, prod.id);
    const devInst = await instanceOn(admin.token, dev.id);
    const p = await newPolicy(admin.token, {
      kind: "deployment_window",
      rule: { selector: { labels: { env: env_ } }, days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00" },
    });
    const saturday = new Date("2030-03-16T10:00:00Z");
    const monday = new Date("2030-03-11T10:00:00Z");
    const gate = async (id: string, now: Date) => {
      const [instance] = await withDb((db) => db.select().from(instances).where(eq(instances.id, id)));
      try {
        await withDb((db) => assertDeploymentAllowed({ db, kv: openKv(env) }, { instance: instance!, now }));
        return undefined;
      } catch (err) {
        if (err instanceof ApiError) return err;
        throw err;
      }
    };
    const denied = await gate(prodInst.id, saturday);
    expect(denied?.status).toBe(403);
    expect(denied?.code).toBe("POLICY_DENIED");
    expect(denied?.details).toMatchObject({ policy: p.name, kind: "deployment_window" });
    expect(denied?.message).toContain("09:00–17:00");
    expect(await gate(prodInst.id, monday)).toBeUndefined();
    expect(await gate(devInst.id, saturday)).toBeUndefined();

    const operator = await createUser("operator");
    const dry = await api("POST", "/api/policies/evaluate", { token: operator.token, body: { action: "deploy", instanceId: prodInst.id, at: saturday.toISOString() } });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ allowed: false, code: "POLICY_DENIED", policy: p.name });
    expect(dry.body.reason).toContain(prodInst.name);
    const inWindow = await api("POST", "/api/policies/evaluate", { token: operator.token, body: { action: "deploy", instanceId: prodInst.id, at: monday.toISOString() } });
    expect(inWindow.body).toEqual({ allowed: true });

    // Disabled, it no longer denies.
    await api("PATCH", `/api/policies/${p.id}`, { token: admin.token, body: { enabled: false } });
    expect(await gate(prodInst.id, saturday)).toBeUndefined();
  });
});

describe("max replicas", () => {
  it("scaling past a policy's maximum is 403 POLICY_DENIED and changes nothing; /evaluate does not act", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const prefix = `big${crypto.randomUUID().slice(0, 6)}`;
    const big = await instanceOn(admin.token, cluster.id, `${prefix}-one`);
    const other = await instanceOn(admin.token, cluster.id);
    const p = await newPolicy(admin.token, { kind: "max_replicas", rule: { selector: { namePattern: `${prefix}-*` }, max: 2 } });

    const dry = await api("POST", "/api/policies/evaluate", { token: admin.token, body: { action: "scale", instanceId: big.id, replicas: 3 } });
    expect(dry.body).toMatchObject({ allowed: false, policy: p.name, kind: "max_replicas" });
    expect((await api("GET", `/api/instances/${big.id}`, { token: admin.token })).body.replicas).toBe(1);

    const denied = await api("POST", `/api/instances/${big.id}/scale`, { token: admin.token, body: { replicas: 3 } });
    expect(denied.status).toBe(403);
    expectErrorShape(denied.body, "POLICY_DENIED");
    expect(denied.body.error.details).toMatchObject({ policy: p.name });
    expect((await api("GET", `/api/instances/${big.id}`, { token: admin.token })).body.replicas).toBe(1);
    expect((await api("POST", `/api/instances/${big.id}/scale`, { token: admin.token, body: { replicas: 2 } })).status).toBe(202);
    expect((await api("POST", `/api/instances/${other.id}/scale`, { token: admin.token, body: { replicas: 3 } })).status).toBe(202);
  });

  it("evaluate rejects malformed actions with 400 and unknown instances with 404", async () => {
    const admin = await createUser("admin");
    const bad = await api("POST", "/api/policies/evaluate", { token: admin.token, body: { action: "launch_rockets" } });
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "validation_failed");
    const missing = await api("POST", "/api/policies/evaluate", { token: admin.token, body: { action: "deploy", instanceId: crypto.randomUUID() } });
    expect(missing.status).toBe(404);
    expectErrorShape(missing.body, "instance_not_found");
  });
});

describe("namePattern globs (issue 12, item 6)", () => {
  it("selecting by the worst 63-character pattern builds no RegExp (a backtracking one blocked the Worker)", () => {
    const pattern = `${"*a".repeat(31)}*`.slice(0, 62) + "b";
    const built: string[] = [];
    vi.stubGlobal("RegExp", new Proxy(RegExp, {
      construct(_target, args) {
        built.push(String(args[0]));
        throw new Error("a RegExp was built from a policy pattern");
      },
    }));
    try {
      expect(selects({ namePattern: pattern }, { name: "a".repeat(63), team: "t", labels: {} })).toBe(false);
      expect(selects({ namePattern: "prod-*" }, { name: "prod-1", team: "t", labels: {} })).toBe(true);
      expect(selects({ namePattern: "prod-*" }, { name: "dev-1", team: "t", labels: {} })).toBe(false);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(built).toEqual([]);
  });

  it("a policy with a hostile pattern is enforced through the API like any other", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const prefix = `re${crypto.randomUUID().slice(0, 6)}`;
    const hit = await instanceOn(admin.token, cluster.id, `${prefix}-${"a".repeat(40)}b`);
    const miss = await instanceOn(admin.token, cluster.id, `${prefix}-${"a".repeat(24)}`);
    const p = await newPolicy(admin.token, { kind: "max_replicas", rule: { selector: { namePattern: `${prefix}-*a*a*a*a*a*a*a*a*a*a*a*a*b` }, max: 1 } });
    const denied = await api("POST", "/api/policies/evaluate", { token: admin.token, body: { action: "scale", instanceId: hit.id, replicas: 2 } });
    expect(denied.body).toMatchObject({ allowed: false, policy: p.name });
    const allowed = await api("POST", "/api/policies/evaluate", { token: admin.token, body: { action: "scale", instanceId: miss.id, replicas: 2 } });
    expect(allowed.body).toMatchObject({ allowed: true });
  });
});
