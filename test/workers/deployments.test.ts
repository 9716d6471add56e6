/**
 * The DeploymentRun phase machine through the API, with a scripted bridge on
 * the cluster link answering each step as a real one would: the happy path
 * through every phase, one deployment per instance, rollback on a failed
 * smoke test, pause → promote / abort, a deadline the bridge misses, manual
 * rollback in the window, /ws/deployments/:id for a late subscriber, and
 * each outcome written to the audit log once when a step is run again.
 */
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { auditLogs, deployments, flowVersions, instances } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createUser, expectErrorShape, openStream, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;
let viewer: TestUser;

/** How long a step may take to show: generous, the Worker shares 2 cores with other suites. */
const WAIT = { timeout: 20_000, interval: 25 };

const FLOWS_V2 = [{ id: "t1", type: "tab", label: "v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];

interface Bridge {
  cluster: { id: string; webhookSecret: string };
  instanceId: string;
  /** Waits for the next command of `type` and answers it. */
  answer(type: string, result: Record<string, unknown>, ok?: boolean): Promise<any>;
  next(type: string): Promise<any>;
  reply(command: any, result: Record<string, unknown>, ok?: boolean): Promise<void>;
  commands: any[];
  ws: WebSocket;
}

async function scriptedBridge(opts: { stack?: string; stacks?: { id: string; nodeRed: string }[]; flows?: unknown[] } = {}): Promise<Bridge> {
  const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("dep") } })).body;
  const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("dep"), clusterId: cluster.id, ...(opts.stack ? { stack: opts.stack } : {}), ...(opts.flows ? { flows: opts.flows } : {}) } })).body;
  const report = async (body: unknown) => {
    const text = JSON.stringify(body);
    const headers = await webhookHeaders(cluster.webhookSecret, text);
    const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
    expect(res.status).toBe(202);
  };
  await report({ type: "instance.status", instanceId: inst.id, state: "running" });
  const tokenBody = JSON.stringify({ bridgeVersion: "test" });
  const tokenRes = await api("POST", `/api/clusters/${cluster.id}/token`, { raw: tokenBody, headers: { ...(await webhookHeaders(cluster.webhookSecret, tokenBody)), "Content-Type": "application/json" } });
  const res = await SELF.fetch(`http://redforge.test/api/clusters/${cluster.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${tokenRes.body.token}` } });
  const ws = res.webSocket!;
  const commands: any[] = [];
  const seen = new Set<string>();
  ws.addEventListener("message", (e) => {
    const frame = JSON.parse(e.data as string);
    if (frame.kind === "command" && !seen.has(frame.command.id)) {
      seen.add(frame.command.id);
      commands.push(frame.command);
    }
  });
  ws.accept();
  if (opts.stacks) {
    ws.send(JSON.stringify({ kind: "hello", bridgeVersion: "test", driver: "process", stacks: opts.stacks }));
    await vi.waitFor(async () => expect((await api("GET", `/api/stacks?clusterId=${cluster.id}`, { token: admin.token })).body.reported).toBe(true), WAIT);
  }
  let taken = 0;
  const next = (type: string) => vi.waitFor(() => {
    const idx = commands.findIndex((c, n) => n >= taken && c.type === type);
    expect(idx, `no ${type} command; got ${commands.map((c) => c.type).join(", ")}`).toBeGreaterThanOrEqual(0);
    taken = idx + 1;
    return commands[idx];
  }, WAIT);
  const reply = async (command: any, result: Record<string, unknown>, ok = true) => {
    await report(ok
      ? { type: "command.result", commandId: command.id, status: "ok", result }
      : { type: "command.result", commandId: command.id, status: "error", error: { code: String(result.code ?? "driver_error"), message: String(result.message ?? "failed") } });
  };
  return {
    cluster, instanceId: inst.id, commands, next, reply, ws,
    async answer(type, result, ok = true) {
      const cmd = await next(type);
      await reply(cmd, result, ok);
      return cmd;
    },
  };
}

const BLUE_GREEN = { blue: "blue-rt", green: "green-rt", greenAdmin: "http://127.0.0.1:1" };

