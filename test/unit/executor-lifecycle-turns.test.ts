/**
 * The executor's per-instance turns for lifecycle commands (executor.ts inTurn), with a driver
 * whose calls finish only when the test says so. What is asserted is the order of the driver calls
 * and of the answers; the real-Node-RED case is test/integration/bridge-lifecycle-order.test.ts.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { until } from "../harness/eventually.ts";
import { CommandExecutor } from "../../bridge/executor.ts";
import { CommandLedger } from "../../bridge/dedupe.ts";
import { InstanceRegistry } from "../../bridge/instances.ts";
import type { Driver } from "../../bridge/drivers/driver.ts";
import type { Reporter } from "../../bridge/reporter.ts";
import type { Command, CommandType } from "../../protocol/commands.ts";

const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await fs.rm(d, { recursive: true, force: true }); });

/** A driver whose start/stop/deployFlows each wait for `release(n)` of their call number n (1-based). */
function gatedDriver() {
  const calls: string[] = [];
  const gates: Array<() => void> = [];
  const gated = (what: string) => new Promise<void>((resolve) => { calls.push(what); gates.push(resolve); });
  const driver = {
    kind: "simulated",
    onStatus: () => undefined,
    start: (id: string) => gated(`start ${id}`),
    stop: (id: string) => gated(`stop ${id}`),
    deployFlows: (id: string) => gated(`deploy ${id}`).then(() => ({ rev: "r1" })),
  } as unknown as Driver;
  return { driver, calls, release: (n: number) => gates[n - 1]!() };
}

async function executorWith(driver: Driver, lifecycleTurnMs?: number) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-turns-"));
  dirs.push(dir);
  const answers: string[] = [];
  const reporter = { send: async (r: { type: string; commandId?: string; status?: string }) => { if (r.type === "command.result") answers.push(`${r.commandId} ${r.status}`); return true; } } as unknown as Reporter;
  const executor = new CommandExecutor({
    driver, ledger: await CommandLedger.open(dir), reporter, instances: await InstanceRegistry.open(dir),
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    ...(lifecycleTurnMs !== undefined ? { lifecycleTurnMs } : {}),
  });
  return { executor, answers };
}

const cmd = (id: string, type: CommandType, instanceId: string, args: Record<string, unknown> = {}): Command => ({ id, type, instanceId, args, issuedAt: new Date().toISOString() });

describe("executor: an instance's lifecycle commands take turns", () => {
  it("start then stop of one instance: the stop reaches the driver only after the start finished; another instance's stop and a flows deploy do not wait", async () => {
    const { driver, calls, release } = gatedDriver();
    const { executor, answers } = await executorWith(driver);
    const a = randomUUID();
    const b = randomUUID();
    executor.command(cmd("c1", "instance.start", a));
    executor.command(cmd("c2", "instance.stop", a));
    executor.command(cmd("c3", "instance.stop", b));
    executor.command(cmd("c4", "flows.deploy", a, { flows: [] }));
    await until("the start of a, the stop of b and the deploy to reach the driver", () => calls.length === 3);
    expect(calls.sort()).toEqual([`deploy ${a}`, `start ${a}`, `stop ${b}`].sort());
    const order = [...calls];
    release(order.indexOf(`stop ${b}`) + 1);
    release(order.indexOf(`deploy ${a}`) + 1);
    await until("the stop of b and the deploy answered", () => answers.length === 2);
    expect(calls, "the stop of a still waits for its start").toHaveLength(3);
    release(order.indexOf(`start ${a}`) + 1);
    await until("the stop of a to reach the driver", () => calls.length === 4);
    expect(calls[3]).toBe(`stop ${a}`);
    release(4);
    await executor.idle();
    expect(answers.slice(2)).toEqual(["c1 ok", "c2 ok"]);
  });

  it("a lifecycle command stuck in the driver holds its instance's next one only up to lifecycleTurnMs", async () => {
    const { driver, calls, release } = gatedDriver();
    const { executor, answers } = await executorWith(driver, 50);
    const a = randomUUID();
    executor.command(cmd("s1", "instance.start", a));
    executor.command(cmd("s2", "instance.stop", a));
    // The start never finishes by itself; the stop runs anyway once its wait is over.
    await until("the stop to reach the driver", () => calls.length === 2);
    expect(calls).toEqual([`start ${a}`, `stop ${a}`]);
    release(2);
    await until("the stop answered", () => answers.length === 1);
    expect(answers).toEqual(["s2 ok"]);
    release(1);
    await executor.idle();
    expect(answers).toEqual(["s2 ok", "s1 ok"]);
  });
});
