/**
 * The data plane's lease on its bridge (bridge/dataplane/lease.ts, issue 12 (f)): the control server with the
 * real HoldLease on a Unix socket, fronts faked. A bridge process holding the lease is killed with SIGKILL: once
 * `leaseMs` passed with no bridge, the open hold is released to the runtime the front serves (the MQTT hand-over
 * to itself with its gate told `active`, then the HTTP front's release), and the next bridge reads what was
 * released exactly once. A bridge back within the lease keeps the hold; a hand-over under way is left alone.
 * No wall-clock assertion: each wait is for an event.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HoldLease } from "../../bridge/dataplane/lease.ts";
import { CALLS } from "../../bridge/dataplane/protocol.ts";
import { createControlServer } from "../../bridge/dataplane/server.ts";
import { openLease, requestDataPlane } from "../../bridge/dataplane/transport.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond() && Date.now() - t0 < ms) await sleep(10);
}

function fakeFronts(opts: { handingOver?: boolean } = {}) {
  const calls: string[] = [];
  const http = {
    holding: true,
    get holdingNow() { return http.holding; },
    release: async () => { http.holding = false; calls.push("http release"); return 3; },
  };
  const mqtt = {
    holding: true, handingOver: Boolean(opts.handingOver),
    serving: "blue",
    beginHandover: async (from: string, to: string) => { calls.push(`begin ${from}->${to}`); return { held: 5, done: false }; },
    publishMode: async (rt: string, mode: string) => { calls.push(`mode ${rt} ${mode}`); },
    completeHandover: async (from: string, to: string) => { mqtt.holding = false; calls.push(`complete ${from}->${to}`); return { replayed: 5, buffered: 2 }; },
    abandonHandover: async () => { calls.push("abandon"); },
  };
  const fronts = { instanceIds: () => ["inst"], http: () => http, mqtt: () => mqtt };
  return { calls, http, mqtt, fronts };
}

const cleanup: Array<() => void> = [];
afterEach(() => { for (const c of cleanup.splice(0)) c(); });

function serve(fronts: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-lease-"));
  const socket = path.join(dir, "dp.sock");
  const lease = new HoldLease(fronts as never, () => {});
  const server = createControlServer({ fronts: fronts as never, info: { pid: process.pid, version: 1, startedAt: new Date().toISOString() }, lease, onShutdown: () => {}, log: () => {} });
  server.listen(socket);
  cleanup.push(() => { server.closeAllConnections(); server.close(); fs.rmSync(dir, { recursive: true, force: true }); });
  return socket;
}

/** A bridge stand-in in its own process: takes the lease and keeps it until it is killed. */
async function bridgeProcess(socket: string, leaseMs: number): Promise<{ kill9(): void }> {
  const code = `const http=require("node:http");const b=JSON.stringify({leaseMs:${leaseMs}});`
    + `const r=http.request({socketPath:${JSON.stringify(socket)},method:"POST",path:"/lease",headers:{"content-type":"application/json","content-length":Buffer.byteLength(b)}},`
    + `(res)=>res.once("data",()=>process.stdout.write("leased\\n")));r.end(b);setInterval(()=>{},1000);`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  cleanup.push(() => { try { child.kill("SIGKILL"); } catch { /* gone */ } });
  await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
  return { kill9: () => child.kill("SIGKILL") };
}

const takeRelease = (socket: string) => requestDataPlane(socket, "POST", "/call", { op: "hold.takeRelease", instanceId: "inst" }, CALLS["hold.takeRelease"].result, 5_000);

describe("the data plane's lease on its bridge", () => {
  it("a bridge killed -9 during a hold: released to the serving runtime after the lease, and told to the next bridge once", async () => {
    const f = fakeFronts();
    const socket = serve(f.fronts);
    const bridge = await bridgeProcess(socket, 50);
    await sleep(100); // longer than the lease: a live bridge keeps the hold however long it lasts
    expect(f.calls).toEqual([]);
    bridge.kill9();
    await until(() => f.calls.includes("http release"));
    expect(f.calls).toEqual(["begin blue->blue", "mode blue active", "complete blue->blue", "http release"]);
    const next = await openLease(socket, 50);
    cleanup.push(() => next.release());
    expect((await takeRelease(socket)).released).toMatchObject({ runtime: "blue", replayed: 5, buffered: 2, httpReleased: 3 });
    expect((await takeRelease(socket)).released).toBeNull();
  });

  it("a bridge back within the lease keeps the hold", async () => {
    const f = fakeFronts();
    const socket = serve(f.fronts);
    const first = await openLease(socket, 5_000);
    first.release();
    const second = await openLease(socket, 5_000);
    cleanup.push(() => second.release());
    await sleep(50);
    expect(f.calls).toEqual([]);
    expect(f.http.holding).toBe(true);
  });

  it("a hand-over under way is left for the next bridge's switch", async () => {
    const f = fakeFronts({ handingOver: true });
    const socket = serve(f.fronts);
    const bridge = await bridgeProcess(socket, 20);
    bridge.kill9();
    await sleep(300);
    expect(f.calls).toEqual([]);
    const next = await openLease(socket, 20);
    cleanup.push(() => next.release());
    expect((await takeRelease(socket)).released).toBeNull();
  });
});
