/**
 * How long a managed Node-RED takes to start, through the process driver, the same way the bridge
 * starts one after a host restart (resume) or a stop/start: one instance is created once (the
 * RedForge node package installed into its userDir, a small flow deployed), then it is stopped and
 * started N times. For each start: wall ms from start() to Node-RED's "Started flows" line and to
 * the Admin API answering (what start() waits for), and the child's CPU ms (utime+stime from
 * /proc/<pid>/stat) at the moment "Started flows" appears in its log, with the load average.
 *
 *   npx tsx bench/nodered-start/run.ts            # N=5 (BENCH_STARTS), stack 5.0 (BENCH_STACK=4.1 for the other)
 *   BENCH_PROFILE=/tmp/prof npx tsx bench/nodered-start/run.ts   # one start with --cpu-prof into that dir
 *
 * Run it from the tree under test (it imports that tree's driver).
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { readRecord, LOG_FILE } from "../../bridge/drivers/process/runtimeRecord.ts";

const N = Number(process.env.BENCH_STARTS ?? 5);
/** The Node-RED stack to start ("5.0" as in the (g) runs; "4.1" is what a spec without a stack gets). */
const STACK = process.env.BENCH_STACK ?? "5.0";
const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux

function cpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields 14 and 15 (1-based) are utime, stime; after "pid (comm) " the first is field 3
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");

const flows = [
  { id: "t1", type: "tab", label: "api" },
  { id: "in1", type: "http in", z: "t1", url: "/echo", method: "get", wires: [["fn1"]] },
  { id: "fn1", type: "function", z: "t1", func: "msg.payload = 'ok'; return msg;", wires: [["out1"]] },
  { id: "out1", type: "http response", z: "t1", statusCode: "200", wires: [] },
  { id: "g1", type: "redforge-gate", z: "t1", name: "gate" },
];

async function main(): Promise<void> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "redforge-nr-start-"));
  await fsp.writeFile(path.join(tmp, "package.json"), JSON.stringify({ name: "enclosing", type: "module" }));
  const tarball = await packNodePackage(path.join(tmp, "pkg"));
  const driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball] });
  const id = randomUUID();
  try {
    await driver.create({ id, name: `start-${id.slice(0, 6)}`, flows: [], resources: {}, env: {}, credentialSecret: "a-credential-secret-of-some-length", stack: STACK });
    await driver.deployFlows(id, flows);
    const userDir = path.join(tmp, "instances", id);
    const logFile = path.join(userDir, LOG_FILE);
    console.log(`node ${process.version}, Node-RED stack ${STACK}, ${os.cpus().length} cpus, userDir ${userDir}`);
    const rows: Array<{ flowsMs: number; readyMs: number; cpuMs?: number }> = [];
    const runs = process.env.BENCH_PROFILE ? 1 : N;
    for (let i = 0; i < runs; i++) {
      await driver.stop(id);
      if (process.env.BENCH_PROFILE) {
        // Only for profiling: the child gets --cpu-prof through its environment (spec.env is passed on).
        const saved = JSON.parse(await fsp.readFile(path.join(userDir, "instance.json"), "utf8"));
        saved.spec.env = { ...saved.spec.env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.BENCH_PROFILE}` };
        await fsp.writeFile(path.join(userDir, "instance.json"), JSON.stringify(saved));
        await driver.close();
        const d2 = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball] });
        await d2.start(id);
        await d2.close();
        console.log(`profile written to ${process.env.BENCH_PROFILE}`);
        return;
      }
      const offset = fs.statSync(logFile).size;
      const before = load();
      const t0 = performance.now();
      let flowsMs = -1;
      let cpu: number | undefined;
      let readyMs = -1;
      const started = driver.start(id).then(() => { readyMs = performance.now() - t0; });
      // Watch the log closely (the driver's own follower polls every 500 ms).
      let pid: number | undefined;
      while (flowsMs < 0) {
        pid ??= (await readRecord(userDir))?.pid;
        const text = fs.readFileSync(logFile, "utf8").slice(offset);
        if (text.includes("Started flows")) {
          flowsMs = performance.now() - t0;
          if (pid) cpu = cpuMs(pid);
          break;
        }
        if (performance.now() - t0 > 60_000) throw new Error("no 'Started flows' within 60 s");
        await new Promise((r) => setTimeout(r, 2));
      }
      await started;
      rows.push({ flowsMs, readyMs, ...(cpu !== undefined ? { cpuMs: cpu } : {}) });
      console.log(`start ${i + 1}: Started flows ${flowsMs.toFixed(0)} ms, Admin API ready ${readyMs.toFixed(0)} ms, child CPU ${cpu ?? "?"} ms, load ${before} -> ${load()}`);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`median of ${rows.length}: Started flows ${med(rows.map((r) => r.flowsMs)).toFixed(0)} ms, ready ${med(rows.map((r) => r.readyMs)).toFixed(0)} ms, CPU ${med(rows.map((r) => r.cpuMs ?? NaN))} ms`);
  } finally {
    await driver.destroy(id, { deleteData: true }).catch(() => {});
    await driver.close().catch(() => {});
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

await main();
