/**
 * Checkpoint/replay on real Node-RED processes (process driver): a five-step
 * workflow whose steps call an HTTP sink that counts every call, interrupted
 * (a) by a blue-green deployment while blue is between steps, and (b) by a
 * `kill -9` of its Node-RED. Either way it resumes from its last checkpoint on
 * the serving runtime and finishes, with every step run exactly once.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlueGreen } from "../../bridge/deploy/blueGreen.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { checkpointWorkflow, StepSink } from "../harness/checkpointFlow.ts";
import { until } from "../harness/eventually.ts";

const TOKEN = "checkpoint-resume-admin-token-0123456789";
let tmp: string;
let driver: ProcessDriver;
let bg: BlueGreen;
const sink = new StepSink();
const logs: string[] = [];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-ckpt-"));
  await sink.start();
  const tarball = await packNodePackage(path.join(tmp, "pkg"));
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball], adminToken: TOKEN,
    restart: { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 100 }, log: (id: string, line: string) => logs.push(`[${id.slice(0, 8)}] ${line}`) });
  bg = new BlueGreen(driver, driver.adminApi, false, { log: (line) => logs.push(line) });
}, 120_000);

afterAll(async () => {
  await driver?.close();
  await sink.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

const spec = (id: string, flows: unknown[]) => ({ id, name: `ckpt-${id.slice(0, 8)}`, flows, resources: {}, env: {}, credentialSecret: "checkpoint-resume-credential-secret" });

interface Status { runtimeId: string | null; workflows: { workflowId: string; step: string; phase: string; completed: string[] }[] }

async function checkpoints(base: string): Promise<Status> {
  const res = await fetch(`${base}/redforge/checkpoints`, { headers: { Authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET /redforge/checkpoints: ${res.status}`);
  return (await res.json()) as Status;
}

async function start(base: string, id: string): Promise<void> {
  const res = await fetch(`${base}/wf/start`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id }), signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(202);
  await res.arrayBuffer();
}

/** Waits until step `step` of workflow `id` has its end checkpoint on `base`. */
async function untilCompleted(base: string, id: string, step: string): Promise<void> {
  await until(`${id} past ${step}`, async () => (await checkpoints(base)).workflows.some((w) => w.workflowId === id && w.completed.includes(step)), { timeoutMs: 60_000, intervalMs: 25 });
}

const explain = () => `sink: ${JSON.stringify(sink.calls)}\nlog:\n${logs.slice(-40).join("\n")}`;

