/**
 * What the console needs from the API beyond the CRUD routes: a cluster's
 * link state and bridge version in lists and as `cluster:link` events on
 * /ws/fleet, a restart that is one command, a stored flow version with its
 * flows, and the encryption key rotation status.
 */
import { SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { clusters } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";

let admin: TestUser;

beforeAll(async () => {
  admin = await createUser("admin");
});

async function until<T>(read: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await read();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function openBridge(cluster: { id: string; webhookSecret: string }) {
  const body = JSON.stringify({ bridgeVersion: "9.9.9" });
  const token = await api("POST", `/api/clusters/${cluster.id}/token`, { raw: body, headers: { ...(await webhookHeaders(cluster.webhookSecret, body)), "Content-Type": "application/json" } });
  const res = await SELF.fetch(`http://redforge.test/api/clusters/${cluster.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token.body.token}` } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const commands: any[] = [];
  ws.addEventListener("message", (e) => {
    const frame = JSON.parse(e.data as string);
    if (frame.kind === "command") commands.push(frame.command);
  });
  ws.accept();
  return { ws, commands };
}

async function watchFleet(token: string) {
  const res = await SELF.fetch(`http://redforge.test/ws/fleet?token=${token}`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const events: any[] = [];
  ws.addEventListener("message", (e) => events.push(JSON.parse(e.data as string)));
  ws.accept();
  return { ws, events };
}

describe("clusters in the console", () => {
  it("a bridge's hello and its going away are cluster:link events, and the list shows its state and version", async () => {
    const viewer = await createUser("viewer");
    const cluster = await createCluster(admin.token, unique("link"));
    const watcher = await watchFleet(viewer.token);
    const before = (await api("GET", `/api/clusters/${cluster.id}`, { token: viewer.token })).body;
    expect(before).toMatchObject({ connected: false, bridgeVersion: null, connectedAt: null });

    const bridge = await openBridge(cluster);
    bridge.ws.send(JSON.stringify({ kind: "hello", bridgeVersion: "9.9.9", driver: "process" }));
    const up = await until(() => watcher.events.find((e) => e.event === "cluster:link" && e.data.clusterId === cluster.id && e.data.state === "connected"), "connected event");
    expect(up.data).toMatchObject({ bridgeVersion: "9.9.9", driver: "process" });
    const listed = (await api("GET", "/api/clusters?limit=200", { token: viewer.token })).body.items.find((c: any) => c.id === cluster.id);
    expect(listed).toMatchObject({ status: "connected", connected: true, bridgeVersion: "9.9.9" });
    expect(typeof listed.connectedAt).toBe("string");

    bridge.ws.close(1000, "bye");
    const down = await until(() => watcher.events.find((e) => e.event === "cluster:link" && e.data.clusterId === cluster.id && e.data.state === "disconnected"), "disconnected event");
    expect(down.data.bridgeVersion).toBe("9.9.9");
    const after = (await api("GET", `/api/clusters/${cluster.id}`, { token: viewer.token })).body;
    expect(after).toMatchObject({ status: "disconnected", connected: false, bridgeVersion: "9.9.9" });
    const [row] = await withDb((db) => db.select({ status: clusters.status }).from(clusters).where(eq(clusters.id, cluster.id)));
    expect(row!.status).toBe("disconnected");
    watcher.ws.close();
  });
});

describe("instance restart", () => {
  it("is one instance.restart command; its answer makes the instance running; a stopped instance is 409", async () => {
    const cluster = await createCluster(admin.token, unique("rs"));
    const inst = await createInstance(admin.token, cluster.id);
    const bridge = await openBridge(cluster);
    const res = await api("POST", `/api/instances/${inst.id}/restart`, { token: admin.token });
    expect(res.status).toBe(202);
    const command = await until(() => bridge.commands.find((c) => c.id === res.body.commandId), "restart command");
    expect(command).toMatchObject({ type: "instance.restart", instanceId: inst.id });
    const text = JSON.stringify({ type: "command.result", commandId: command.id, status: "ok", result: { state: "running" } });
    const answered = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(answered.status).toBe(202);
    expect((await api("GET", `/api/instances/${inst.id}`, { token: admin.token })).body.status).toBe("running");
    const audit = (await api("GET", `/api/audit?resourceType=instance&resourceId=${inst.id}&action=INSTANCE_RESTART_REQUESTED`, { token: admin.token })).body.items;
    expect(audit).toHaveLength(1);

    expect((await api("POST", `/api/instances/${inst.id}/stop`, { token: admin.token })).status).toBe(202);
    const refused = await api("POST", `/api/instances/${inst.id}/restart`, { token: admin.token });
    expect(refused.status).toBe(409);
    expectErrorShape(refused.body, "instance_not_running");
    bridge.ws.close();
  });
});

describe("stored flow versions", () => {
  it("GET /api/deployments/versions/:id returns one version with its flows; an unknown id is 404", async () => {
    const cluster = await createCluster(admin.token);
    const flows = [{ id: "t1", type: "tab", label: "one" }, { id: "n1", type: "inject", z: "t1", wires: [] }];
    const inst = await createInstance(admin.token, cluster.id, { flows });
    const viewer = await createUser("viewer");
    const [v1] = (await api("GET", `/api/deployments/versions?instanceId=${inst.id}`, { token: viewer.token })).body.items;
    const res = await api("GET", `/api/deployments/versions/${v1.id}`, { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: v1.id, instanceId: inst.id, version: 1, digest: v1.digest, flows });
    const missing = await api("GET", `/api/deployments/versions/${crypto.randomUUID()}`, { token: viewer.token });
    expect(missing.status).toBe(404);
    expectErrorShape(missing.body, "flow_version_not_found");
    expect((await api("GET", "/api/deployments/versions/not-a-uuid", { token: viewer.token })).status).toBe(400);
  });
});

describe("encryption key status", () => {
  it("names the current key and counts the values each key id seals", async () => {
    await createCluster(admin.token);
    const res = await api("GET", "/api/admin/encryption", { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body.currentKeyId).toMatch(/^[0-9a-f]{8}$/);
    expect(Array.isArray(res.body.previousKeyIds)).toBe(true);
    const clusterSecrets = res.body.columns["clusters.webhook_secret_sealed"];
    expect(clusterSecrets[res.body.currentKeyId]).toBeGreaterThan(0);
    expect(typeof res.body.notCurrent).toBe("number");
  });
});

describe("health", () => {
  it("says which control plane version answers", async () => {
    const res = await api("GET", "/api/health");
    expect(res.body.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});