async function deploy(bridge: Bridge, extra: Record<string, unknown> = {}) {
  const res = await api("POST", "/api/deployments", {
    token: admin.token,
    body: { instanceId: bridge.instanceId, flows: FLOWS_V2, analysisSeconds: 0, rollbackWindowSeconds: 0, ...extra },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

async function getDeployment(id: string) {
  return (await api("GET", `/api/deployments/${id}`, { token: viewer.token })).body;
}

/** The deployment once it has `status` (for vi.waitFor: throws until then). */
const hasStatus = (id: string, status: string) => async () => {
  const d = await getDeployment(id);
  expect(d.status, `deployment ${id} never became ${status}: ${JSON.stringify(d)}`).toBe(status);
  return d;
};

const DRAINED = { runtime: "blue-rt", mode: "drain", inFlight: 0, drainedInMs: 12, stragglers: 0, heldHttp: 2, heldMqtt: 5 };

/**
 * The default order (holdDuring "switch"): prepare → flows.deploy → smoke.run while blue serves;
 * a passed VERIFY is followed by blue's drain, right before the switch.
 */
async function throughVerify(bridge: Bridge, verdict: "passed" | "failed" | "inconclusive") {
  await bridge.answer("deployment.prepare", BLUE_GREEN);
  const flows = await bridge.answer("flows.deploy", { runtime: "green-rt", rev: "rev-2" });
  expect(flows.args).toMatchObject({ runtime: "green-rt", flows: FLOWS_V2 });
  // inconclusive: the pause verify.pause asks for (an undecided check would be retried first).
  const check = verdict === "inconclusive" ? { name: "pause", outcome: "inconclusive", detail: "asked to pause" } : { name: "sample POST /work", outcome: verdict, detail: "scripted" };
  const smoke = await bridge.answer("smoke.run", { verdict, checks: [check] });
  expect(smoke.args).toMatchObject({ runtime: "green-rt", kind: "verify", expectRev: "rev-2" });
  if (verdict === "passed") await drainBlue(bridge);
}

async function drainBlue(bridge: Bridge) {
  const drain = await bridge.answer("gate.set", DRAINED);
  expect(drain.args).toMatchObject({ mode: "drain", runtime: "blue-rt" });
}

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
});

describe("POST /api/deployments", () => {
  it("rejects bad input with clear codes", async () => {
    const bridge = await scriptedBridge();
    const neither = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId } });
    expect(neither.status).toBe(400);
    expectErrorShape(neither.body, "validation_failed");
    const strategy = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, flows: FLOWS_V2, strategy: "canary" } });
    expect(strategy.status).toBe(400);
    expectErrorShape(strategy.body, "unsupported_strategy");
    const missing = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: crypto.randomUUID(), flows: FLOWS_V2 } });
    expect(missing.status).toBe(404);
    const pending = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("p"), clusterId: bridge.cluster.id } })).body;
    const notRunning = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: pending.id, flows: FLOWS_V2 } });
    expect(notRunning.status).toBe(409);
    expectErrorShape(notRunning.body, "instance_not_running");
    const denied = await api("POST", "/api/deployments", { token: viewer.token, body: { instanceId: bridge.instanceId, flows: FLOWS_V2 } });
    expect(denied.status).toBe(403);
  });

  it("an instance's first deployment keeps its created flows as version 1 (no duplicate of what runs)", async () => {
    // Keys deliberately unsorted: jsonb hands them back in another order than the request had.
    const created = [{ type: "tab", label: "one", id: "t1" }, { wires: [], z: "t1", type: "inject", id: "n1", name: "tick" }];
    const bridge = await scriptedBridge({ flows: created });
    const started = await deploy(bridge);
    const versions = (await api("GET", `/api/deployments/versions?instanceId=${bridge.instanceId}`, { token: admin.token })).body.items;
    expect(versions.map((v: any) => v.version)).toEqual([2, 1]);
    expect(started.fromVersionId).toBe(versions[1].id);
    bridge.ws.close();
  });

  it("holdDuring \"deploy\" (opt-in) runs DRAIN → DEPLOY → VERIFY → RESUME → AUDIT → CLEANUP and records versions, metrics and audit", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge, { holdDuring: "deploy", verify: { http: { path: "/work", body: { seq: 1 }, expectJson: { ok: true } } } });
    expect(created).toMatchObject({ status: "in_progress", phase: "DRAIN", instanceId: bridge.instanceId });

    const second = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, flows: FLOWS_V2 } });
    expect(second.status).toBe(409);
    expectErrorShape(second.body, "deployment_in_progress");
    expect(second.body.error.details.deploymentId).toBe(created.id);

    await bridge.answer("deployment.prepare", BLUE_GREEN);
    await drainBlue(bridge);
    await bridge.answer("flows.deploy", { runtime: "green-rt", rev: "rev-2" });
    const smoke = await bridge.answer("smoke.run", { verdict: "passed", checks: [{ name: "sample POST /work", outcome: "passed", detail: "scripted" }] });
    expect(smoke.args).toMatchObject({ runtime: "green-rt", kind: "verify", expectRev: "rev-2" });
    const sw = await bridge.answer("route.switch", { from: "blue-rt", to: "green-rt", replayed: 5, bufferedDuringSwitch: 3, httpReleased: 2 });
    expect(sw.args).toMatchObject({ from: "blue-rt", to: "green-rt" });
    await bridge.answer("smoke.run", { verdict: "passed", errorRate: 0 });
    const cleanup = await bridge.answer("deployment.cleanup", { stopped: "blue-rt" });
    expect(cleanup.args).toMatchObject({ runtime: "blue-rt" });

    const done = await vi.waitFor(hasStatus(created.id, "completed"), WAIT);
    const started = done.history.filter((h: any) => h.status === "started").map((h: any) => h.phase);
    expect(started).toEqual(["DRAIN", "DEPLOY", "VERIFY", "RESUME", "AUDIT", "CLEANUP"]);
    expect(done.metrics).toMatchObject({ messagesReplayed: 8, messagesLost: 0, inFlightAtDrain: 0 });
    expect(done.switched).toBe(true);
    expect(done.progress).toBe(1);

    const versions = (await api("GET", `/api/deployments/versions?instanceId=${bridge.instanceId}`, { token: viewer.token })).body.items;
    expect(versions.map((v: any) => v.version)).toEqual([2, 1]);
    expect(done.toVersionId).toBe(versions[0].id);
    expect(done.fromVersionId).toBe(versions[1].id);
    await withDb(async (db) => {
      const [inst] = await db.select().from(instances).where(eq(instances.id, bridge.instanceId));
      expect(inst!.flows).toEqual(FLOWS_V2);
      const rows = await db.select().from(auditLogs).where(eq(auditLogs.resourceId, created.id));
      expect(rows.map((r) => r.action)).toEqual(expect.arrayContaining(["DEPLOYMENT_CREATED", "DEPLOYMENT_PROMOTED"]));
    });
    const list = await api("GET", `/api/deployments?instanceId=${bridge.instanceId}&status=completed`, { token: viewer.token });
    expect(list.body.items.map((d: any) => d.id)).toEqual([created.id]);

    // The instance is free again: an older version can be redeployed by id.
    const back = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, versionId: versions[1].id } });
    expect(back.status).toBe(202);
    expect(back.body.toVersionId).toBe(versions[1].id);
  });

  it("by default (holdDuring \"switch\") green is deployed and verified while blue serves; blue drains just before RESUME", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    expect(created.phase).toBe("DEPLOY");
    await bridge.answer("deployment.prepare", BLUE_GREEN);
    await bridge.answer("flows.deploy", { runtime: "green-rt", rev: "rev-2" });
    await bridge.answer("smoke.run", { verdict: "passed", checks: [] });
    const drain = await bridge.answer("gate.set", { inFlight: 0, heldHttp: 0, heldMqtt: 1 });
    const order = bridge.commands.map((c) => c.type);
    expect(order.indexOf("gate.set")).toBeGreaterThan(order.indexOf("smoke.run"));
    expect(drain.args).toMatchObject({ mode: "drain", runtime: "blue-rt" });
    await bridge.answer("route.switch", { replayed: 1 });
    await bridge.answer("smoke.run", { verdict: "passed" });
    await bridge.answer("deployment.cleanup", {});
    const done = await vi.waitFor(hasStatus(created.id, "completed"), WAIT);
    const started = done.history.filter((h: any) => h.status === "started").map((h: any) => h.phase);
    expect(started).toEqual(["DEPLOY", "VERIFY", "DRAIN", "RESUME", "AUDIT", "CLEANUP"]);
    const bad = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, flows: FLOWS_V2, holdDuring: "never" } });
    expect(bad.status).toBe(400);
  });

  it("rolls back when the smoke tests fail, and says why", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await throughVerify(bridge, "failed");
    const rb = await bridge.answer("deployment.rollback", { serving: "blue-rt", replayed: 7 });
    expect(rb.args).toMatchObject({ blue: "blue-rt", green: "green-rt", switched: false });
    const done = await vi.waitFor(hasStatus(created.id, "rolled_back"), WAIT);
    expect(done.error).toMatchObject({ code: "smoke_failed", message: expect.stringMatching(/smoke tests failed/) });
    expect(done.history.map((h: any) => `${h.phase}:${h.status}`)).toEqual(expect.arrayContaining(["VERIFY:failed", "ROLLING_BACK:started", "ROLLING_BACK:completed"]));
    const [inst] = await withDb((db) => db.select().from(instances).where(eq(instances.id, bridge.instanceId)));
    expect(inst!.flows).toEqual([]); // blue's flows stay
  });

  it("a driver without blue-green fails the deployment at once, blue untouched (no rollback to run)", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await bridge.answer("deployment.prepare", { code: "not_implemented", message: "deployment.prepare: blue-green deployments are not implemented by the kubernetes driver yet" }, false);
    const done = await vi.waitFor(hasStatus(created.id, "failed"), WAIT);
    expect(done.error).toMatchObject({ code: "not_implemented", message: expect.stringMatching(/not implemented by the kubernetes driver/) });
    expect(bridge.commands.map((c) => c.type)).not.toContain("deployment.rollback");
  });

  it("pauses on an inconclusive result: promote continues, abort rolls back", async () => {
    const a = await scriptedBridge();
    const da = await deploy(a);
    await throughVerify(a, "inconclusive");
    const paused = await vi.waitFor(hasStatus(da.id, "paused"), WAIT);
    expect(paused.phase).toBe("VERIFY");
    const rollbackWhilePausedButNotMine = await api("POST", `/api/deployments/${da.id}/promote`, { token: viewer.token });
    expect(rollbackWhilePausedButNotMine.status).toBe(403);
    const promoted = await api("POST", `/api/deployments/${da.id}/promote`, { token: admin.token });
    expect(promoted.status).toBe(202);
    await drainBlue(a);
    await a.answer("route.switch", { replayed: 0 });
    await a.answer("smoke.run", { verdict: "passed" });
    await a.answer("deployment.cleanup", {});
    await vi.waitFor(hasStatus(da.id, "completed"), WAIT);
    const again = await api("POST", `/api/deployments/${da.id}/promote`, { token: admin.token });
    expect(again.status).toBe(409);
    expectErrorShape(again.body, "not_paused");

    const b = await scriptedBridge();
    const db_ = await deploy(b);
    await throughVerify(b, "inconclusive");
    await vi.waitFor(hasStatus(db_.id, "paused"), WAIT);
    expect((await api("POST", `/api/deployments/${db_.id}/abort`, { token: admin.token })).status).toBe(202);
    await b.answer("deployment.rollback", { replayed: 0 });
    const aborted = await vi.waitFor(hasStatus(db_.id, "rolled_back"), WAIT);
    expect(aborted.error).toMatchObject({ code: "operator_abort", message: expect.stringMatching(/aborted by an operator/) });
  });

  it("a manual rollback inside the window after the switch brings blue back", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge, { rollbackWindowSeconds: 600 });
    await throughVerify(bridge, "passed");
    await bridge.answer("route.switch", { replayed: 1 });
    await bridge.answer("smoke.run", { verdict: "passed" });
    await vi.waitFor(async () => expect((await getDeployment(created.id)).phase).toBe("CLEANUP"), WAIT);
    const rb = await api("POST", `/api/deployments/${created.id}/rollback`, { token: admin.token });
    expect(rb.status).toBe(202);
    const cmd = await bridge.answer("deployment.rollback", { replayed: 3 });
    expect(cmd.args).toMatchObject({ switched: true, blue: "blue-rt", green: "green-rt" });
    await vi.waitFor(hasStatus(created.id, "rolled_back"), WAIT);
  });

  it("a step the bridge never answers rolls the deployment back at its deadline (alarm), from stored state", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await bridge.answer("deployment.prepare", BLUE_GREEN);
    await bridge.answer("flows.deploy", { runtime: "green-rt", rev: "rev-2" });
    await bridge.answer("smoke.run", { verdict: "passed" });
    await bridge.next("gate.set"); // never answered
    const stub = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(created.id));
    // Pretend the deadline passed; the alarm handler reads everything from storage.
    await runInDurableObject(stub, async (_obj, state) => {
      const s = (await state.storage.get<any>("state"))!;
      expect(s.awaiting.commandId).toContain(`d_${created.id}_drain_0`);
      s.awaiting.deadline = Date.now() - 1;
      await state.storage.put("state", s);
    });
    await runDurableObjectAlarm(stub);
    const rb = await bridge.answer("deployment.rollback", { replayed: 0 });
    expect(rb.args.switched).toBe(false);
    const done = await vi.waitFor(hasStatus(created.id, "rolled_back"), WAIT);
    expect(done.error).toMatchObject({ code: "drain_timeout", message: expect.stringMatching(/did not finish drain/) });
  });

  it("/ws/deployments/:id gives a late subscriber the current state, then phase and progress events", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge, { holdDuring: "deploy" });
    await bridge.answer("deployment.prepare", BLUE_GREEN);
    const res = await SELF.fetch(`http://redforge.test/ws/deployments/${created.id}?token=${viewer.token}`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const events: any[] = [];
    ws.addEventListener("message", (e) => events.push(JSON.parse(e.data as string)));
    ws.accept();
    await bridge.answer("gate.set", { inFlight: 0, heldHttp: 1, heldMqtt: 2 });
    await vi.waitFor(() => expect(events.some((e) => e.event === "deployment:phase" && e.data.phase === "DEPLOY")).toBe(true), WAIT);
    expect(events[0].event).toBe("deployment:state");
    expect(events[0].data).toMatchObject({ id: created.id, phase: "DRAIN", blue: "blue-rt", green: "green-rt" });
    const progress = events.find((e) => e.event === "deployment:progress");
    expect(progress.data).toMatchObject({ deploymentId: created.id, messagesHeld: 3, inFlightCount: 0 });
    expect(typeof progress.data.progress).toBe("number");
    expect(events.some((e) => e.event === "deployment:phase" && e.data.phase === "DEPLOY" && e.data.status === "started")).toBe(true);
    ws.close();
    const anon = await SELF.fetch(`http://redforge.test/ws/deployments/${created.id}`, { headers: { Upgrade: "websocket" } });
    expect(anon.status).toBe(401);
    const unknown = await SELF.fetch(`http://redforge.test/ws/deployments/${crypto.randomUUID()}?token=${viewer.token}`, { headers: { Upgrade: "websocket" } });
    expect(unknown.status).toBe(404);
  });
});

