/**
 * The control plane's side of the bridge protocol: signed webhooks (forged,
 * stale and replayed ones change nothing), the command channel over the
 * ClusterLink WebSocket, command results settling instance status once, and
 * commands nobody answers ending in `unknown`.
 */
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import type { ClusterLink } from "../../durable/clusterLink.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createUser, expectErrorShape, unique, type TestUser } from "./helpers.ts";

let admin: TestUser;

async function newCluster() {
  const res = await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("br") } });
  return res.body as { id: string; webhookSecret: string };
}

async function report(cluster: { id: string; webhookSecret: string }, body: unknown, opts: { secret?: string; now?: number; id?: string } = {}) {
  const text = JSON.stringify(body);
  const headers = await webhookHeaders(opts.secret ?? cluster.webhookSecret, text, opts.id, opts.now);
  return api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
}

async function clusterToken(cluster: { id: string; webhookSecret: string }) {
  const body = JSON.stringify({ bridgeVersion: "test" });
  const headers = await webhookHeaders(cluster.webhookSecret, body);
  const res = await api("POST", `/api/clusters/${cluster.id}/token`, { raw: body, headers: { ...headers, "Content-Type": "application/json" } });
  return res;
}

async function openLink(clusterId: string, token: string) {
  const res = await SELF.fetch(`http://redforge.test/api/clusters/${clusterId}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const frames: any[] = [];
  const waiters: (() => void)[] = [];
  ws.addEventListener("message", (e) => { frames.push(JSON.parse(e.data as string)); waiters.splice(0).forEach((w) => w()); });
  ws.accept();
  const next = async (pred: (f: any) => boolean) => {
    for (let i = 0; i < 100; i++) {
      const hit = frames.find(pred);
      if (hit) return hit;
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 50); });
    }
    throw new Error(`no matching frame; got ${JSON.stringify(frames)}`);
  };
  return { ws, frames, next };
}

beforeAll(async () => {
  admin = await createUser("admin");
});

describe("bridge webhooks", () => {
  it("a forged, stale or replayed webhook is 401 and changes nothing", async () => {
    const cluster = await newCluster();
    const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("wh"), clusterId: cluster.id } })).body;
    const running = { type: "instance.status", instanceId: inst.id, state: "running" };
    const forged = await report(cluster, running, { secret: `whsec_${btoa("not-the-cluster-secret-32-bytes!")}` });
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe("invalid_signature");
    const stale = await report(cluster, running, { now: Date.now() - 10 * 60_000 });
    expect(stale.status).toBe(401);
    expect(stale.body.error.code).toBe("stale_webhook");
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).body.status).toBe("pending");

    const ok = await report(cluster, running, { id: "msg_once" });
    expect(ok.status).toBe(202);
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).body.status).toBe("running");
    const replay = await report(cluster, { ...running, state: "failed" }, { id: "msg_once" });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe("webhook_replayed");
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).body.status).toBe("running");
  });

  it("a rotated-out secret stops verifying at once, even after webhooks under it were accepted (cached)", async () => {
    const cluster = await newCluster();
    const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("rot"), clusterId: cluster.id } })).body;
    const running = { type: "instance.status", instanceId: inst.id, state: "running" };
    expect((await report(cluster, running)).status).toBe(202);
    const rotated = await api("POST", `/api/clusters/${cluster.id}/rotate-secret`, { token: admin.token });
    expect(rotated.status).toBe(200);
    const old = await report(cluster, { ...running, state: "stopped" });
    expect(old.status).toBe(401);
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).body.status).toBe("running");
    expect((await report({ id: cluster.id, webhookSecret: rotated.body.webhookSecret }, { ...running, state: "stopped" })).status).toBe(202);
  });

  it("a bridge cannot change another cluster's instance, and a bad body is 400", async () => {
    const mine = await newCluster();
    const theirs = await newCluster();
    const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("x"), clusterId: theirs.id } })).body;
    const res = await report(mine, { type: "instance.status", instanceId: inst.id, state: "failed" });
    expect(res.status).toBe(202);
    expect(res.body.known).toBe(false);
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).body.status).toBe("pending");
    const bad = await report(mine, { type: "instance.status", instanceId: "nope", state: "sleeping" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("validation_failed");
  });
});

describe("command channel", () => {
  it("a cluster token needs a signed request, and the link needs that cluster's token", async () => {
    const cluster = await newCluster();
    const other = await newCluster();
    const unsigned = await api("POST", `/api/clusters/${cluster.id}/token`, { body: {} });
    expect(unsigned.status).toBe(401);
    const good = await clusterToken(cluster);
    expect(good.status).toBe(200);
    const wrong = await SELF.fetch(`http://redforge.test/api/clusters/${other.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${good.body.token}` } });
    expect(wrong.status).toBe(401);
    const userToken = await SELF.fetch(`http://redforge.test/api/clusters/${cluster.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${admin.token}` } });
    expect(userToken.status).toBe(401);
  });

  it("a deleted cluster's bridge cannot reopen its link with a token issued before the delete", async () => {
    const cluster = await newCluster();
    const token = (await clusterToken(cluster)).body.token;
    expect((await api("DELETE", `/api/clusters/${cluster.id}`, { token: admin.token })).status).toBe(204);
    const res = await SELF.fetch(`http://redforge.test/api/clusters/${cluster.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(404);
    expectErrorShape(await res.json(), "cluster_not_found");
  });

  it("create sends instance.create over the link; its result sets status and endpoints once", async () => {
    const cluster = await newCluster();
    const created = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("cmd"), clusterId: cluster.id, env: { A: "1" } } })).body;
    const link = await openLink(cluster.id, (await clusterToken(cluster)).body.token);
    const frame = await link.next((f) => f.kind === "command" && f.command.id === created.commandId);
    expect(frame.command).toMatchObject({ type: "instance.create", instanceId: created.id });
    expect(frame.command.args.spec).toMatchObject({ id: created.id, name: created.name, env: { A: "1" } });
    expect(frame.command.args.spec.credentialSecret.length).toBeGreaterThanOrEqual(32);

    const result = { type: "command.result", commandId: created.commandId, status: "ok", result: { state: "running", endpoints: { admin: "http://127.0.0.1:1880" } } };
    expect((await report(cluster, result)).status).toBe(202);
    const after = (await api("GET", `/api/instances/${created.id}`, { token: admin.token })).body;
    expect(after.status).toBe("running");
    expect(after.endpoints).toEqual({ admin: "http://127.0.0.1:1880" });
    // An answer without `stack` comes from a bridge from before stacks: it ran 4.1 whatever the spec said.
    expect(after).toMatchObject({ stack: "4.1", nodeRedVersion: null });

    // A stop, then a duplicate of the old create result: the instance stays stopped.
    const stop = (await api("POST", `/api/instances/${created.id}/stop`, { token: admin.token })).body;
    await link.next((f) => f.kind === "command" && f.command.id === stop.commandId);
    await report(cluster, { type: "command.result", commandId: stop.commandId, status: "ok" });
    await report(cluster, result);
    expect((await api("GET", `/api/instances/${created.id}`, { token: admin.token })).body.status).toBe("stopped");
    link.ws.close();
  });

  it("the bridge's hello lists its stacks: GET /api/stacks shows them, an instance on another is 422, the create result's release is stored", async () => {
    const cluster = await newCluster();
    const before = await api("GET", `/api/stacks?clusterId=${cluster.id}`, { token: admin.token });
    expect(before.body).toMatchObject({ clusterId: cluster.id, items: [], reported: false, default: "5.0" });
    // Before the bridge says what it runs, any well-formed stack is accepted (the bridge refuses what it cannot run).
    const early = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("early"), clusterId: cluster.id, stack: "9.9" } });
    expect(early.status).toBe(201);
    const link = await openLink(cluster.id, (await clusterToken(cluster)).body.token);
    link.ws.send(JSON.stringify({ kind: "hello", bridgeVersion: "test", driver: "process", stacks: [{ id: "5.0", nodeRed: "5.0.7" }, { id: "4.1", nodeRed: "4.1.15" }] }));
    const listed = await vi.waitFor(async () => {
      const res = await api("GET", `/api/stacks?clusterId=${cluster.id}`, { token: admin.token });
      expect(res.body.reported).toBe(true);
      return res.body;
    }, { timeout: 10_000, interval: 50 });
    expect(listed.items).toEqual([{ id: "5.0", nodeRed: "5.0.7" }, { id: "4.1", nodeRed: "4.1.15" }]);

    const unsupported = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("st"), clusterId: cluster.id, stack: "3.1" } });
    expect(unsupported.status).toBe(422);
    expect(unsupported.body.error).toMatchObject({ code: "stack_unsupported", details: { stack: "3.1", supported: ["5.0", "4.1"] } });

    const created = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("st"), clusterId: cluster.id } })).body;
    expect(created).toMatchObject({ stack: "5.0", nodeRedVersion: null });
    const frame = await link.next((f) => f.kind === "command" && f.command.id === created.commandId);
    expect(frame.command.args.spec.stack).toBe("5.0");
    await report(cluster, { type: "command.result", commandId: created.commandId, status: "ok", result: { state: "running", endpoints: { admin: "http://127.0.0.1:1880" }, stack: { id: "5.0", nodeRed: "5.0.7" } } });
    const after = (await api("GET", `/api/instances/${created.id}`, { token: admin.token })).body;
    expect(after).toMatchObject({ stack: "5.0", nodeRedVersion: "5.0.7", status: "running" });

    // PATCH names only the stack it runs; another stack is a runtime upgrade (a deployment).
    expect((await api("PATCH", `/api/instances/${created.id}`, { token: admin.token, body: { stack: "5.0" } })).status).toBe(200);
    const change = await api("PATCH", `/api/instances/${created.id}`, { token: admin.token, body: { stack: "4.1" } });
    expect(change.status).toBe(409);
    expect(change.body.error.code).toBe("stack_change_needs_deployment");
    const viewer = await createUser("viewer");
    expect((await api("GET", `/api/stacks?clusterId=${cluster.id}`, { token: viewer.token })).status).toBe(200);
    expect((await api("GET", `/api/stacks?clusterId=${crypto.randomUUID()}`, { token: admin.token })).status).toBe(404);
    link.ws.close();
  });

  it("unanswered commands are redelivered on reconnect", async () => {
    const cluster = await newCluster();
    const created = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("re"), clusterId: cluster.id } })).body;
    const first = await openLink(cluster.id, (await clusterToken(cluster)).body.token);
    await first.next((f) => f.kind === "command" && f.command.id === created.commandId);
    first.ws.close();
    const second = await openLink(cluster.id, (await clusterToken(cluster)).body.token);
    const again = await second.next((f) => f.kind === "command" && f.command.id === created.commandId);
    expect(again.command.type).toBe("instance.create");
    second.ws.close();
  });

  it("a command the bridge never answers marks the instance unknown, not running", async () => {
    const cluster = await newCluster();
    const created = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("to"), clusterId: cluster.id } })).body;
    const stub = env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(cluster.id));
    // Pull the deadline into the past instead of waiting three minutes.
    await runInDurableObject(stub, (_o: ClusterLink, state) => {
      state.storage.sql.exec("UPDATE outbox SET deadline = ? WHERE id = ?", Date.now() - 1, created.commandId);
      state.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('clusterId', ?)", cluster.id);
    });
    await runDurableObjectAlarm(stub);
    const after = (await api("GET", `/api/instances/${created.id}`, { token: admin.token })).body;
    expect(after.status).toBe("unknown");
    expect(after.statusReason).toMatch(/did not answer instance.create/);
  });
});

describe("health and metrics", () => {
  it("health reports become history, move the status, and show in instance and fleet metrics", async () => {
    const cluster = await newCluster();
    const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("hm"), clusterId: cluster.id } })).body;
    const sample = (state: string, live: boolean, rss: number, at: number) => ({
      instanceId: inst.id, state, live, ready: live, rssBytes: rss, heapUsedBytes: rss / 2, flowsState: "start",
      missingNodeTypes: [], checkedAt: new Date(at).toISOString(),
    });
    const t = Date.now();
    expect((await report(cluster, { type: "health.report", instances: [sample("running", true, 100e6, t - 2000)] })).status).toBe(202);
    expect((await report(cluster, { type: "health.report", instances: [sample("failed", false, 0, t - 1000)] })).status).toBe(202);
    const m = await api("GET", `/api/metrics/instances/${inst.id}`, { token: admin.token });
    expect(m.status).toBe(200);
    expect(m.body.series.map((p: any) => p.state)).toEqual(["running", "failed"]);
    expect(m.body.latest.live).toBe(false);
    expect(m.body.status).toBe("failed");
    const fleet = await api("GET", "/api/metrics/fleet", { token: admin.token });
    expect(fleet.status).toBe(200);
    expect(fleet.body.instances.total).toBeGreaterThanOrEqual(1);
    expect(fleet.body.instances.byStatus.failed).toBeGreaterThanOrEqual(1);
    expect(fleet.body.health.reporting).toBeGreaterThanOrEqual(1);
  });

  it("/ws/fleet streams instance:status to a viewer", async () => {
    const viewer = await createUser("viewer");
    const cluster = await newCluster();
    const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("ws"), clusterId: cluster.id } })).body;
    const anon = await SELF.fetch("http://redforge.test/ws/fleet", { headers: { Upgrade: "websocket" } });
    expect(anon.status).toBe(401);
    const res = await SELF.fetch(`http://redforge.test/ws/fleet?token=${viewer.token}`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const events: any[] = [];
    ws.addEventListener("message", (e) => events.push(JSON.parse(e.data as string)));
    ws.accept();
    await report(cluster, { type: "instance.status", instanceId: inst.id, state: "failed", reason: "boom" });
    for (let i = 0; i < 50 && !events.some((e) => e.event === "instance:status"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(events.find((e) => e.event === "instance:status")?.data).toMatchObject({ instanceId: inst.id, status: "failed", reason: "boom" });
    ws.close();
  });
});
