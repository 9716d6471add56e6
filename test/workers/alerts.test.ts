/**
 * Alerts evaluated by the control plane: rule validation, the lifecycle
 * (pending → firing → acknowledged → resolved, dedupe, flap protection),
 * fleet:alert on /ws/fleet, channels whose secrets never come back, and the
 * dead letter of a delivery that finally fails. The evaluation job is called
 * signed, as QStash calls it; time moves only through its `at` field.
 */
import { env, SELF } from "cloudflare:test";
import { and, eq, inArray } from "drizzle-orm";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alertNotifications, alertRules, alerts, auditLogs, deployments, instanceHealth, instances } from "../../db/schema.ts";
import { addTokens } from "../../core/governance/tokenUsage.ts";
import { openKv } from "../../core/platform/kv.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";
import { call, callJob, PUBLIC_URL } from "./qstashJobs.ts";

let admin: TestUser;
let operator: TestUser;
let viewer: TestUser;

beforeAll(async () => {
  [admin, operator, viewer] = await Promise.all([createUser("admin"), createUser("operator"), createUser("viewer")]);
});

const evaluate = async (at?: Date) => {
  const res = await callJob("/api/jobs/alerts-evaluate", at ? { at: at.toISOString() } : {});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
};

async function alertsOf(team: string) {
  const res = await api("GET", `/api/alerts?team=${team}`, { token: viewer.token });
  expect(res.status).toBe(200);
  return res.body.items as any[];
}

/** An instance of its own team, with its status set as a bridge report would. */
async function teamInstance(team: string, status: string) {
  const cluster = await createCluster(admin.token);
  const inst = await createInstance(admin.token, cluster.id);
  await setStatus(inst.id, status, team);
  return inst;
}

const setStatus = (id: string, status: string, team?: string, reason: string | null = null) =>
  withDb((db) => db.update(instances).set({ status, statusReason: reason, ...(team ? { team } : {}) }).where(eq(instances.id, id)));

