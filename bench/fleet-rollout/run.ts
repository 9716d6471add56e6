/**
 * bench/fleet-rollout: a rollout over a fleet of simulated instances.
 * N instances (default 1,000) labelled `bench=fleet-rollout` behind one
 * scripted bridge (scriptedBridge.ts: the real link and webhook protocol,
 * every step answered at once), then one rollout of new flows in four waves
 * (1, 10 %, 50 %, 100 %). Prints instances changed per minute (whole rollout
 * and per wave), deployments per hour, the control plane's CPU (this stack's
 * workerd and Postgres processes, from /proc) per deployment and per wave,
 * the total time and the load average.
 *   npx tsx bench/fleet-rollout/run.ts   (BENCH_INSTANCES=1000 BENCH_PARALLELISM=50; BENCH_RESTART_AFTER=N restarts
 *   workerd once N instances changed, to show the rollout resuming)
 * wrangler dev rebuilds and restarts the Worker on every source change, which closes the bridge's link and cuts
 * requests in flight ("terminated"): in a tree others edit, run it from a copy (docs/rollouts.md, "Figures").
 */
import fs from "node:fs/promises";
import os from "node:os";
import pg from "pg";
import { createApiClient } from "../../protocol/api/client.ts";
import { adminClient, type ApiClient } from "../../test/harness/adminClient.ts";
import { startTestStack, type TestStack } from "../../test/harness/testStack.ts";
import { scriptedBridge } from "./scriptedBridge.ts";

const N = Number(process.env.BENCH_INSTANCES ?? 1000);
const PARALLELISM = Number(process.env.BENCH_PARALLELISM ?? 50);
const CREATE_CONCURRENCY = 16;
/** Restart wrangler dev (workerd and every Durable Object in it) once this many instances changed: the rollout must resume. */
const RESTART_AFTER = process.env.BENCH_RESTART_AFTER ? Number(process.env.BENCH_RESTART_AFTER) : null;
const FLOWS = [{ id: "t1", type: "tab", label: "fleet v2" }, { id: "n1", type: "inject", z: "t1", wires: [] }];

/** CPU seconds (user + system) of this process's descendants whose command line matches: this stack only, not other suites'. */
async function cpuOfOwn(match: RegExp): Promise<number> {
  const parent = new Map<number, number>();
  const stats = new Map<number, { cmd: string; cpu: number }>();
  for (const entry of await fs.readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(pid, Number(fields[1]));
      const cmd = (await fs.readFile(`/proc/${pid}/cmdline`, "utf8")).replace(/\0/g, " ");
      // utime + stime; for wrangler, the cutime + cstime of the children it reaped: wrangler restarts workerd under
      // load, and the old workerd's CPU then lives on only in wrangler's counts (without it the sum went negative).
      const reaper = match.test("workerd") && /wrangler-dist\/cli\.js/.test(cmd);
      stats.set(pid, { cmd, cpu: (reaper ? Number(fields[13]) + Number(fields[14]) : Number(fields[11]) + Number(fields[12])) / 100 });
    } catch { /* gone */ }
  }
  const mine = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && hops < 20; p = parent.get(p), hops++) if (p === process.pid) return true;
    return false;
  };
  let total = 0;
  for (const [pid, s] of stats) if ((match.test(s.cmd) || (match.test("workerd") && /wrangler-dist\/cli\.js/.test(s.cmd))) && mine(pid)) total += s.cpu;
  return total;
}

/** This stack's workerd processes (pid, resident memory): a pid that appears mid-run is a restarted workerd. */
async function ownWorkerd(): Promise<{ pid: number; rssMb: number }[]> {
  const out: { pid: number; rssMb: number }[] = [];
  const parentOf = async (pid: number) => Number((await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => ") x 0")).split(") ")[1]!.split(" ")[1]);
  for (const entry of await fs.readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (!cmd.includes("workerd") || !cmd.includes("serve")) continue;
    let p = Number(entry);
    for (let hops = 0; hops < 20 && p > 1 && p !== process.pid; hops++) p = await parentOf(p);
    if (p !== process.pid) continue;
    const status = await fs.readFile(`/proc/${entry}/status`, "utf8").catch(() => "");
    out.push({ pid: Number(entry), rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024 });
  }
  return out;
}

const cpuNow = async () => ({ workerd: await cpuOfOwn(/workerd/), postgres: await cpuOfOwn(/postgres/), at: performance.now() });

async function createInstances(api: ApiClient, clusterId: string): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, async () => {
    while (next < N) {
      const i = next++;
      // A loaded machine answers some creates 503 database_unavailable (pool connect timeout): retry those.
      for (let attempt = 1; ; attempt++) {
        // A restarted workerd cuts the connection ("terminated"): the create may have committed, so it is retried like a 503.
        const res = await api.POST("/api/instances", { body: { name: `fr-${String(i).padStart(5, "0")}`, clusterId, labels: { bench: "fleet-rollout" } } })
          .catch((err: Error) => ({ response: { status: 503 }, error: String(err) }));
        if (res.response.status === 201) break;
        // A 503 after the insert committed: the retry finds the name taken, which means it was created.
        if (attempt > 1 && res.response.status === 409) break;
        if (res.response.status !== 503 || attempt >= 5) throw new Error(`create ${i}: ${res.response.status} ${JSON.stringify(res.error)}`);
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }));
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

