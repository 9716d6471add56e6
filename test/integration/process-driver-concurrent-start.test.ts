/**
 * A runtime's supervisor (NodeRedProcess) after a host restart (the instance's Node-RED and data
 * plane killed -9): start() first looks for a live Node-RED to adopt, and nothing that arrives
 * during that look may spawn beside it (79fab7b).
 * - two start()s share one look; before the fix both spawned a Node-RED on the same port: one died
 *   on EADDRINUSE, and when the one the supervisor pointed at lost, the winner ran unsupervised.
 * - a stop() during the look: before the fix the look still spawned, so a stopped runtime ran.
 * Real Node-RED processes on an instance the process driver created; what is asserted is what /proc
 * and the runtime's port show, never a time.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../harness/eventually.ts";
import { killEverythingUnder, nodeRedsIn, processesUnder } from "../harness/faultProcesses.ts";
import { echoSpec } from "../harness/echoInstance.ts";
import { compileCacheEnv, ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { readRecord } from "../../bridge/drivers/process/runtimeRecord.ts";
import { NodeRedProcess } from "../../bridge/drivers/process/nodeRedProcess.ts";
import { installedStacks, resolveStack } from "../../bridge/drivers/process/stacks.ts";
import { ENV_ADMIN_TOKEN, ENV_CREDENTIAL_SECRET } from "../../bridge/drivers/process/settings.ts";
import { AdminApi } from "../../bridge/drivers/nodeRedAdmin.ts";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";

const ADMIN_TOKEN = "process-driver-concurrent-start-admin-token";
// Below Linux's ephemeral range (32768+), so the OS does not hand these out to anyone else meanwhile.
const rangeStart = 20_000 + Math.floor(Math.random() * 9_000);
let tmp: string;
let stateDir: string;
const drivers: ProcessDriver[] = [];

function driver(): ProcessDriver {
  const d = new ProcessDriver({ stateDir, adminToken: ADMIN_TOKEN, portRange: [rangeStart, rangeStart + 19] });
  drivers.push(d);
  return d;
}

/**
 * Samples /proc until stopped: the most Node-RED processes of `userDir` seen alive at one time. A
 * second Node-RED on the port lives through a whole boot (until its listen fails), far longer
 * than a sample takes, so it cannot slip between samples.
 */