const createdRules: string[] = [];
async function createRule(body: Record<string, unknown>) {
  const res = await api("POST", "/api/alerts/rules", { token: admin.token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  createdRules.push(res.body.id);
  return res.body;
}

// The test database outlives a run: rules left enabled would be evaluated by every later run.
afterAll(async () => {
  if (createdRules.length) await withDb((db) => db.update(alertRules).set({ enabled: false }).where(inArray(alertRules.id, createdRules)));
});

/** A /ws/fleet watcher that collects fleet:alert events. */
async function watchFleet(token: string) {
  const res = await SELF.fetch(`http://redforge.test/ws/fleet?token=${token}`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const events: any[] = [];
  ws.addEventListener("message", (e) => events.push(JSON.parse(e.data as string)));
  ws.accept();
  const waitFor = async (match: (e: any) => boolean) => {
    for (let i = 0; i < 500; i++) {
      const found = events.find((e) => e.event === "fleet:alert" && match(e.data));
      if (found) return found.data;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no matching fleet:alert among ${JSON.stringify(events)}`);
  };
  return { ws, events, waitFor };
}

describe("alert rules are validated on write", () => {
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ["minutes below 1", { kind: "instance_not_ready", params: { minutes: 0 } }, "params.minutes"],
    ["an unknown param", { kind: "instance_down", params: { minutes: 3 } }, "params"],
    ["a cost budget without dailyBudget", { kind: "ai_budget", params: { metric: "cost" } }, "params.dailyBudget"],
    ["a threshold over 1000 %", { kind: "ai_budget", params: { metric: "tokens", thresholdsPercent: [80, 5000] } }, "params.thresholdsPercent.1"],
    ["a non-positive rate", { kind: "webhook_signature_failures", params: { perSecond: 0 } }, "params.perSecond"],
    ["an unknown kind", { kind: "cpu_high" }, "kind"],
    ["clearEvaluations of 0", { kind: "instance_down", clearEvaluations: 0 }, "clearEvaluations"],
    ["a team with a slash", { kind: "instance_down", team: "a/b" }, "team"],
  ];
  it.each(bad)("%s → 400 naming the field", async (_what, body, path) => {
    const res = await api("POST", "/api/alerts/rules", { token: admin.token, body: { team: unique("t"), name: "r", ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expectErrorShape(res.body, "validation_failed");
    expect(res.body.error.details.map((d: any) => d.path)).toContain(path);
  });

  it("fills in defaults, refuses a second rule of the same name in a team, and patches params against the kind", async () => {
    const team = unique("t");
    const rule = await createRule({ team, name: "ready", kind: "instance_not_ready", enabled: false });
    expect(rule).toMatchObject({ team, kind: "instance_not_ready", params: { minutes: 5 }, severity: "warning", clearEvaluations: 2, enabled: false });
    const again = await api("POST", "/api/alerts/rules", { token: admin.token, body: { team, name: "ready", kind: "instance_down" } });
    expect(again.status).toBe(409);
    expectErrorShape(again.body, "alert_rule_exists");
    const patched = await api("PATCH", `/api/alerts/rules/${rule.id}`, { token: operator.token, body: { params: { minutes: 1441 } } });
    expect(patched.status).toBe(400);
    expect(patched.body.error.details[0].path).toBe("params.minutes");
    const ok = await api("PATCH", `/api/alerts/rules/${rule.id}`, { token: operator.token, body: { params: { minutes: 10 }, severity: "critical" } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ params: { minutes: 10 }, severity: "critical" });
    const audited = await withDb((db) => db.select().from(auditLogs).where(and(eq(auditLogs.resourceId, rule.id), eq(auditLogs.action, "ALERT_RULE_UPDATED"))));
    expect(audited).toHaveLength(1);
  });
});

describe("alert lifecycle", () => {
  it("an instance whose Node-RED crashed and is being restarted is down until it is back; a first boot is not", async () => {
    const team = unique("t");
    const crashed = await teamInstance(team, "starting");
    await setStatus(crashed.id, "starting", undefined, "Node-RED was killed by SIGKILL; restarting");
    const booting = await teamInstance(team, "starting");
    await createRule({ team, name: "down", kind: "instance_down", severity: "critical" });
    await evaluate();
    const list = await alertsOf(team);
    expect(list.map((a: any) => a.subject)).toEqual([crashed.id]);
    expect(list[0].summary).toContain("crashed and is being restarted");
    expect(booting.id).not.toBe(crashed.id);
  });

  it("a failed instance fires one alert, stays one, is acknowledged, flaps, and resolves after two clear evaluations", async () => {
    const team = unique("t");
    const inst = await teamInstance(team, "failed");
    await createRule({ team, name: "down", kind: "instance_down", severity: "critical" });
    const watcher = await watchFleet(viewer.token);

    await evaluate();
    let list = await alertsOf(team);
    expect(list).toHaveLength(1);
    const alert = list[0];
    expect(alert).toMatchObject({ kind: "instance_down", subject: inst.id, subjectName: inst.name, status: "firing", severity: "critical", team });
    expect(await watcher.waitFor((d) => d.alertId === alert.id && d.status === "firing")).toMatchObject({ kind: "instance_down", team, subject: inst.id });

    await evaluate();
    list = await alertsOf(team);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ id: alert.id, status: "firing", clearCount: 0 });

    const denied = await api("POST", `/api/alerts/${alert.id}/ack`, { token: viewer.token });
    expect(denied.status).toBe(403);
    const ack = await api("POST", `/api/alerts/${alert.id}/ack`, { token: operator.token });
    expect(ack.status, JSON.stringify(ack.body)).toBe(200);
    expect(ack.body).toMatchObject({ status: "acknowledged", acknowledgedBy: operator.id });
    expect((await api("POST", `/api/alerts/${alert.id}/ack`, { token: operator.token })).body.status).toBe("acknowledged");

    // Clear once, back again: the same alert, counted as a re-fire, not a new one.
    await setStatus(inst.id, "running");
    await evaluate();
    expect((await alertsOf(team))[0]).toMatchObject({ id: alert.id, status: "acknowledged", clearCount: 1 });
    await setStatus(inst.id, "failed");
    await evaluate();
    list = await alertsOf(team);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ id: alert.id, status: "acknowledged", clearCount: 0, refireCount: 1 });

    await setStatus(inst.id, "running");
    await evaluate();
    expect((await alertsOf(team))[0].status).toBe("acknowledged");
    await evaluate();
    list = await alertsOf(team);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ id: alert.id, status: "resolved" });
    expect(list[0].resolvedAt).toBeTruthy();
    expect(await watcher.waitFor((d) => d.alertId === alert.id && d.status === "resolved")).toMatchObject({ team });
    watcher.ws.close();

    const actions = (await withDb((db) => db.select({ action: auditLogs.action }).from(auditLogs).where(eq(auditLogs.resourceId, alert.id)))).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(["ALERT_FIRED", "ALERT_ACKNOWLEDGED", "ALERT_RESOLVED"]));

    // Resolved is history: the next failure is a new alert.
    await setStatus(inst.id, "failed");
    await evaluate();
    list = await alertsOf(team);
    expect(list).toHaveLength(2);
    expect(list.filter((a) => a.status === "firing")).toHaveLength(1);
    const filtered = await api("GET", `/api/alerts?team=${team}&status=resolved`, { token: viewer.token });
    expect(filtered.body.items.map((a: any) => a.id)).toEqual([alert.id]);
  });

  it("stopped while desired running is down; a pending not-ready alert fires only once its minutes are up", async () => {
    const team = unique("t");
    const stopped = await teamInstance(team, "stopped");
    const notReady = await teamInstance(team, "running");
    const t0 = new Date();
    await withDb((db) => db.insert(instanceHealth).values({ instanceId: notReady.id, checkedAt: t0, state: "running", live: true, ready: false, error: "flows not started" }));
    await createRule({ team, name: "down", kind: "instance_down" });
    await createRule({ team, name: "ready", kind: "instance_not_ready", params: { minutes: 5 } });

    await evaluate(t0);
    let list = await alertsOf(team);
    expect(list.find((a) => a.kind === "instance_down")).toMatchObject({ subject: stopped.id, status: "firing" });
    expect(list.find((a) => a.kind === "instance_not_ready")).toMatchObject({ subject: notReady.id, status: "pending" });
    const pendingAck = await api("POST", `/api/alerts/${list.find((a) => a.kind === "instance_not_ready").id}/ack`, { token: operator.token });
    expect(pendingAck.status).toBe(409);
    expectErrorShape(pendingAck.body, "alert_not_firing");

    await evaluate(new Date(t0.getTime() + 2 * 60_000));
    expect((await alertsOf(team)).find((a) => a.kind === "instance_not_ready").status).toBe("pending");
    await evaluate(new Date(t0.getTime() + 6 * 60_000));
    list = await alertsOf(team);
    expect(list.filter((a) => a.kind === "instance_not_ready")).toHaveLength(1);
    expect(list.find((a) => a.kind === "instance_not_ready")).toMatchObject({ status: "firing", subjectName: notReady.name });
  });

  it("a boot-loop failure is a crash loop; a plain failure is not", async () => {
    const team = unique("t");
    const looping = await teamInstance(team, "failed");
    await setStatus(looping.id, "failed", undefined, "Node-RED exited 3 times within 5 s of starting; giving up: Error: Cannot find module");
    await teamInstance(team, "failed");
    await createRule({ team, name: "loop", kind: "crash_loop" });
    await evaluate();
    const list = await alertsOf(team);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ kind: "crash_loop", subject: looping.id, status: "firing" });
  });

  it("disabling a rule resolves its open alerts", async () => {
    const team = unique("t");
    await teamInstance(team, "failed");
    const rule = await createRule({ team, name: "down", kind: "instance_down" });
    await evaluate();
    expect((await alertsOf(team))[0].status).toBe("firing");
    expect((await api("PATCH", `/api/alerts/rules/${rule.id}`, { token: operator.token, body: { enabled: false } })).status).toBe(200);
    expect((await alertsOf(team))[0].status).toBe("resolved");
  });

  it("history pages by cursor", async () => {
    const team = unique("t");
    for (let i = 0; i < 3; i++) await teamInstance(team, "failed");
    await createRule({ team, name: "down", kind: "instance_down" });
    await evaluate();
    const first = await api("GET", `/api/alerts?team=${team}&limit=2`, { token: viewer.token });
    expect(first.body.items).toHaveLength(2);
    const second = await api("GET", `/api/alerts?team=${team}&limit=2&cursor=${first.body.nextCursor}`, { token: viewer.token });
    expect(second.body.items).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    expect((await api("GET", "/api/alerts?cursor=nope", { token: viewer.token })).status).toBe(400);
  });
});

describe("each kind's condition", () => {
  it("deployment rolled back, bridge never connected, token budget at 80 %; every kind evaluates without error", async () => {
    const team = unique("t");
    const inst = await teamInstance(team, "running");
    const t0 = new Date();
    await withDb((db) => db.insert(deployments).values({ instanceId: inst.id, strategy: "blue-green", status: "rolled_back", errorCode: "smoke_failed", completedAt: t0 }));
    expect((await api("PUT", `/api/quotas/${team}`, { token: admin.token, body: { maxLlmTokensPerDay: 1000 } })).status).toBe(201);
    await addTokens(openKv(env), team, 850, t0);
    const rules = [
      await createRule({ team, name: "deploy", kind: "deployment_failed" }),
      // No bridge ever connected to the instance's cluster.
      await createRule({ team, name: "bridge", kind: "bridge_disconnected", params: { minutes: 2 } }),
      await createRule({ team, name: "tokens", kind: "ai_budget", params: { metric: "tokens" } }),
      await createRule({ team, name: "cost", kind: "ai_budget", params: { metric: "cost", dailyBudget: 10 } }),
      await createRule({ team, name: "hooks", kind: "webhook_signature_failures", params: { perSecond: 1000 } }),
      await createRule({ team, name: "chain", kind: "audit_chain" }),
    ];
    const first = await evaluate(t0);
    const mine = new Set(rules.map((r) => r.id));
    expect(first.errors.filter((e: any) => mine.has(e.ruleId))).toEqual([]);
    let list = await alertsOf(team);
    expect(list.find((a) => a.kind === "deployment_failed")).toMatchObject({ subject: inst.id, status: "firing" });
    expect(list.find((a) => a.kind === "deployment_failed").summary).toContain("smoke_failed");
    expect(list.find((a) => a.kind === "bridge_disconnected")).toMatchObject({ status: "pending" });
    expect(list.filter((a) => a.kind === "ai_budget").map((a) => a.subject)).toEqual(["tokens@80"]);

    const later = await evaluate(new Date(t0.getTime() + 3 * 60_000));
    expect(later.errors.filter((e: any) => mine.has(e.ruleId))).toEqual([]);
    list = await alertsOf(team);
    expect(list.find((a) => a.kind === "bridge_disconnected")).toMatchObject({ status: "firing", details: { openCommands: expect.any(Number) } });
    expect(list.filter((a) => a.kind === "webhook_signature_failures")).toEqual([]);
  });
});

/** A QStash delivery with Upstash-Retried, which callJob does not send. */
async function callDeliver(notificationId: string, retried: number) {
  const text = JSON.stringify({ notificationId });
  const now = Math.floor(Date.now() / 1000);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const body = btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const signature = await new SignJWT({ body })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("Upstash").setSubject(new URL("/api/jobs/alerts-deliver", PUBLIC_URL).toString()).setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300)
    .setJti(`jwt_${crypto.randomUUID()}`)
    .sign(new TextEncoder().encode(env.QSTASH_CURRENT_SIGNING_KEY!));
  return call("POST", "/api/jobs/alerts-deliver", { raw: text, headers: { "Content-Type": "application/json", "Upstash-Signature": signature, "Upstash-Retried": String(retried) } });
}

describe("notification channels", () => {
  it("a webhook channel's secret is shown once and never again, in no answer and no audit row", async () => {
    const team = unique("t");
    const res = await api("POST", "/api/alerts/channels", { token: admin.token, body: { team, name: "pager", kind: "webhook", url: "https://hooks.example.test/redforge" } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const secret: string = res.body.secret;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const one = await api("GET", `/api/alerts/channels/${res.body.id}`, { token: admin.token });
    const list = await api("GET", `/api/alerts/channels?team=${team}`, { token: admin.token });
    const rows = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, res.body.id)));
    for (const body of [one.body, list.body, rows]) {
      expect(JSON.stringify(body)).not.toContain(secret.slice(6));
      expect(JSON.stringify(body)).not.toMatch(/secret/i);
    }
    expect(one.body).toMatchObject({ team, name: "pager", kind: "webhook", url: "https://hooks.example.test/redforge" });
    const slack = await api("POST", "/api/alerts/channels", { token: admin.token, body: { team, name: "slack", kind: "slack", url: "https://hooks.slack.test/services/x" } });
    expect(slack.body.secret).toBeNull();
  });

  it.each([["ftp://example.test/x", "url"], ["not a url", "url"]])("refuses %s", async (url, path) => {
    const res = await api("POST", "/api/alerts/channels", { token: admin.token, body: { team: unique("t"), name: "x", kind: "webhook", url } });
    expect(res.status).toBe(400);
    expect(res.body.error.details.map((d: any) => d.path)).toContain(path);
  });

  it("a firing alert queues a notification per channel; the failed last retry leaves a dead letter", async () => {
    const team = unique("t");
    // Port 9 (discard) refuses the connection: every attempt fails.
    const ch = await api("POST", "/api/alerts/channels", { token: admin.token, body: { team, name: "dead", kind: "webhook", url: "http://127.0.0.1:9/hook" } });
    expect(ch.status).toBe(201);
    await teamInstance(team, "failed");
    await createRule({ team, name: "down", kind: "instance_down" });
    await evaluate();
    const [alert] = await alertsOf(team);
    const queued = await withDb((db) => db.select().from(alertNotifications).where(inArray(alertNotifications.alertId, [alert.id])));
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ channelId: ch.body.id, event: "fired" });
    expect((queued[0]!.payload as any)).toMatchObject({ type: "alert.fired", alert: { id: alert.id, team, kind: "instance_down", status: "firing" } });

    const first = await callDeliver(queued[0]!.id, 0);
    expect(first.status, JSON.stringify(first.body)).toBe(502);
    const last = await callDeliver(queued[0]!.id, 3);
    expect(last.status).toBe(200);
    expect(last.body).toMatchObject({ status: "dead", attempts: 2 });
    const dead = await api("GET", `/api/alerts/notifications?status=dead&team=${team}`, { token: viewer.token });
    expect(dead.status).toBe(200);
    expect(dead.body.items).toHaveLength(1);
    expect(dead.body.items[0]).toMatchObject({ alertId: alert.id, status: "dead", attempts: 2 });
    expect(dead.body.items[0].lastError).toMatch(/could not be reached|answered/);
    // A duplicate delivery of a dead letter sends nothing.
    expect((await callDeliver(queued[0]!.id, 3)).body).toMatchObject({ status: "dead", attempts: 2 });
    const stillOne = await withDb((db) => db.select().from(alerts).where(eq(alerts.team, team)));
    expect(stillOne).toHaveLength(1);
  });
});