/** Lets a deployment's wait (a retry's backoff) end now: the alarm handler reads everything from storage. */
async function endWait(id: string) {
  const stub = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(id));
  await runInDurableObject(stub, async (_obj, state) => {
    const s = (await state.storage.get<any>("state"))!;
    expect(s.waitUntil, "the deployment is waiting").not.toBeNull();
    await state.storage.put("state", { ...s, waitUntil: Date.now() - 1 });
  });
  await runDurableObjectAlarm(stub);
}

describe("a check that cannot complete, and a rollback that fails, never strand work", () => {
  it("an analysis the bridge cannot run (driver_error, a timeout) is retried under new ids, then pauses: green is not rolled back", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await throughVerify(bridge, "passed");
    await bridge.answer("route.switch", { replayed: 5 });
    const timeout = { code: "driver_error", message: "The operation was aborted due to timeout" };
    const first = await bridge.answer("smoke.run", timeout, false);
    expect(first.id).toBe(`d_${created.id}_analysis_0`);
    const retrying = await vi.waitFor(async () => {
      const d = await getDeployment(created.id);
      expect(d.attention).toMatchObject({ state: "retrying", step: "analysis", attempts: 1, maxAttempts: 3 });
      return d;
    }, WAIT);
    expect(retrying).toMatchObject({ status: "in_progress", phase: "RESUME", error: null });
    expect(retrying.attention.lastError).toBe("The operation was aborted due to timeout (driver_error)");
    expect(Date.parse(retrying.attention.nextAttemptAt)).toBeGreaterThan(Date.parse(retrying.attention.since));
    await endWait(created.id);
    expect((await bridge.answer("smoke.run", timeout, false)).id).toBe(`d_${created.id}_analysis_1`);
    await vi.waitFor(async () => expect((await getDeployment(created.id)).attention?.attempts).toBe(2), WAIT);
    await endWait(created.id);
    expect((await bridge.answer("smoke.run", timeout, false)).id).toBe(`d_${created.id}_analysis_2`);
    const paused = await vi.waitFor(hasStatus(created.id, "paused"), WAIT);
    expect(paused).toMatchObject({ phase: "RESUME", error: null, attention: { state: "waiting", step: "analysis", attempts: 3 } });
    expect(bridge.commands.map((c) => c.type)).not.toContain("deployment.rollback");
    // The list (the row, written in the background) says the same.
    await vi.waitFor(async () => {
      const listed = (await api("GET", `/api/deployments?instanceId=${bridge.instanceId}`, { token: viewer.token })).body.items[0];
      expect(listed.attention).toMatchObject({ state: "waiting", step: "analysis" });
    }, WAIT);
    expect((await api("POST", `/api/deployments/${created.id}/promote`, { token: admin.token })).status).toBe(202);
    await bridge.answer("deployment.cleanup", {});
    const done = await vi.waitFor(hasStatus(created.id, "completed"), WAIT);
    expect(done.attention).toBeNull();
  });

  it("a rollback that fails stays ROLLING_BACK and retries (the view says so); POST /rollback retries now; abort gives up as rollback_failed", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await throughVerify(bridge, "failed");
    await bridge.answer("deployment.rollback", { code: "internal", message: "end-of-hold marker not back within 30000 ms" }, false);
    const retrying = await vi.waitFor(async () => {
      const d = await getDeployment(created.id);
      expect(d.attention).toMatchObject({ state: "retrying", step: "rollback", attempts: 1, maxAttempts: null });
      return d;
    }, WAIT);
    expect(retrying).toMatchObject({ status: "in_progress", phase: "ROLLING_BACK", error: { code: "smoke_failed" } });
    expect(retrying.attention.message).toMatch(/POST \/rollback tries again now/);
    // Still one deployment per instance while it retries.
    const second = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, flows: FLOWS_V2 } });
    expect(second.status).toBe(409);
    expect((await api("POST", `/api/deployments/${created.id}/rollback`, { token: admin.token })).status).toBe(202);
    const again = await bridge.next("deployment.rollback");
    expect(again.id).toBe(`d_${created.id}_rollback_1`);
    const busy = await api("POST", `/api/deployments/${created.id}/rollback`, { token: admin.token });
    expect(busy.status).toBe(409);
    expectErrorShape(busy.body, "step_in_progress");
    await bridge.reply(again, { code: "internal", message: "still no marker" }, false);
    await vi.waitFor(async () => expect((await getDeployment(created.id)).attention?.attempts).toBe(2), WAIT);
    const gaveUp = await api("POST", `/api/deployments/${created.id}/abort`, { token: admin.token });
    expect(gaveUp.status).toBe(202);
    const failed = await vi.waitFor(hasStatus(created.id, "failed"), WAIT);
    expect(failed.error).toMatchObject({ code: "rollback_failed", message: expect.stringMatching(/given up by an operator .* after 2 attempt\(s\), the last: rollback failed: still no marker \(internal\); blue may not be serving; it was rolling back because smoke tests failed/) });
    expect(failed.attention).toBeNull();
  });
});

