/**
 * The RedForge node package in one real Node-RED (4.1, spawned on
 * 127.0.0.1): packed offline, hot-loaded through POST /nodes, it serves
 * /healthz that follows the flows' real state (running, stopped, waiting for
 * a missing node type) and registers a redforge-gate node that passes
 * messages through; after a restart it loads from the userDir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { AdminApi } from "../../bridge/drivers/nodeRedAdmin.ts";
import { instanceHealthSchema } from "../../protocol/reports.ts";
import { freePort } from "../../dev/ports.ts";
import { until } from "../harness/eventually.ts";

// REDFORGE_TEST_NODE_RED=node-red-5 runs the suite on another installed stack (docs/stacks.md).
const RED_JS = path.resolve(`node_modules/${process.env.REDFORGE_TEST_NODE_RED ?? "node-red"}/red.js`);
const PACKAGE = "@redforge/node-red-contrib-redforge";

let tmp: string;
let userDir: string;
let tarball: string;
let port: number;
let nodeRed: ChildProcess | undefined;
const output: string[] = [];

const base = () => `http://127.0.0.1:${port}`;

function settingsJs(): string {
  // Nothing may leave 127.0.0.1: no telemetry / update check, no palette catalogue, npm offline.
  return `module.exports = {
  uiHost: "127.0.0.1",
  flowFile: "flows.json",
  credentialSecret: "redforge-test-credential-secret",
  telemetry: { enabled: false, updateNotification: false },
  runtimeState: { enabled: true, ui: false },
  diagnostics: { enabled: true, ui: false },
  editorTheme: { tours: false, palette: { catalogues: [] } },
  externalModules: { autoInstall: false, palette: { allowInstall: true, allowUpload: true } },
  logging: { console: { level: "info", metrics: false, audit: false } },
};
`;
}

async function startNodeRed(): Promise<void> {
  nodeRed = spawn(process.execPath, [RED_JS, "--userDir", userDir, "--settings", path.join(userDir, "settings.js"), "--port", String(port)], {
    env: { ...process.env, npm_config_offline: "true", npm_config_audit: "false", npm_config_fund: "false", NODE_RED_ENABLE_PROJECTS: "false" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (chunk: Buffer) => { output.push(chunk.toString()); if (output.length > 200) output.shift(); };
  nodeRed.stdout!.on("data", keep);
  nodeRed.stderr!.on("data", keep);
  await untilNodeRed("Node-RED admin API", async () => (await get("/settings")).status === 200, 30_000);
}

async function stopNodeRed(): Promise<void> {
  const child = nodeRed;
  nodeRed = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Waits for Node-RED, failing at once (with its output) if it exited. */
const untilNodeRed = (what: string, probe: () => Promise<boolean>, timeoutMs = 15_000) => until(what, probe, {
  timeoutMs,
  explain: () => `Node-RED said:\n${output.slice(-30).join("")}`,
  failIf: () => (nodeRed && nodeRed.exitCode !== null ? `Node-RED exited:\n${output.join("")}` : undefined),
});