describe("checkpointed workflows resume on the serving runtime", () => {
  it("(a) a blue-green deployment between two steps: green finishes it, no step twice", async () => {
    const id = crypto.randomUUID();
    const flows = checkpointWorkflow({ sinkPort: sink.port, pauseMs: 2_500 });
    const { endpoints } = await driver.create(spec(id, flows));
    // Green is ready before the workflow starts, so the deployment lands between steps 2 and 3.
    const prepared = await bg.prepare(id);
    await bg.deployFlows(prepared.green, flows);
    const blueBase = (await driver.runtimeBase(prepared.blue))!;
    const wf = `wf-bg-${id.slice(0, 8)}`;
    await start(endpoints.admin, wf);
    await untilCompleted(blueBase, wf, "s2");
    // The start request was answered at once, so blue's gate counts nothing in flight and the drain
    // ends: the workflow itself is still in blue's pause. The switch hands it over from its checkpoint.
    await bg.setGate(id, { mode: "drain", runtime: prepared.blue, drainTimeoutMs: 200 });
    await bg.switchRoute(id, prepared.blue, prepared.green);

    await until("workflow finished", () => sink.done.find((d) => d.id === wf), { timeoutMs: 90_000, explain });
    expect(sink.countsOf(wf), explain()).toEqual([1, 1, 1, 1, 1]);
    const byStep = (s: number) => sink.calls.find((c) => c.id === wf && c.step === s)!;
    expect([1, 2].map((s) => byStep(s).runtime)).toEqual([prepared.blue, prepared.blue]);
    expect([3, 4, 5].map((s) => byStep(s).runtime)).toEqual([prepared.green, prepared.green, prepared.green]);
    expect(sink.done.find((d) => d.id === wf)).toMatchObject({ runtime: prepared.green, steps: [1, 2, 3, 4, 5] });
    expect(byStep(3).key).toBe(`${wf}:s3`);
    // Blue handed it over and kept nothing running; green holds the finished record.
    const blue = await checkpoints(blueBase);
    expect(blue.workflows.find((w) => w.workflowId === wf)?.phase).toBe("handed_over");
    const greenBase = (await driver.runtimeBase(prepared.green))!;
    expect((await checkpoints(greenBase)).workflows.find((w) => w.workflowId === wf)?.phase).toBe("finished");
    // Blue's copy of the message, still in its pause when the switch came, ran no further step.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(sink.countsOf(wf)).toEqual([1, 1, 1, 1, 1]);
  }, 180_000);

  it("a workflow blue started after the switch goes on in green when blue is cleaned up", async () => {
    const id = crypto.randomUUID();
    const flows = checkpointWorkflow({ sinkPort: sink.port, pauseMs: 2_500 });
    await driver.create(spec(id, flows));
    const prepared = await bg.prepare(id);
    await bg.deployFlows(prepared.green, flows);
    await bg.setGate(id, { mode: "drain", runtime: prepared.blue, drainTimeoutMs: 200 });
    await bg.switchRoute(id, prepared.blue, prepared.green);
    // Blue still answers (a request held at the switch, a client on an old connection) and starts a run.
    const blueBase = (await driver.runtimeBase(prepared.blue))!;
    const wf = `wf-late-${id.slice(0, 8)}`;
    await start(blueBase, wf);
    await untilCompleted(blueBase, wf, "s1");
    await bg.cleanup(prepared.blue, id);
    expect(await driver.runtimeBase(prepared.blue)).toBeUndefined();

    await until("workflow finished", () => sink.done.find((d) => d.id === wf), { timeoutMs: 90_000, explain });
    expect(sink.countsOf(wf), explain()).toEqual([1, 1, 1, 1, 1]);
    const runtimes = [1, 2, 3, 4, 5].map((s) => sink.calls.find((c) => c.id === wf && c.step === s)!.runtime);
    expect(runtimes[0]).toBe(prepared.blue);
    expect(runtimes.slice(2)).toEqual([prepared.green, prepared.green, prepared.green]);
  }, 180_000);

  it("(b) kill -9 of Node-RED between two steps: the restarted runtime finishes it, no step twice", async () => {
    const id = crypto.randomUUID();
    const { endpoints } = await driver.create(spec(id, checkpointWorkflow({ sinkPort: sink.port, pauseMs: 2_500 })));
    const base = endpoints.admin;
    const wf = `wf-kill-${id.slice(0, 8)}`;
    await start(base, wf);
    await untilCompleted(base, wf, "s2");
    const record = JSON.parse(await fs.readFile(path.join(tmp, "instances", id, "runtime.json"), "utf8")) as { pid: number };
    process.kill(record.pid, "SIGKILL");

    await until("workflow finished", () => sink.done.find((d) => d.id === wf), { timeoutMs: 120_000, explain });
    expect(sink.countsOf(wf), explain()).toEqual([1, 1, 1, 1, 1]);
    expect(sink.done.filter((d) => d.id === wf)).toHaveLength(1);
    const status = await checkpoints(base);
    expect(status.workflows.find((w) => w.workflowId === wf)).toMatchObject({ phase: "finished", completed: ["s1", "s2", "s3", "s4", "s5"] });
    // The gate's journal replays the start message into the restarted runtime: its step 1 is skipped, not run again.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(sink.countsOf(wf)).toEqual([1, 1, 1, 1, 1]);
  }, 180_000);
});
