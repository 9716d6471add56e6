/**
 * Instance lifecycle made real, end to end: the Worker under wrangler dev, a
 * real bridge with the process driver, real Node-RED processes. An operator
 * creates an instance over the API and a Node-RED editor answers on its port;
 * stop, start and destroy act on the process; a Node-RED killed by hand shows
 * up as a status change and comes back.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { startBridge, type RunningBridge } from "../../bridge/main.ts";
import { lineLogger } from "../../bridge/log.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

let stack: TestStack;
let bridge: RunningBridge;
let tmp: string;
let token: string;
let clusterId: string;
const events: any[] = [];
let fleetSocket: WebSocket;

async function call(method: string, p: string, body?: unknown) {
  const res = await fetch(`${stack.apiUrl}${p}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

/** Generous: these suites share 2 cores; a stop or a health sweep can take tens of seconds there. */
const WAIT = { timeout: 60_000, interval: 250 };
/** Node-RED coming up (create, start, restart after a kill): 3–4 s idle, far more on a loaded machine. */
const START = { ...WAIT, timeout: 90_000 };

/** The instance once its status is `status` (for vi.waitFor: throws until then). */
const statusIs = (id: string, status: string) => async () => {
  const res = await call("GET", `/api/instances/${id}`);
  expect(res.body?.status, `instance ${id}: ${JSON.stringify(res.body)}`).toBe(status);
  return res.body;
};

/** The pid of the Node-RED process serving this port (found the way an operator would: by its listening port). */
async function nodeRedPid(port: number): Promise<number | undefined> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await fs.readFile(file, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === "0A" && parseInt(cols[1]?.split(":")[1] ?? "", 16) === port) inodes.add(cols[9]!);
    }
  }
  for (const pid of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) return Number(pid);
    }
  }
  return undefined;
}

beforeAll(async () => {
  stack = await startTestStack({ worker: "wrangler" });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-e2e-"));
  await fs.chmod(tmp, 0o755);
  const login = await fetch(`${stack.apiUrl}/api/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: stack.cfg.worker.adminPassword }),
  });
  token = ((await login.json()) as any).token;
  const cluster = await call("POST", "/api/clusters", { name: "e2e-local", driver: "process" });
  clusterId = cluster.body.id;
  bridge = await startBridge({
    clusterId, api: stack.apiUrl, secret: cluster.body.webhookSecret, driver: "process", stateDir: tmp,
    log: lineLogger(() => {}),
  });
  fleetSocket = new WebSocket(`${stack.apiUrl.replace("http", "ws")}/ws/fleet?token=${token}`);
  fleetSocket.on("message", (data) => events.push(JSON.parse(String(data))));
}, 180_000);

afterAll(async () => {
  fleetSocket?.close();
  await bridge?.close();
  await stack?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("instance lifecycle on real Node-RED", () => {
  let id: string;
  let admin: string;

  it("creating an instance brings up a Node-RED whose editor answers, with its endpoints shown", async () => {
    const created = await call("POST", "/api/instances", { name: "e2e-agent", clusterId });
    expect(created.status).toBe(201);
    id = created.body.id;
    // The driver's own "running" event can arrive before the create result that carries the endpoints.
    const running = await vi.waitFor(async () => {
      const inst = await statusIs(id, "running")();
      expect(inst.endpoints?.admin, "running with endpoints").toBeTruthy();
      return inst;
    }, START);
    admin = running.endpoints.admin;
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(running.endpoints.front).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const editor = await fetch(admin);
    expect(editor.status).toBe(200);
    expect(await editor.text()).toContain("Node-RED");
    expect(events.some((e) => e.event === "instance:status" && e.data.instanceId === id && e.data.status === "running")).toBe(true);
  }, 120_000);

  it("a health sweep stores the instance's health with memory figures", async () => {
    stack.qstash.fireSchedule("redforge-health-sweep");
    await stack.qstash.tick();
    // The emulator's own cron may also have swept while the instance was still starting.
    const metrics = await vi.waitFor(async () => {
      const m = await call("GET", `/api/metrics/instances/${id}`);
      expect(m.body?.latest?.state, `health row: ${JSON.stringify(m.body)}`).toBe("running");
      return m.body;
    }, WAIT);
    expect(metrics.latest).toMatchObject({ live: true, state: "running" });
    expect(metrics.latest.rssBytes).toBeGreaterThan(10_000_000);
  }, 90_000);

  it("stop stops the process; start brings it back", async () => {
    expect((await call("POST", `/api/instances/${id}/stop`)).status).toBe(202);
    await vi.waitFor(statusIs(id, "stopped"), WAIT);
    await expect(fetch(admin)).rejects.toThrow();
    expect((await call("POST", `/api/instances/${id}/start`)).status).toBe(202);
    await vi.waitFor(statusIs(id, "running"), START);
    expect((await fetch(admin)).status).toBe(200);
  }, 180_000);

  it("a Node-RED killed by hand shows up as a status change, and the bridge restarts it", async () => {
    const port = Number(new URL(admin).port);
    const pid = await vi.waitFor(async () => {
      const found = await nodeRedPid(port);
      expect(found, `a process listening on ${port}`).toBeDefined();
      return found!;
    }, WAIT);
    const seen = events.length;
    process.kill(pid, "SIGKILL");
    await vi.waitFor(() => expect(events.slice(seen).some((e) => e.data?.instanceId === id && e.data.status !== "running"), "a status change").toBe(true), WAIT);
    await vi.waitFor(async () => {
      await statusIs(id, "running")();
      expect(await nodeRedPid(port), "running after restart, a new Node-RED on its port").not.toBe(pid);
    }, START);
    expect((await fetch(admin)).status).toBe(200);
  }, 240_000);

  it("destroy removes the process and the instance", async () => {
    expect((await call("DELETE", `/api/instances/${id}`)).status).toBe(202);
    await vi.waitFor(async () => { await expect(fetch(admin), "process gone").rejects.toThrow(); }, WAIT);
    expect((await call("GET", `/api/instances/${id}`)).status).toBe(404);
  }, 90_000);
});