describe("honest accounting", () => {
  it("a rolled-back deployment shows what it cost, from the bridge's counters, in the view and in the list", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await throughVerify(bridge, "passed");
    await bridge.answer("route.switch", { replayed: 6, heldMqtt: 7, httpHeld: 2, httpReleased: 2, httpRefused: 1 });
    await bridge.answer("smoke.run", { verdict: "failed", errorRate: 0.5, expired: 0, checks: [{ name: "error rate", outcome: "failed", detail: "50%" }] });
    await bridge.answer("deployment.rollback", { replayed: 3, heldMqtt: 3, greenStragglers: 1 });
    const done = await vi.waitFor(hasStatus(created.id, "rolled_back"), WAIT);
    expect(done.error.code).toBe("analysis_failed");
    expect(done.metrics).toMatchObject({ messagesLost: 2, messagesDuplicated: 0 });
    expect(done.metrics.accounting).toMatchObject({ mqttHeld: 10, mqttReplayed: 9, mqttLost: 1, httpRefused: 1, stoppedInFlight: 1 });
    await vi.waitFor(async () => {
      const listed = (await api("GET", `/api/deployments?instanceId=${bridge.instanceId}`, { token: viewer.token })).body.items[0];
      expect(listed.metrics).toMatchObject({ messagesLost: 2, accounting: { mqttLost: 1 } });
    }, WAIT);
  });
});