function watchNodeReds(userDir: string): { stop(): Promise<{ most: number; seen: number[][] }> } {
  let running = true;
  let most = 0;
  const seen: number[][] = [];
  const loop = (async () => {
    while (running) {
      const now = await nodeRedsIn(userDir);
      if (now.length > most) most = now.length;
      if (now.length > 1) seen.push(now);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { stop: async () => { running = false; await loop; return { most, seen }; } };
}

/** An instance whose Node-RED and data plane were killed -9 (a host restart), its first driver gone with them. */
async function instanceAfterHostRestart(): Promise<{ s: InstanceSpec; userDir: string }> {
  const first = driver();
  const s = echoSpec("cs");
  await first.create(s);
  const userDir = path.join(stateDir, s.id);
  expect(await nodeRedsIn(userDir)).toHaveLength(1);
  await first.close({ leaveRunning: true });
  await killEverythingUnder(stateDir);
  expect(await nodeRedsIn(userDir)).toEqual([]);
  return { s, userDir };
}

/**
 * The supervisor of the instance's slot-a runtime as the driver builds it (driver.ts runtime()): same
 * userDir, port, stack, token. Called directly so that two calls certainly meet inside one look;
 * through the driver they meet only when one command's instance.json write ends within the other's look.
 */
async function supervisorOf(s: InstanceSpec, userDir: string): Promise<{ proc: NodeRedProcess; lines: string[] }> {
  const saved = JSON.parse(await fs.readFile(path.join(userDir, "instance.json"), "utf8")) as { port: number; slotStacks: { a: string } };
  const stack = resolveStack(installedStacks(), saved.slotStacks.a);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "", HOME: userDir, NODE_ENV: "production", ...compileCacheEnv(stateDir),
    [ENV_ADMIN_TOKEN]: ADMIN_TOKEN, [ENV_CREDENTIAL_SECRET]: s.credentialSecret,
  };
  const lines: string[] = [];
  const proc = new NodeRedProcess(
    { instanceId: s.id, cli: stack.cli, userDir, settingsFile: path.join(userDir, "settings.js"), host: "127.0.0.1", port: saved.port, env },
    new AdminApi(ADMIN_TOKEN, { deployMs: 30_000, probeMs: 3_000 }),
    { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 500 },
    () => undefined, (line) => lines.push(line), 60_000, stack,
  );
  return { proc, lines };
}

beforeAll(async () => {
  // Real path: a Node-RED's /proc cwd is one.
  tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pdcs-")));
  stateDir = path.join(tmp, "instances");
});

afterAll(async () => {
  for (const d of drivers) await d.close().catch(() => undefined);
  if (tmp) {
    await killEverythingUnder(tmp);
    await fs.rm(tmp, { recursive: true, force: true });
  }
}, 120_000);

describe("process driver: a runtime's start() while it looks for a live Node-RED", () => {
  it("two start()s at once after a host restart run ONE Node-RED on the port, the one supervised and recorded, and it serves", async () => {
    const { s, userDir } = await instanceAfterHostRestart();
    const { proc, lines } = await supervisorOf(s, userDir);
    const watch = watchNodeReds(userDir);
    try {
      let settled: PromiseSettledResult<void>[];
      let sample: { most: number; seen: number[][] };
      try {
        // The second joins the first's look (it reads the runtime record and /proc, so it is still under way).
        settled = await Promise.allSettled([proc.start(), proc.start()]);
      } finally {
        sample = await watch.stop();
      }
      expect(settled.map((r) => (r.status === "fulfilled" ? "ok" : String(r.reason))), "both starts succeed").toEqual(["ok", "ok"]);
      expect(sample.most, `Node-REDs of one userDir (one port) alive at the same time: ${JSON.stringify(sample.seen.slice(0, 3))}`).toBe(1);

      // What runs is what the supervisor watches and recorded (a restarted bridge adopts that one), and it serves the instance's flows.
      const running = await nodeRedsIn(userDir);
      expect(running, "one Node-RED").toHaveLength(1);
      expect(proc.pid, "the supervised pid is the Node-RED that runs").toBe(running[0]);
      expect(proc.state).toBe("running");
      const record = await until("the runtime record of the started Node-RED", async () => (await readRecord(userDir))?.pid, { timeoutMs: 30_000 });
      expect(record, "the recorded pid is the Node-RED that runs").toBe(running[0]);
      const echo = await until("the instance's flows to answer", async () => {
        const res = await fetch(`${proc.base}/echo`, { signal: AbortSignal.timeout(5_000) });
        return res.status === 200 ? res.text() : undefined;
      }, { timeoutMs: 60_000, intervalMs: 200, explain: () => lines.slice(-10).join("\n") });
      expect(echo).toBe("still here");
    } finally {
      await proc.stop(5_000);
    }
    expect(await nodeRedsIn(userDir), "stop() stops every Node-RED of the runtime: none ran unsupervised").toEqual([]);
  }, 240_000);

  it("a stop() while a start() looks for a live Node-RED: nothing is spawned, the runtime stays stopped", async () => {
    const { s, userDir } = await instanceAfterHostRestart();
    const { proc } = await supervisorOf(s, userDir);
    try {
      // stop() is called while start()'s look is under way: it cannot have ended within the same tick.
      const [started, stopped] = await Promise.allSettled([proc.start(), proc.stop()]);
      expect(stopped.status === "fulfilled" ? "ok" : String(stopped.reason), "stop succeeds").toBe("ok");
      expect(started.status === "rejected" ? String(started.reason) : "it started", "the start gives way to the stop").toMatch(/stopped while starting/);
      // A spawn would have happened before start() settled (spawn() returns once Node-RED was exec'd).
      expect(await nodeRedsIn(userDir), `a stopped runtime, yet Node-RED runs; processes: ${JSON.stringify(processesUnder(userDir))}`).toEqual([]);
      expect(proc.state).toBe("stopped");
      expect(proc.pid).toBeUndefined();
    } finally {
      await proc.stop(5_000);
    }
  }, 240_000);
});
