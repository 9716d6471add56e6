/**
 * An instance's lifecycle commands, sent at once, applied in the order they came (executor.ts).
 * The control plane does not hold `/stop` back until `/start` is answered: each route puts its
 * command in the cluster's outbox and ClusterLink sends it at once (durable/clusterLink.ts enqueue →
 * deliverDue), and a reconnect redelivers every open command in one burst. The bridge used to run
 * them side by side, so the driver's steps of the two interleaved:
 * - stop then start of a running instance (adopted after a bridge restart): the start found the
 *   Node-RED the stop was killing, called it running, the stop finished: instance.json said
 *   running, the start said ok, and nothing ran (or the start waited out its ready timeout);
 * - start then stop of a stopped one: the start gave way ("stopped while starting") and answered an error.
 * Real Node-RED, a real process driver and ledger under the executor; asserted is what a user sees
 * (the command results, what runs, instance.json, the instance's front), never a time.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../harness/eventually.ts";
import { killEverythingUnder, nodeRedsIn, processesUnder } from "../harness/faultProcesses.ts";
import { echoSpec } from "../harness/echoInstance.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { readRecord } from "../../bridge/drivers/process/runtimeRecord.ts";
import { CommandExecutor } from "../../bridge/executor.ts";
import { CommandLedger } from "../../bridge/dedupe.ts";
import { InstanceRegistry } from "../../bridge/instances.ts";
import type { Reporter } from "../../bridge/reporter.ts";
import type { Logger } from "../../bridge/log.ts";
import type { Command } from "../../protocol/commands.ts";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";

const ADMIN_TOKEN = "bridge-lifecycle-order-admin-token";
// Below Linux's ephemeral range (32768+), so the OS does not hand these out to anyone else meanwhile.
const rangeStart = 20_000 + Math.floor(Math.random() * 9_000);
let tmp: string;
let stateDir: string;
const drivers: ProcessDriver[] = [];

const spec = (): InstanceSpec => echoSpec("lo");

function driver(lines: string[] = []): ProcessDriver {
  const d = new ProcessDriver({ stateDir, adminToken: ADMIN_TOKEN, portRange: [rangeStart, rangeStart + 19], log: (_id, line) => lines.push(line) });
  drivers.push(d);
  return d;
}


async function desired(userDir: string): Promise<string | undefined> {
  return (JSON.parse(await fs.readFile(path.join(userDir, "instance.json"), "utf8")) as { desired?: string }).desired;
}

/**
 * A bridge as main.ts builds one after a restart: a new process driver on the state dir, resumed
 * (what runs is adopted; a stopped instance gets nothing until a command asks), under an executor
 * with a real ledger. Its reporter records each command's answer in the order they are sent.
 */
async function restartedBridge(lines: string[]): Promise<{ d: ProcessDriver; executor: CommandExecutor; answers: Array<{ commandId: string; status: string; error?: string }> }> {
  const d = driver(lines);
  await d.resume();
  const answers: Array<{ commandId: string; status: string; error?: string }> = [];
  const reporter = {
    send: async (report: { type: string; commandId?: string; status?: string; error?: { code: string; message: string } }) => {
      if (report.type === "command.result") answers.push({ commandId: report.commandId!, status: report.status!, ...(report.error ? { error: `${report.error.code}: ${report.error.message}` } : {}) });
      return true;
    },
  } as unknown as Reporter;
  const log: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
  const bridgeState = await fs.mkdtemp(path.join(tmp, "bridge-"));
  const executor = new CommandExecutor({
    driver: d, ledger: await CommandLedger.open(bridgeState), reporter, instances: await InstanceRegistry.open(bridgeState), log,
  });
  return { d, executor, answers };
}

const command = (type: "instance.start" | "instance.stop", instanceId: string): Command => ({
  id: `${type.split(".")[1]}-${randomUUID()}`, type, instanceId, args: {}, issuedAt: new Date().toISOString(),
});

beforeAll(async () => {
  // Real path: a Node-RED's /proc cwd is one.
  tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "redforge-lo-")));
  stateDir = path.join(tmp, "instances");
});

afterAll(async () => {
  for (const d of drivers) await d.close().catch(() => undefined);
  if (tmp) {
    await killEverythingUnder(tmp);
    await fs.rm(tmp, { recursive: true, force: true });
  }
}, 120_000);

describe("bridge: an instance's start and stop sent at once are applied in the order they came", () => {
  it("stop then start of a running instance (adopted by a restarted bridge): it ends running and answering, as instance.json says", async () => {
    const lines: string[] = [];
    const first = driver(lines);
    const s = spec();
    await first.create(s);
    const userDir = path.join(stateDir, s.id);
    // The bridge restarts; Node-RED and the data plane keep running, and the next bridge adopts them.
    await first.close({ leaveRunning: true });
    const { d, executor, answers } = await restartedBridge(lines);
    expect(await nodeRedsIn(userDir), "adopted at resume").toHaveLength(1);

    const stop = command("instance.stop", s.id);
    const start = command("instance.start", s.id);
    // As the link hands them over: one frame after the other, no await between.
    executor.command(stop);
    executor.command(start);
    await executor.idle();

    expect(await desired(userDir), "instance.json: the last command asked for running").toBe("running");
    const running = await nodeRedsIn(userDir);
    expect(running, `one Node-RED runs; processes: ${JSON.stringify(processesUnder(userDir))}\n${lines.slice(-15).join("\n")}`).toHaveLength(1);
    expect((await readRecord(userDir))?.pid, "the Node-RED that runs is the recorded one (the next bridge adopts it)").toBe(running[0]);
    expect((await d.health(s.id)).state, "the supervisor says running").toBe("running");
    const front = d.front(s.id)?.url;
    expect(front, "the instance's front").toBeTruthy();
    const echo = await until("the instance's flows to answer on its front", async () => {
      const res = await fetch(`${front}/echo`, { signal: AbortSignal.timeout(5_000) });
      return res.status === 200 ? res.text() : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200, explain: () => lines.slice(-15).join("\n") });
    expect(echo).toBe("still here");
    expect(answers, "both answered ok, the stop first").toEqual([
      { commandId: stop.id, status: "ok" }, { commandId: start.id, status: "ok" },
    ]);
  }, 240_000);

  it("start then stop of a stopped instance (a restarted bridge, its fronts rebuilt by the start): both answer ok and it ends stopped, no Node-RED of it runs", async () => {
    const lines: string[] = [];
    const first = driver(lines);
    const s = spec();
    await first.create(s);
    const userDir = path.join(stateDir, s.id);
    await first.stop(s.id);
    await first.close({ leaveRunning: true });
    const { d, executor, answers } = await restartedBridge(lines);
    expect(await nodeRedsIn(userDir), "a stopped instance").toEqual([]);

    const start = command("instance.start", s.id);
    const stop = command("instance.stop", s.id);
    executor.command(start);
    executor.command(stop);
    await executor.idle();

    expect(await desired(userDir), "instance.json: the last command asked for stopped").toBe("stopped");
    expect(await nodeRedsIn(userDir), `a stopped instance, yet Node-RED runs; processes: ${JSON.stringify(processesUnder(userDir))}`).toEqual([]);
    expect((await d.health(s.id)).state, "the supervisor says stopped").toBe("stopped");
    // Past the supervisor's restart backoff (500 ms): nothing it scheduled brings Node-RED back.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await nodeRedsIn(userDir), "still none").toEqual([]);
    expect(answers, "both answered ok, the start first").toEqual([
      { commandId: start.id, status: "ok" }, { commandId: stop.id, status: "ok" },
    ]);
  }, 240_000);
});