async function main() {
  const stack: TestStack = await startTestStack({ worker: "wrangler" });
  const db = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
  await db.connect();
  let bridge: Awaited<ReturnType<typeof scriptedBridge>> | undefined;
  try {
    const session = await adminClient(stack);
    // An API key, not the 15-minute session token: creating 1,000 instances on a loaded machine outlasts a session.
    const key = await fetch(`${stack.apiUrl}/api/api-keys`, {
      method: "POST", headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" }, body: JSON.stringify({ name: "bench-fleet-rollout" }),
    }).then((r) => r.json()) as { key: string };
    const token = key.key;
    const api = createApiClient({ baseUrl: stack.apiUrl, token });
    const cluster = (await api.POST("/api/clusters", { body: { name: "fleet-rollout" } })).data!;
    bridge = await scriptedBridge(stack.apiUrl, cluster.id, cluster.webhookSecret);

    const tc = performance.now();
    await createInstances(api, cluster.id);
    // "unknown" counts: a health sweep the scripted bridge does not report health for marks instances unknown, and a
    // deployment admits unknown while the bridge is connected (core/deployments/admission.ts).
    await waitFor("fleet running", async () => (await db.query("select count(*)::int as n from instances where cluster_id = $1 and status in ('running', 'unknown')", [cluster.id])).rows[0].n >= N, 900_000);
    const createdS = (performance.now() - tc) / 1000;
    console.log(`  … ${N} instances running after ${createdS.toFixed(0)} s; starting the rollout`);

    const cpu0 = await cpuNow();
    const load0 = os.loadavg();
    const res = await fetch(`${stack.apiUrl}/api/rollouts`, {
      method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        selector: "bench=fleet-rollout", flows: FLOWS, waves: [1, "10%", "50%", "100%"], parallelism: PARALLELISM,
        failureBudget: { maxFailedPercent: 1 }, deployment: { analysisSeconds: 0, rollbackWindowSeconds: 0 },
      }),
    });
    if (res.status !== 202) throw new Error(`rollout: ${res.status} ${await res.text()}`);
    const rollout = await res.json() as { id: string };

    // Per wave: when it completed and the CPU used up to then; the completed count over time.
    const waveEnds: { index: number; size: number; at: number; workerd: number; postgres: number }[] = [];
    let last: any;
    const samples: { at: number; completed: number }[] = [];
    const workerdPids = new Set((await ownWorkerd()).map((w) => w.pid));
    let workerdRestarts = 0;
    let peakRssMb = 0;
    let restarted = false;
    let cpuCarried = 0;
    for (;;) {
      // A restarted workerd cuts a poll: look again.
      const polled = await fetch(`${stack.apiUrl}/api/rollouts/${rollout.id}`, { headers: { Authorization: `Bearer ${token}` } })
        .then((r) => (r.ok ? r.json() : null)).catch(() => null);
      if (!polled) { await new Promise((r) => setTimeout(r, 2000)); continue; }
      last = polled;
      samples.push({ at: performance.now(), completed: last.summary.completed });
      for (const w of await ownWorkerd()) {
        if (!workerdPids.has(w.pid)) { workerdPids.add(w.pid); workerdRestarts++; console.log(`  … a new workerd process (${w.pid}): workerd restarted`); }
        peakRssMb = Math.max(peakRssMb, w.rssMb);
      }
      // Progress as it goes, so a run cut short still says how far it got.
      if (samples.length % 15 === 1) console.log(`  … ${((performance.now() - cpu0.at) / 1000).toFixed(0)} s: ${last.status}, wave ${(last.currentWave ?? 0) + 1}, ${last.summary.completed}/${last.summary.total} changed, load ${os.loadavg()[0]!.toFixed(1)}, workerd RSS ${peakRssMb.toFixed(0)} MB`);
      for (const w of last.waves) {
        if ((w.status === "completed" || w.status === "failed") && !waveEnds.some((e) => e.index === w.index)) {
          const c = await cpuNow();
          waveEnds.push({ index: w.index, size: w.instances.length, at: c.at, workerd: c.workerd + cpuCarried, postgres: c.postgres });
        }
      }
      if (["completed", "failed", "aborted"].includes(last.status)) break;
      if (RESTART_AFTER !== null && !restarted && last.summary.completed >= RESTART_AFTER) {
        restarted = true;
        const t = performance.now();
        console.log(`  … ${last.summary.completed} changed: restarting workerd (wrangler dev) on purpose`);
        // Its CPU so far lives on only in the old processes' counts: add it before they go.
        const before = await cpuNow();
        await stack.restartWorker();
        const after = await cpuNow();
        cpuCarried += before.workerd - after.workerd;
        for (const w of await ownWorkerd()) workerdPids.add(w.pid);
        console.log(`  … workerd back after ${((performance.now() - t) / 1000).toFixed(1)} s; the rollout resumes on its alarm`);
      }
      // The pre-fix code took 29.9 min for 1,000 at load 20: the bound is generous.
      if (performance.now() - cpu0.at > 60 * 60_000) throw new Error("rollout did not finish in 60 minutes");
      await new Promise((r) => setTimeout(r, 2000));
    }
    const cpu1 = await cpuNow();
    cpu1.workerd += cpuCarried;
    const totalS = (cpu1.at - cpu0.at) / 1000;
    const done = last.summary.completed as number;

    const rows: [string, string][] = [
      [`fleet: ${N} simulated instances created and running`, `${createdS.toFixed(1)} s`],
      [`rollout: status / completed / failed`, `${last.status} / ${done} / ${last.summary.failed}${last.failure ? ` (${last.failure.code})` : ""}`],
      [`rollout: total time, 4 waves (1, 10 %, 50 %, 100 %), parallelism ${PARALLELISM}`, `${totalS.toFixed(1)} s (${(totalS / 60).toFixed(2)} min)`],
      [`instances changed per minute (whole rollout)`, `${(done / (totalS / 60)).toFixed(0)}`],
      [`deployments per hour (sustained over the rollout)`, `${Math.round(done / (totalS / 3600))}`],
      [`control-plane CPU per deployment: workerd / postgres`, `${((cpu1.workerd - cpu0.workerd) / Math.max(done, 1) * 1000).toFixed(1)} ms / ${((cpu1.postgres - cpu0.postgres) / Math.max(done, 1) * 1000).toFixed(1)} ms`],
      [`control-plane CPU whole rollout: workerd / postgres`, `${(cpu1.workerd - cpu0.workerd).toFixed(1)} s / ${(cpu1.postgres - cpu0.postgres).toFixed(1)} s`],
    ];
    let prev = { at: cpu0.at, workerd: cpu0.workerd, postgres: cpu0.postgres };
    for (const w of waveEnds.sort((a, b) => a.index - b.index)) {
      const s = (w.at - prev.at) / 1000;
      rows.push([
        `wave ${w.index + 1} (${w.size} instances): time / per minute / workerd CPU / postgres CPU`,
        `${s.toFixed(1)} s / ${(w.size / (s / 60)).toFixed(0)} / ${(w.workerd - prev.workerd).toFixed(1)} s / ${(w.postgres - prev.postgres).toFixed(1)} s`,
      ]);
      prev = w;
    }
    const peak = samples.reduce((best, s, i) => {
      const back = samples[Math.max(0, i - 30)]!; // ~60 s window at one sample per 2 s
      const rate = (s.completed - back.completed) / Math.max((s.at - back.at) / 60_000, 1e-9);
      return Math.max(best, rate);
    }, 0);
    rows.push([`instances changed per minute (best 60 s window)`, `${peak.toFixed(0)}`]);
    rows.push([`load average (1/5/15 min) at start → end`, `${load0.map((l) => l.toFixed(2)).join("/")} → ${os.loadavg().map((l) => l.toFixed(2)).join("/")}`]);
    rows.push([`bridge answers`, [...bridge.answered].map(([k, v]) => `${k} ${v}`).join(", ")]);
    rows.push([`bridge link reconnects (a restarted Worker closes the link)`, `${bridge.reconnects}`]);
    rows.push([`workerd processes that appeared during the rollout (restarts) / peak RSS of one`, `${workerdRestarts} / ${peakRssMb.toFixed(0)} MB`]);
    if (RESTART_AFTER !== null) rows.push([`workerd restarted on purpose after ${RESTART_AFTER} changed (BENCH_RESTART_AFTER)`, restarted ? "yes: the rollout resumed" : "no (not reached)"]);
    if (last.status !== "completed") rows.push([`rollout failure`, JSON.stringify(last.failure)]);
    // Why instances failed or were not restored, by code, with one reason each: a failed run says what to look at.
    const why = new Map<string, { n: number; reason: string }>();
    for (const w of last.waves) for (const i of w.instances) {
      if (i.status !== "failed" && !i.code) continue;
      const key = `${i.status}/${i.code ?? "-"}`;
      const e = why.get(key) ?? { n: 0, reason: String(i.reason ?? "").slice(0, 160) };
      e.n++;
      why.set(key, e);
    }
    for (const [k, e] of why) rows.push([`instances ${k}`, `${e.n} (${e.reason})`]);

    console.log(`\nbench/fleet-rollout (${os.cpus().length} cores, ${new Date().toISOString()})`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(84)} ${v}`);
  } finally {
    bridge?.close();
    await db.end();
    await stack.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