describe("which instances can be deployed", () => {
  const setStatus = (id: string, status: string) => withDb((db) => db.update(instances).set({ status }).where(eq(instances.id, id)));

  it("an instance a loaded health sweep marked unknown is deployed when its cluster's bridge is connected", async () => {
    const bridge = await scriptedBridge();
    await setStatus(bridge.instanceId, "unknown");
    const created = await deploy(bridge);
    expect(created).toMatchObject({ status: "in_progress", instanceId: bridge.instanceId });
    await bridge.next("deployment.prepare");
  });

  it("unknown with no bridge connected, and stopped, failed or deleting whatever the bridge, are 409 instance_not_running", async () => {
    const bridge = await scriptedBridge();
    // A second cluster whose bridge never connected.
    const lonely = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("nolink") } })).body;
    const orphan = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("orphan"), clusterId: lonely.id } })).body;
    await setStatus(orphan.id, "unknown");
    const cases: Array<{ id: string; status: string; connected: boolean }> = [
      { id: orphan.id, status: "unknown", connected: false },
      { id: bridge.instanceId, status: "stopped", connected: true },
      { id: bridge.instanceId, status: "failed", connected: true },
      { id: bridge.instanceId, status: "deleting", connected: true },
    ];
    for (const { id, status, connected } of cases) {
      if (id === bridge.instanceId) await setStatus(id, status);
      const res = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: id, flows: FLOWS_V2 } });
      expect(res.status, `${status} (bridge connected: ${connected})`).toBe(409);
      expectErrorShape(res.body, "instance_not_running");
      expect(res.body.error.details).toEqual({ status, bridgeConnected: connected });
    }
  });
});

