/**
 * bench/fleet-scale: how the control plane copes with a fleet.
 *   A. a simulated bridge (real bridge program, SimulatedDriver) with a
 *      baseline of BASE instances, then N_SIM: time to all-running, health
 *      sweep duration, and control-plane CPU (workerd + Postgres) per sweep;
 *   B. N_REAL real Node-RED processes through the process driver: time to
 *      all-running and one sweep.
 * Ratios compare N_SIM against the baseline measured in the same run.
 *   npm run bench:fleet-scale            (BENCH_SIM=1000 BENCH_BASE=100 BENCH_REAL=10)
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { startBridge, type RunningBridge } from "../../bridge/main.ts";
import { SimulatedDriver } from "../../bridge/drivers/simulated.ts";
import { lineLogger } from "../../bridge/log.ts";
import { adminClient, type ApiClient } from "../../test/harness/adminClient.ts";
import { startTestStack, type TestStack } from "../../test/harness/testStack.ts";
import { cpuSecondsOf } from "./procCpu.ts";

const N_SIM = Number(process.env.BENCH_SIM ?? 1000);
const BASE = Number(process.env.BENCH_BASE ?? 100);
const N_REAL = Number(process.env.BENCH_REAL ?? 10);
const CONCURRENCY = 16;

let stack: TestStack;
let api: ApiClient;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await check()) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

async function createInstances(clusterId: string, prefix: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) {
      const i = next++;
      const res = await api.POST("/api/instances", { body: { name: `${prefix}-${i}`, clusterId } });
      if (res.response.status !== 201 || !res.data) throw new Error(`create ${prefix}-${i}: ${res.response.status} ${JSON.stringify(res.error)}`);
      ids.push(res.data.id);
    }
  }));
  return ids;
}

async function runningCount(db: pg.Client, clusterId: string): Promise<number> {
  const { rows } = await db.query("select count(*)::int as n from instances where cluster_id = $1 and status = 'running' and deleted_at is null", [clusterId]);
  return rows[0].n;
}

async function healthRows(db: pg.Client): Promise<number> {
  return (await db.query("select count(*)::int as n from instance_health")).rows[0].n;
}

/** One sweep: QStash fires the schedule; done when every instance's report is stored. */
async function sweep(db: pg.Client, expected: number) {
  const before = await healthRows(db);
  const cpu0 = { workerd: await cpuSecondsOf(/workerd/), postgres: await cpuSecondsOf(/postgres/) };
  const t0 = performance.now();
  stack.qstash.fireSchedule("redforge-health-sweep");
  await stack.qstash.tick();
  await waitFor("sweep", async () => (await healthRows(db)) - before >= expected, 120_000);
  const ms = performance.now() - t0;
  return {
    ms,
    workerdCpuS: (await cpuSecondsOf(/workerd/)) - cpu0.workerd,
    postgresCpuS: (await cpuSecondsOf(/postgres/)) - cpu0.postgres,
  };
}

async function cluster(name: string) {
  const { data } = await api.POST("/api/clusters", { body: { name } });
  return { id: data!.id, secret: data!.webhookSecret };
}

async function main() {
  stack = await startTestStack({ worker: "wrangler" });
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-bench-"));
  await fs.chmod(tmp, 0o755);
  const bridges: RunningBridge[] = [];
  const db = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
  await db.connect();
  try {
    api = (await adminClient(stack)).api;

    // A. simulated fleet
    const sim = await cluster("sim");
    bridges.push(await startBridge({ clusterId: sim.id, api: stack.apiUrl, secret: sim.secret, driver: new SimulatedDriver(), stateDir: path.join(tmp, "sim"), log: quietLog }));
    const t0 = performance.now();
    await createInstances(sim.id, "base", BASE);
    await waitFor("baseline running", async () => (await runningCount(db, sim.id)) >= BASE, 300_000);
    const baseRunning = performance.now() - t0;
    const baseSweep = await sweep(db, BASE);
    const t1 = performance.now();
    await createInstances(sim.id, "sim", N_SIM - BASE);
    await waitFor("fleet running", async () => (await runningCount(db, sim.id)) >= N_SIM, 600_000);
    const simRunning = performance.now() - t1;
    const simSweep = await sweep(db, N_SIM);

    const rows: [string, string][] = [
      [`simulated: ${BASE} instances to running (baseline)`, `${(baseRunning / 1000).toFixed(1)} s (${(BASE / (baseRunning / 1000)).toFixed(0)} instances/s)`],
      [`simulated: +${N_SIM - BASE} more to running (${N_SIM} total)`, `${(simRunning / 1000).toFixed(1)} s (${((N_SIM - BASE) / (simRunning / 1000)).toFixed(0)} instances/s)`],
      [`sweep @ ${BASE}: duration / workerd CPU / postgres CPU`, `${baseSweep.ms.toFixed(0)} ms / ${baseSweep.workerdCpuS.toFixed(2)} s / ${baseSweep.postgresCpuS.toFixed(2)} s`],
      [`sweep @ ${N_SIM}: duration / workerd CPU / postgres CPU`, `${simSweep.ms.toFixed(0)} ms / ${simSweep.workerdCpuS.toFixed(2)} s / ${simSweep.postgresCpuS.toFixed(2)} s`],
      [`sweep per instance, ${N_SIM} vs ${BASE} (ratio)`, `${(simSweep.ms / N_SIM).toFixed(2)} ms vs ${(baseSweep.ms / BASE).toFixed(2)} ms (×${((simSweep.ms / N_SIM) / (baseSweep.ms / BASE)).toFixed(2)})`],
    ];

    // B. real Node-RED processes
    if (N_REAL > 0) {
      const real = await cluster("real");
      try {
        bridges.push(await startBridge({ clusterId: real.id, api: stack.apiUrl, secret: real.secret, driver: "process", stateDir: path.join(tmp, "real"), log: quietLog }));
        const t2 = performance.now();
        await createInstances(real.id, "nr", N_REAL);
        await waitFor("real running", async () => (await runningCount(db, real.id)) >= N_REAL, 300_000);
        const realRunning = performance.now() - t2;
        const realSweep = await sweep(db, N_REAL);
        rows.push([`real Node-RED: ${N_REAL} processes to running`, `${(realRunning / 1000).toFixed(1)} s`]);
        rows.push([`sweep @ ${N_REAL} real: duration / workerd CPU`, `${realSweep.ms.toFixed(0)} ms / ${realSweep.workerdCpuS.toFixed(2)} s`]);
      } catch (err) {
        rows.push([`real Node-RED: ${N_REAL} processes`, `not measured: ${(err as Error).message}`]);
      }
    }
    console.log(`\nbench/fleet-scale (${os.cpus().length} cores, ${new Date().toISOString()})`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(58)} ${v}`);
  } finally {
    for (const b of bridges) await b.close().catch(() => {});
    await db.end();
    await stack.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

const quietLog = lineLogger((line, level) => { if (level === "error") console.error(`[bridge] ${line}`); });

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
