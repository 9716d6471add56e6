/**
 * A bridge reduced to what the data-plane test needs, as its own process so
 * the test can kill it (-9) like a crash: a ProcessDriver on a state dir and
 * the blue-green steps, run one at a time on the test's request. Requests are
 * JSON lines on stdin (`{"n":1,"call":"prepare","args":[...]}`), answers JSON
 * lines on stdout prefixed `ANSWER `. SIGTERM closes the driver for good
 * (its Node-REDs and the data plane stop).
 *
 *   node --import tsx test/harness/dataplaneBridge.ts '<json: {stateDir, mqttUrl, tarball}>'
 */
import readline from "node:readline";
import { z } from "zod";
import { BlueGreen } from "../../bridge/deploy/blueGreen.ts";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";

const opts = z.object({ stateDir: z.string(), mqttUrl: z.string(), tarball: z.string() }).parse(JSON.parse(process.argv[2] ?? "{}"));
const driver = new ProcessDriver({
  stateDir: opts.stateDir, nodePackages: [opts.tarball], mqttUrl: opts.mqttUrl,
  log: (id, line) => process.stderr.write(`[bridge ${process.pid} ${id.slice(0, 8)}] ${line}\n`),
});
const bg = new BlueGreen(driver, driver.adminApi, true);

const calls: Record<string, (...args: never[]) => Promise<unknown>> = {
  create: async (spec: InstanceSpec) => (await driver.create(spec)).endpoints,
  /** What a restarted bridge does first for an instance: knows its fronts (attaching to the data plane) and Node-REDs again. */
  adopt: async (id: string) => { await driver.ensureFronts(id); return { front: driver.front(id)?.url }; },
  /** What a restarted bridge does before its link opens: converge every saved instance (main.ts resumeDriver). */
  resume: () => driver.resume(),
  prepare: (id: string) => bg.prepare(id),
  deployFlows: (runtime: string, flows: unknown[]) => bg.deployFlows(runtime, flows),
  drain: (id: string, runtime: string) => bg.setGate(id, { mode: "drain", runtime, drainTimeoutMs: 10_000 }),
  switchRoute: (id: string, from: string, to: string) => bg.switchRoute(id, from, to),
  /** The first half of a switch alone: a bridge that dies right after it. */
  beginHandover: async (id: string, from: string, to: string) => { await driver.ensureFronts(id); return driver.mqttFront(id)!.beginHandover(from, to); },
};

const request = z.object({ n: z.number(), call: z.string(), args: z.array(z.unknown()) });
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const { n, call, args } = request.parse(JSON.parse(line));
  const fn = calls[call];
  void (fn ? fn(...(args as never[])) : Promise.reject(new Error(`no call ${call}`))).then(
    (value) => process.stdout.write(`ANSWER ${JSON.stringify({ n, ok: true, value })}\n`),
    (err: unknown) => process.stdout.write(`ANSWER ${JSON.stringify({ n, ok: false, error: err instanceof Error ? err.message : String(err) })}\n`),
  );
});
process.stdout.write("ANSWER {\"n\":0,\"ok\":true,\"value\":\"up\"}\n");
process.once("SIGTERM", () => {
  void driver.close().then(() => process.exit(0), (err: unknown) => { process.stderr.write(`close failed: ${String(err)}\n`); process.exit(1); });
});