describe("deadlines adapt to a slow cluster", () => {
  it("a deployment's timeouts scale its deadlines, times the cluster's measured round trip; the view lists them", async () => {
    const bridge = await scriptedBridge();
    // A first command and its receipt give the cluster link a round trip to measure.
    const created = await deploy(bridge, { timeouts: { scale: 2, verify: 300 } });
    expect(created.timeouts).toMatchObject({ scale: 2, roundTripMs: null, stepSeconds: { prepare: 360, verify: 300, rollback: 360, drain: 90 } });
    const prepare = await bridge.next("deployment.prepare");
    const link = env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(bridge.cluster.id));
    await runInDurableObject(link, async (_obj, state) => {
      // As if the receipt took 300 ms (a loaded bridge): the send time moves back, then the receipt comes.
      state.storage.sql.exec("UPDATE outbox SET updated_at = updated_at - 300 WHERE id = ?", prepare.id);
    });
    bridge.ws.send(JSON.stringify({ kind: "received", commandId: prepare.id }));
    const rtt = await vi.waitFor(async () => {
      const status = await link.status();
      expect(status.roundTripMs).toBeGreaterThanOrEqual(300);
      return status.roundTripMs!;
    }, WAIT);
    const stub = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(created.id));
    expect((await runInDurableObject(stub, async (_obj, state) => (await state.storage.get<any>("state"))!.awaiting)).deadline - Date.now()).toBeGreaterThan(300_000);

    const other = await scriptedBridge();
    await runInDurableObject(env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(other.cluster.id)), async (_obj, state) => {
      state.storage.sql.exec("INSERT INTO meta (key, value) VALUES ('roundTripMs', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", String(rtt));
    });
    const slow = await deploy(other);
    const factor = Math.min(4, 1 + (rtt - 50) / 250);
    expect(slow.timeouts.roundTripMs).toBe(rtt);
    expect(slow.timeouts.scale).toBeCloseTo(factor, 2);
    expect(slow.timeouts.stepSeconds.prepare).toBeCloseTo(180 * slow.timeouts.scale, 0);

    const bad = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: other.instanceId, flows: FLOWS_V2, timeouts: { scale: 100 } } });
    expect(bad.status).toBe(400);
    expectErrorShape(bad.body, "validation_failed");
  });
});

describe("/ws/deployments/:id over several objects (durable/watcherShards.ts)", () => {
  it("watchers past REDFORGE_WATCHERS_PER_OBJECT sit on shards and each gets the current state first, then the same events in order", async () => {
    const saved = env.REDFORGE_WATCHERS_PER_OBJECT;
    (env as { REDFORGE_WATCHERS_PER_OBJECT?: string }).REDFORGE_WATCHERS_PER_OBJECT = "1";
    try {
      const bridge = await scriptedBridge();
      const created = await deploy(bridge, { holdDuring: "deploy" });
      await bridge.answer("deployment.prepare", BLUE_GREEN);
      const watchers = [];
      for (let i = 0; i < 4; i++) watchers.push(await openStream(`/ws/deployments/${created.id}`, viewer.token));
      const stub = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(created.id));
      const where = await runInDurableObject(stub, async (_o, state) => ({
        local: state.getWebSockets("watcher").length, shards: (await state.storage.get<number>("watchers:shards")) ?? 0,
      }));
      expect(where).toEqual({ local: 1, shards: 3 });
      await bridge.answer("gate.set", { inFlight: 0, heldHttp: 1, heldMqtt: 2 });
      await bridge.answer("flows.deploy", { runtime: "green-rt", rev: "rev-2" });
      for (const w of watchers) await vi.waitFor(() => expect(w.events.some((e) => e.event === "deployment:phase" && e.data.phase === "VERIFY")).toBe(true), WAIT);
      const seen = (w: { events: any[] }) => w.events.filter((e) => e.event !== "deployment:progress").map((e) => e.event === "deployment:state" ? `state:${e.data.phase}` : `${e.data.phase}:${e.data.status}`);
      expect(seen(watchers[0]!)[0]).toBe("state:DRAIN");
      // Every watcher, on the owner or a shard, saw the same sequence up to VERIFY.
      const upTo = (list: string[]) => list.slice(0, list.findIndex((x) => x.startsWith("VERIFY")) + 1);
      for (const w of watchers.slice(1)) expect(upTo(seen(w))).toEqual(upTo(seen(watchers[0]!)));
      for (const w of watchers) w.ws.close();
    } finally {
      (env as { REDFORGE_WATCHERS_PER_OBJECT?: string }).REDFORGE_WATCHERS_PER_OBJECT = saved;
    }
  });
});

