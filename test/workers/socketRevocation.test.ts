/**
 * A /ws/fleet watcher whose access changes (user disabled, role changed, API
 * key revoked) is closed with 4401 before the next event reaches it; watchers
 * whose access did not change keep streaming.
 */
import { describe, expect, it, vi } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createUser, openStream, unique, type TestUser } from "./helpers.ts";

const WAIT = { timeout: 10_000, interval: 20 };

async function watch(token: string) {
  const s = await openStream("/ws/fleet", token);
  return { ...s, statusEvents: () => s.events.filter((e) => e.event === "instance:status") };
}

async function fleetWithOneInstance(admin: TestUser) {
  const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("rv") } })).body;
  const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("rv"), clusterId: cluster.id } })).body;
  return async (state: string) => {
    const text = JSON.stringify({ type: "instance.status", instanceId: inst.id, state, reason: state });
    const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(res.status).toBeLessThan(300);
  };
}

describe("sockets follow access changes", () => {
  it("disabling, demoting or revoking the key closes that watcher's socket; others keep streaming", async () => {
    const admin = await createUser("admin");
    const publish = await fleetWithOneInstance(admin);
    const disabled = await createUser("viewer");
    const demoted = await createUser("operator");
    const keyOwner = await createUser("viewer");
    const key = (await api("POST", "/api/api-keys", { token: keyOwner.token, body: { name: unique("k") } })).body;
    const bystander = await createUser("viewer");
    const sockets = {
      disabled: await watch(disabled.token), demoted: await watch(demoted.token),
      key: await watch(key.key), bystander: await watch(bystander.token),
    };
    await publish("failed");
    await vi.waitFor(() => expect(Object.values(sockets).every((s) => s.statusEvents().length === 1)).toBe(true), WAIT);

    expect((await api("PATCH", `/api/users/${disabled.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await api("PATCH", `/api/users/${demoted.id}`, { token: admin.token, body: { role: "viewer" } })).status).toBe(200);
    expect((await api("DELETE", `/api/api-keys/${key.id}`, { token: keyOwner.token })).status).toBe(200);
    await publish("running");
    await vi.waitFor(() => expect(sockets.bystander.statusEvents().length).toBe(2), WAIT);
    await vi.waitFor(() => {
      for (const name of ["disabled", "demoted", "key"] as const) expect(sockets[name].closed(), name).toBe(4401);
    }, WAIT);
    for (const name of ["disabled", "demoted", "key"] as const) expect(sockets[name].statusEvents(), name).toHaveLength(1);
    expect(sockets.bystander.closed()).toBeNull();
    sockets.bystander.ws.close();
  });
});