async function get(p: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base()}${p}`, { headers: { accept: "application/json" } });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

async function deploy(flows: unknown[]): Promise<void> {
  const res = await fetch(`${base()}/flows`, {
    method: "POST",
    headers: { "content-type": "application/json", "Node-RED-API-Version": "v2", "Node-RED-Deployment-Type": "full" },
    body: JSON.stringify({ flows }),
  });
  expect(res.status, await res.text()).toBe(200);
}

async function setFlowsState(state: "start" | "stop"): Promise<void> {
  const res = await fetch(`${base()}/flows/state`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ state }) });
  expect(res.status, await res.text()).toBe(200);
}

const healthzIs = (status: number, flows: string) => async () => {
  const res = await get("/healthz");
  return res.status === status && res.body?.flows === flows;
};

type FlowNode = { id: string; type: string } & Record<string, unknown>;

function httpFlow(route: string, middle: FlowNode[] = []) {
  const tab = { id: "t1", type: "tab", label: "main" };
  const chain: FlowNode[] = [{ id: "in1", type: "http in", z: "t1", url: route, method: "post" }, ...middle.map((n) => ({ ...n, z: "t1" })), { id: "out1", type: "http response", z: "t1" }];
  const nodes = chain.map((n, i) => ({ ...n, wires: i < chain.length - 1 ? [[chain[i + 1]!.id]] : [] }));
  return [tab, ...nodes];
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-nodepkg-"));
  userDir = path.join(tmp, "userDir");
  await fs.mkdir(userDir);
  await fs.writeFile(path.join(userDir, "settings.js"), settingsJs());
  tarball = await packNodePackage(path.join(tmp, "pack"));
  port = await freePort();
  await startNodeRed();
});

afterAll(async () => {
  await stopNodeRed();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("RedForge node package in a real Node-RED", () => {
  it("runs on the Node-RED it was given", async () => {
    // /settings says "4.1.15-git" when @node-red/runtime sits four levels below a git checkout.
    const { version } = JSON.parse(await fs.readFile(path.join(path.dirname(RED_JS), "package.json"), "utf8")) as { version: string };
    expect((await get("/settings")).body.version).toMatch(new RegExp(`^${version.replaceAll(".", "\\.")}(-git)?$`));
  });

  it("packs offline into a tarball Node-RED accepts", async () => {
    expect(path.basename(tarball)).toBe("redforge-node-red-contrib-redforge-0.2.0.tgz");
    expect((await fs.stat(tarball)).size).toBeGreaterThan(500);
  });

  it("hot-loads through POST /nodes into running flows and serves /healthz 200", async () => {
    await deploy(httpFlow("/ping"));
    await untilNodeRed("/ping route", async () => (await fetch(`${base()}/ping`, { method: "POST" })).status === 200);
    expect((await get("/healthz")).status).toBe(404); // nothing serves it before the package

    const form = new FormData();
    form.append("tarball", new Blob([await fs.readFile(tarball)], { type: "application/gzip" }), path.basename(tarball));
    const res = await fetch(`${base()}/nodes`, { method: "POST", body: form, headers: { accept: "application/json" } });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { name: string }).name).toBe(PACKAGE);

    const health = await get("/healthz");
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: "ok", flows: "started", nodeRed: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });

  it("lists redforge-gate in GET /nodes", async () => {
    const nodes = await get("/nodes");
    expect(nodes.status).toBe(200);
    const gate = (nodes.body as { module: string; types: string[]; enabled: boolean }[]).find((n) => n.types.includes("redforge-gate"));
    expect(gate).toMatchObject({ module: PACKAGE, enabled: true });
  });

  it("redforge-gate passes messages through unchanged", async () => {
    await deploy(httpFlow("/gate", [{ id: "gate1", type: "redforge-gate", name: "entry" }]));
    await untilNodeRed("/gate route", async () => (await fetch(`${base()}/gate`, { method: "POST" })).status === 200);
    const res = await fetch(`${base()}/gate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ order: 42 }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ order: 42 });
    expect((await get("/healthz")).body.flows).toBe("started");
  });

  it("the deploy gate drains: HTTP work waits (up to its hold limit, then 503), is answered when active again, and is counted gate → exit", async () => {
    await deploy(httpFlow("/gated", [{ id: "g2", type: "redforge-gate", holdLimit: 2 }, { id: "x2", type: "redforge-exit" }]));
    await untilNodeRed("/gated route", async () => (await fetch(`${base()}/gated`, { method: "POST" })).status === 200);
    const gate = async (mode?: string) => {
      const res = await fetch(`${base()}/redforge/gate`, mode
        ? { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode }) }
        : { headers: { accept: "application/json" } });
      return { status: res.status, body: (await res.json()) as any };
    };
    const bad = await gate("sideways");
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_mode");
    // In flight from earlier tests: the pass-through flow above has a gate but no exit (those wait for the TTL).
    const beforeStatus = (await gate()).body;
    const before = beforeStatus.counters;
    expect((await gate("drain")).body.mode).toBe("drain");
    let settled = 0;
    const held = [1, 2].map((n) => fetch(`${base()}/gated`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ n }) })
      .then(async (r) => { settled++; return { status: r.status, body: await r.json() }; }));
    await untilNodeRed("two requests held", async () => (await gate()).body.heldHttp === 2, 5_000);
    const refused = await fetch(`${base()}/gated`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(settled).toBe(0);
    expect((await gate("active")).body).toMatchObject({ mode: "active", heldHttp: 0 });
    expect(await Promise.all(held)).toEqual([{ status: 200, body: { n: 1 } }, { status: 200, body: { n: 2 } }]);
    const after = (await gate()).body;
    expect(after.inFlight).toBe(beforeStatus.inFlight);
    expect(after.counters.exited - before.exited).toBe(2);
    expect(after.counters.refusedHttp - before.refusedHttp).toBe(1);
  });

  it("counts messages per flow (in at the gate, out and errors at the exit) and the process's CPU, and the bridge's health probe carries them", async () => {
    await deploy(httpFlow("/counted", [
      { id: "g3", type: "redforge-gate" },
      // The message contract's error path: a failed message carries msg.error to the exit.
      { id: "f3", type: "function", func: "if (msg.payload && msg.payload.fail) msg.error = 'boom';\nreturn msg;", outputs: 1 },
      { id: "x3", type: "redforge-exit" },
    ]));
    await untilNodeRed("/counted route", async () => (await fetch(`${base()}/counted`, { method: "POST" })).status === 200);
    const flowT1 = async () => {
      const s = (await get("/redforge/gate")).body;
      return { status: s, t1: (s.flows as Array<{ flowId: string; in: number; out: number; errors: number }>).find((f) => f.flowId === "t1")! };
    };
    const before = await flowT1();
    for (const body of [{ n: 1 }, { n: 2, fail: true }, { n: 3 }]) {
      const res = await fetch(`${base()}/counted`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
    }
    const after = await flowT1();
    expect({ in: after.t1.in - before.t1.in, out: after.t1.out - before.t1.out, errors: after.t1.errors - before.t1.errors }).toEqual({ in: 3, out: 3, errors: 1 });
    expect(after.status.messages.in).toBeGreaterThanOrEqual(after.t1.in);
    expect(after.status.cpuSeconds).toBeGreaterThan(0);
    expect(after.status.cpuSeconds).toBeGreaterThanOrEqual(before.status.cpuSeconds);

    // The bridge's probe (both drivers use it) reads the same figures, and they fit the health report's schema.
    const probe = await new AdminApi("unused-no-admin-auth", { deployMs: 10_000, probeMs: 5_000 }).probe(base());
    expect(probe.cpuSeconds).toBeGreaterThan(0);
    expect(probe.messages!.in).toBeGreaterThanOrEqual(after.status.messages.in);
    expect(probe.flows!.find((f) => f.flowId === "t1")!.errors).toBeGreaterThanOrEqual(after.t1.errors);
    const wire = instanceHealthSchema.safeParse({ instanceId: crypto.randomUUID(), state: "running", ...probe, checkedAt: new Date().toISOString() });
    expect(wire.success, JSON.stringify(wire.error?.issues)).toBe(true);
  });

  it("retire (the old runtime behind a Kubernetes Service): held requests are answered, and every answer closes its keep-alive connection", async () => {
    await deploy(httpFlow("/retiring", [{ id: "g3", type: "redforge-gate" }, { id: "x3", type: "redforge-exit" }]));
    await untilNodeRed("/retiring route", async () => (await fetch(`${base()}/retiring`, { method: "POST" })).status === 200);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const post = (n: number) => new Promise<{ status: number; connection?: string; body: unknown }>((resolve, reject) => {
      const req = http.request(`${base()}/retiring`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, ...(res.headers.connection ? { connection: res.headers.connection } : {}), body: JSON.parse(text) }));
      });
      req.on("socket", (s) => sockets.add(s));
      req.on("error", reject);
      req.end(JSON.stringify({ n }));
    });
    const setMode = (mode: string) => fetch(`${base()}/redforge/gate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode }) }).then((r) => r.json() as Promise<any>);
    try {
      // Active: keep-alive, one connection for two requests.
      expect((await post(1)).connection).toBe("keep-alive");
      expect((await post(2)).connection).toBe("keep-alive");
      expect(sockets.size).toBe(1);
      // openHttp counts client connections that carried gated work and are still open (the agent's, at least).
      expect((await get("/redforge/gate")).body.openHttp).toBeGreaterThanOrEqual(1);
      await setMode("drain");
      const held = post(3);
      await untilNodeRed("one request held", async () => (await setMode("drain")).heldHttp === 1, 5_000);
      expect((await setMode("retire")).mode).toBe("retire");
      expect(await held).toEqual({ status: 200, connection: "close", body: { n: 3 } });
      // The next request needs a new connection (the Service would route it to the new runtime), and closes it too.
      expect(await post(4)).toEqual({ status: 200, connection: "close", body: { n: 4 } });
      expect(sockets.size).toBe(2);
      // Clients leave a retired runtime: closed by its answers, or by their own idle timeout (the bridge waits for 0 before stopping it).
      // (Asked on a connection of its own: fetch's pool would keep reusing one that carried gated work.)
      const openHttp = () => new Promise<number>((resolve, reject) => {
        http.get(`${base()}/redforge/gate`, { agent: false }, (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve((JSON.parse(text) as { openHttp: number }).openHttp));
        }).on("error", reject);
      });
      await untilNodeRed("no client connection open", async () => (await openHttp()) === 0, 10_000);
      await setMode("active");
      expect((await post(5)).connection).toBe("keep-alive");
      expect((await post(6)).connection).toBe("keep-alive");
      expect(sockets.size).toBe(3);
    } finally {
      agent.destroy();
      await setMode("active");
    }
  });

  it("/healthz follows the flows: 503 when stopped, 200 again when started", async () => {
    await setFlowsState("stop");
    await untilNodeRed("/healthz 503 stopped", healthzIs(503, "stopped"), 5_000);
    expect((await get("/healthz")).body.status).toBe("unavailable");
    await setFlowsState("start");
    await untilNodeRed("/healthz 200 started", healthzIs(200, "started"), 5_000);
  });

  it("/healthz is 503 while flows wait for a missing node type (where /flows/state still says start)", async () => {
    await deploy(httpFlow("/missing", [{ id: "x1", type: "no-such-node-type" }]));
    await untilNodeRed("/healthz 503 stopped", healthzIs(503, "stopped"), 5_000);
    expect((await get("/flows/state")).body.state).toBe("start");
    await deploy(httpFlow("/gate", [{ id: "gate1", type: "redforge-gate" }]));
    await untilNodeRed("/healthz 200 started", healthzIs(200, "started"), 5_000);
  });

  it("after a restart the package loads from the userDir and /healthz turns 200 once flows start", async () => {
    await stopNodeRed();
    await startNodeRed();
    await untilNodeRed("/healthz 200 after restart", healthzIs(200, "started"), 10_000);
    const res = await fetch(`${base()}/gate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ again: true }) });
    expect(await res.json()).toEqual({ again: true });
  });
});