describe("/ws/deployments/:id follows access changes", () => {
  it("a watcher disabled mid-deployment is closed with 4401 before the next event; another keeps streaming", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge, { holdDuring: "deploy" });
    await bridge.answer("deployment.prepare", BLUE_GREEN);
    const leaver = await createUser("viewer");
    const open = (token: string) => openStream(`/ws/deployments/${created.id}`, token);
    const gone = await open(leaver.token);
    const stays = await open(viewer.token);
    await vi.waitFor(() => expect(gone.events.length + stays.events.length).toBe(2), WAIT);
    expect((await api("PATCH", `/api/users/${leaver.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    await bridge.answer("gate.set", { inFlight: 0, heldHttp: 1, heldMqtt: 2 });
    await vi.waitFor(() => expect(stays.events.some((e) => e.event === "deployment:phase" && e.data.phase === "DEPLOY")).toBe(true), WAIT);
    await vi.waitFor(() => expect(gone.closed()).toBe(4401), WAIT);
    expect(gone.events.map((e) => e.event)).toEqual(["deployment:state"]);
    stays.ws.close();
  });
});

describe("runtime upgrades (a deployment with stack)", () => {
  const STACKS = [{ id: "5.0", nodeRed: "5.0.7" }, { id: "4.1", nodeRed: "4.1.15" }];

  it("green starts on the target stack with the current flows; the instance's stack changes when it completes", async () => {
    const bridge = await scriptedBridge({ stack: "4.1", stacks: STACKS });
    const res = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, stack: "5.0", analysisSeconds: 0, rollbackWindowSeconds: 0 } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ fromStack: "4.1", toStack: "5.0", toNodeRed: null });
    expect(res.body.toVersionId).toBe(res.body.fromVersionId); // the same flows
    const prepare = await bridge.answer("deployment.prepare", { ...BLUE_GREEN, stack: { id: "5.0", nodeRed: "5.0.7" } });
    expect(prepare.args).toMatchObject({ stack: "5.0" });
    const flows = await bridge.answer("flows.deploy", { runtime: "green-rt", rev: "rev-2" });
    expect(flows.args.flows).toEqual([]);
    await bridge.answer("smoke.run", { verdict: "passed" });
    await bridge.answer("gate.set", { inFlight: 0 });
    await bridge.answer("route.switch", { replayed: 0 });
    await bridge.answer("smoke.run", { verdict: "passed" });
    await bridge.answer("deployment.cleanup", {});
    const done = await vi.waitFor(hasStatus(res.body.id, "completed"), WAIT);
    expect(done).toMatchObject({ fromStack: "4.1", toStack: "5.0", toNodeRed: "5.0.7" });
    const inst = (await api("GET", `/api/instances/${bridge.instanceId}`, { token: viewer.token })).body;
    expect(inst).toMatchObject({ stack: "5.0", nodeRedVersion: "5.0.7" });
    // The list reads the row: it shows the stacks too.
    const listed = (await api("GET", `/api/deployments?instanceId=${bridge.instanceId}`, { token: viewer.token })).body.items[0];
    expect(listed).toMatchObject({ fromStack: "4.1", toStack: "5.0" });
  });

  it("a rolled-back upgrade leaves the instance on its old stack", async () => {
    const bridge = await scriptedBridge({ stack: "4.1" });
    const res = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, stack: "5.0", analysisSeconds: 0, rollbackWindowSeconds: 0 } });
    expect(res.status).toBe(202);
    await bridge.answer("deployment.prepare", { ...BLUE_GREEN, stack: { id: "5.0", nodeRed: "5.0.7" } });
    await bridge.answer("flows.deploy", { runtime: "green-rt", rev: "rev-2" });
    await bridge.answer("smoke.run", { verdict: "failed", checks: [{ name: "sample", outcome: "failed", detail: "scripted" }] });
    await bridge.answer("deployment.rollback", { serving: "blue-rt" });
    const done = await vi.waitFor(hasStatus(res.body.id, "rolled_back"), WAIT);
    expect(done.error.code).toBe("smoke_failed");
    expect((await api("GET", `/api/instances/${bridge.instanceId}`, { token: viewer.token })).body.stack).toBe("4.1");
  });

  it("a stack the cluster's bridge does not run is 422 stack_unsupported; neither flows nor stack is 400", async () => {
    const bridge = await scriptedBridge({ stack: "4.1", stacks: [{ id: "4.1", nodeRed: "4.1.15" }] });
    const res = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, stack: "5.0" } });
    expect(res.status).toBe(422);
    expectErrorShape(res.body, "stack_unsupported");
    expect(res.body.error.details).toMatchObject({ stack: "5.0", supported: ["4.1"] });
    const both = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, stack: "4.1", flows: FLOWS_V2, versionId: crypto.randomUUID() } });
    expect(both.status).toBe(400);
    const bad = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: bridge.instanceId, stack: "five" } });
    expect(bad.status).toBe(400);
  });
});

describe("failure codes in the deployments row", () => {
  it("the list, read from the row, shows the same error code and message as the deployment", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await bridge.answer("deployment.prepare", BLUE_GREEN);
    await bridge.answer("flows.deploy", { rev: "rev-2" }, false);
    await bridge.answer("deployment.rollback", { replayed: 0 });
    const done = await vi.waitFor(hasStatus(created.id, "rolled_back"), WAIT);
    expect(done.error).toEqual({ code: "step_failed", message: "deploy failed: failed (driver_error)" });
    const list = await api("GET", `/api/deployments?instanceId=${bridge.instanceId}`, { token: viewer.token });
    expect(list.body.items[0]).toMatchObject({ id: created.id, status: "rolled_back", error: done.error });
    const [row] = await withDb((db) => db.select().from(deployments).where(eq(deployments.id, created.id)));
    expect(row).toMatchObject({ error: done.error.message, errorCode: "step_failed" });
  });
});

describe("answers name their owner (ClusterLink's outbox)", () => {
  it("a deployment step's command is recorded with its deployment; its missed outbox deadline leaves the instance's status to the deployment", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    const prepare = await bridge.next("deployment.prepare");
    // deploymentId for bridges built before replyTo; green runs the instance's own stack (the API's default for new instances).
    expect(prepare.args).toEqual({ deploymentId: created.id, stack: "5.0" });
    const link = env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(bridge.cluster.id));
    await runInDurableObject(link, async (_obj, state) => {
      state.storage.sql.exec("UPDATE outbox SET deadline = ? WHERE id = ?", Date.now() - 1, prepare.id);
    });
    await runDurableObjectAlarm(link);
    const row = await runInDurableObject(link, async (_obj, state) =>
      state.storage.sql.exec<{ status: string; reply_to: string }>("SELECT status, reply_to FROM outbox WHERE id = ?", prepare.id).one());
    expect(row.status).toBe("timed_out");
    expect(JSON.parse(row.reply_to)).toEqual({ kind: "deployment", id: created.id });
    expect((await api("GET", `/api/instances/${bridge.instanceId}`, { token: viewer.token })).body.status).toBe("running");
    // A late answer still reaches the deployment, whose own deadline (the step table's) has not passed.
    await bridge.reply(prepare, BLUE_GREEN);
    await bridge.next("flows.deploy");
    expect((await getDeployment(created.id)).phase).toBe("DEPLOY");
  });

  it("commands queued before replyTo existed keep their owner when the outbox table is migrated", async () => {
    const link = env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(unique("legacy")));
    const deploymentId = crypto.randomUUID();
    const instanceId = crypto.randomUUID();
    await runInDurableObject(link, async (obj, state) => {
      const sql = state.storage.sql;
      // The outbox as an object created before this change left it.
      sql.exec("DROP TABLE outbox");
      sql.exec("DELETE FROM meta WHERE key = 'schemaVersion'");
      sql.exec(`CREATE TABLE outbox (
        id TEXT PRIMARY KEY, type TEXT NOT NULL, instance_id TEXT, args TEXT NOT NULL, issued_at TEXT NOT NULL,
        status TEXT NOT NULL, not_before INTEGER NOT NULL, deadline INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT, updated_at INTEGER NOT NULL)`);
      const insert = "INSERT INTO outbox (id, type, instance_id, args, issued_at, status, not_before, deadline, updated_at) VALUES (?, ?, ?, ?, ?, 'sent', ?, ?, ?)";
      const now = Date.now();
      sql.exec(insert, `d_${deploymentId}_drain_0`, "gate.set", instanceId, JSON.stringify({ mode: "drain", deploymentId }), new Date(now).toISOString(), now, now + 60_000, now);
      sql.exec(insert, "cmd_legacy_stop", "instance.stop", instanceId, "{}", new Date(now).toISOString(), now, now + 60_000, now);
      // What a restart does: the constructor runs again on the same storage.
      new (obj.constructor as new (ctx: DurableObjectState, e: typeof env) => unknown)(state, env);
    });
    const owned = await link.complete(`d_${deploymentId}_drain_0`, true, {});
    expect(owned.command?.replyTo).toEqual({ kind: "deployment", id: deploymentId });
    const fleet = await link.complete("cmd_legacy_stop", true, {});
    expect(fleet.command?.replyTo).toBeNull();
  });
});

describe("the audit log records each outcome of a deployment once", () => {
  const rowsOf = (id: string, action: string) => withDb((db) => db.select().from(auditLogs)
    .where(and(eq(auditLogs.resourceType, "deployment"), eq(auditLogs.resourceId, id), eq(auditLogs.action, action))));

  it("AUDIT retried by the alarm after its write committed (the object stopped before it stored the step as done) writes DEPLOYMENT_PROMOTED once", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge, { rollbackWindowSeconds: 600 });
    await throughVerify(bridge, "passed");
    await bridge.answer("route.switch", { replayed: 0 });
    await bridge.answer("smoke.run", { verdict: "passed" });
    await vi.waitFor(async () => expect((await getDeployment(created.id)).phase).toBe("CLEANUP"), WAIT);
    expect(await rowsOf(created.id, "DEPLOYMENT_PROMOTED")).toHaveLength(1);

    const stub = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(created.id));
    // Storage as the object left it had it stopped between Postgres's commit and storing `promoted`: still at AUDIT.
    await runInDurableObject(stub, async (_obj, state) => {
      const s = (await state.storage.get<any>("state"))!;
      expect(s).toMatchObject({ step: "cleanup", awaiting: null });
      await state.storage.put("state", { ...s, step: "audit", waitUntil: null });
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    expect((await getDeployment(created.id)).phase).toBe("CLEANUP");
    expect(await rowsOf(created.id, "DEPLOYMENT_PROMOTED")).toHaveLength(1);
  });

  it("an ending run again from storage (the rollback's answer read back from the outbox) writes DEPLOYMENT_ROLLED_BACK once", async () => {
    const bridge = await scriptedBridge();
    const created = await deploy(bridge);
    await throughVerify(bridge, "failed");
    const rb = await bridge.answer("deployment.rollback", { serving: "blue-rt", replayed: 7 });
    await vi.waitFor(hasStatus(created.id, "rolled_back"), WAIT);
    expect(await rowsOf(created.id, "DEPLOYMENT_ROLLED_BACK")).toHaveLength(1);

    const stub = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(created.id));
    // Back to waiting for the rollback, its deadline passed: the alarm finds the answer in the cluster link's outbox and finishes again.
    await runInDurableObject(stub, async (_obj, state) => {
      const s = (await state.storage.get<any>("state"))!;
      await state.storage.put("state", { ...s, status: "in_progress", step: "rollback", completedAt: null, awaiting: { commandId: rb.id, deadline: Date.now() - 1 } });
      await state.storage.setAlarm(Date.now() + 3_600_000); // run below, not by the runtime
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    expect(await getDeployment(created.id)).toMatchObject({ status: "rolled_back", error: { code: "smoke_failed" } });
    expect(await rowsOf(created.id, "DEPLOYMENT_ROLLED_BACK")).toHaveLength(1);
  });
});

void flowVersions;
