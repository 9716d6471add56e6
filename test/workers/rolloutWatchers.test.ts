/**
 * /ws/rollouts/:id on the streams' shared watcher mechanism (durable/watchers.ts):
 * a watcher gets the rollout's current state first, and one whose user is
 * disabled while it watches is closed with 4401 before the next event, while
 * another watcher keeps streaming (the same contract as /ws/fleet,
 * /ws/deployments/:id and /ws/audit).
 */
import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { api, createUser, unique, type TestUser } from "./helpers.ts";
import { fleetBridge } from "./rolloutFleet.ts";

const WAIT = { timeout: 90_000, interval: 100 };
const FLOWS_V2 = [{ id: "t1", type: "tab", label: "v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];

let admin: TestUser;
let viewer: TestUser;
beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
});

async function watch(id: string, token: string) {
  const res = await SELF.fetch(`http://redforge.test/ws/rollouts/${id}?token=${token}`, { headers: { Upgrade: "websocket" } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const events: any[] = [];
  let closed: number | null = null;
  ws.addEventListener("message", (e) => { events.push(JSON.parse(e.data as string)); });
  ws.addEventListener("close", (e) => { closed = e.code; });
  ws.accept();
  return { ws, events, closed: () => closed };
}

describe("/ws/rollouts/:id watchers", { timeout: 180_000 }, () => {
  it("current state first; a watcher disabled while watching is closed with 4401 before the next event, another keeps streaming", async () => {
    const bridge = await fleetBridge(admin);
    const env1 = unique("env");
    await bridge.instance({ env: env1 });
    await bridge.instance({ env: env1 });
    const started = await api("POST", "/api/rollouts", {
      token: admin.token,
      body: { flows: FLOWS_V2, deployment: { analysisSeconds: 0, rollbackWindowSeconds: 0 }, selector: `env=${env1}`, waves: [1, "100%"], pause: { kind: "approval" } },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const id = started.body.id as string;
    await vi.waitFor(async () => expect((await api("GET", `/api/rollouts/${id}`, { token: viewer.token })).body.status).toBe("awaiting_approval"), WAIT);

    const leaver = await createUser("viewer");
    const gone = await watch(id, leaver.token);
    const stays = await watch(id, viewer.token);
    await vi.waitFor(() => expect(gone.events.length && stays.events.length).toBeTruthy(), WAIT);
    for (const s of [gone, stays]) expect(s.events[0]).toMatchObject({ event: "rollout:state", data: { id, status: "awaiting_approval" } });

    expect((await api("PATCH", `/api/users/${leaver.id}`, { token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await api("POST", `/api/rollouts/${id}/pause`, { token: admin.token })).status).toBe(202);
    await vi.waitFor(() => expect(stays.events.some((e) => e.event === "rollout:state" && e.data.status === "paused")).toBe(true), WAIT);
    await vi.waitFor(() => expect(gone.closed()).toBe(4401), WAIT);
    expect(gone.events.map((e) => e.event)).toEqual(["rollout:state"]);
    expect(stays.closed()).toBeNull();
    stays.ws.close();
  });
});
