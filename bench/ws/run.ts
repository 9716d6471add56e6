/**
 * bench/ws: WebSocket fan-out of the two watcher streams on the local stack
 * (wrangler dev: workerd, Hibernation API sockets in one Durable Object per
 * stream), at BENCH_WS_SIZES watchers (1000,5000,9500,10000), grown in place:
 *   - /ws/fleet: the state change is a signed `instance.status` webhook (the
 *     bridge's own report); fan-out = each watcher's receipt of that
 *     `instance:status` frame minus the frame's `timestamp` (set by the Worker
 *     right after the row changed, same machine clock), p50/p99/last; also from
 *     the webhook's send;
 *   - /ws/deployments/:id: per size a fresh deployment held in its analysis
 *     window (scripted bridge, bench/fleet-rollout/scriptedBridge.ts); the
 *     state change is POST /rollback, fan-out = receipt of each timestamped
 *     frame the rollback emits minus its timestamp.
 * Watchers connect to the Worker's own workerd (BENCH_WS_VIA=direct, the
 * default), not through wrangler dev's proxy: workerd holds each connection
 * under two descriptors, so through the proxy a watcher costs 4 of the 20,000
 * the container allows a process and the proxy died at ~4,870 watchers
 * (bench/ws/workerAddress.ts, docs/performance-ws.md). BENCH_WS_VIA=proxy,direct
 * measures both in one run (the proxy only up to BENCH_WS_PROXY_MAX, 4000).
 * The watchers are spread over BENCH_WS_CLIENTS (4) client processes
 * (bench/ws/watcherPool.ts) so the receiving side is not one Node thread.
 * Per size: connect time (upgrade sent → first frame) p50/p99, connect
 * failures, whether every watcher's first frame was the current state (late
 * joiners), the Worker's workerd RSS per watcher and descriptors per watcher in
 * each workerd, and the load average. Sockets that fail to open or frames that
 * never arrive are counted: where it breaks is a result.
 *   npx tsx bench/ws/run.ts   (BENCH_WS_SIZES=1000,5000,9500,10000 BENCH_WS_EVENTS=5 BENCH_WS_STREAMS=fleet,deployment BENCH_WS_VIA=direct BENCH_WS_CLIENTS=4)
 */
import fs from "node:fs/promises";
import os from "node:os";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { adminClient } from "../../test/harness/adminClient.ts";
import { startTestStack, type TestStack } from "../../test/harness/testStack.ts";
import { scriptedBridge } from "../fleet-rollout/scriptedBridge.ts";
import { Pools } from "./pools.ts";
import { directWorkerUrl, workerdProcesses } from "./workerAddress.ts";
import { quantile as q } from "../quantile.ts";

const SIZES = (process.env.BENCH_WS_SIZES ?? "1000,5000,9500,10000").split(",").map(Number);
const EVENTS = Number(process.env.BENCH_WS_EVENTS ?? 5);
const STREAMS = (process.env.BENCH_WS_STREAMS ?? "fleet,deployment").split(",");
const VIAS = (process.env.BENCH_WS_VIA ?? "direct").split(",") as ("direct" | "proxy")[];
const PROXY_MAX = Number(process.env.BENCH_WS_PROXY_MAX ?? 4000);
const CLIENTS = Number(process.env.BENCH_WS_CLIENTS ?? 4);
const CONNECT_CONCURRENCY = Number(process.env.BENCH_WS_CONNECT_CONCURRENCY ?? 100);
/** The Worker's REDFORGE_WATCHERS_PER_OBJECT for this run (scripts/worker-vars.ts passes it on; durable/watcherShards.ts). */
const PER_OBJECT = Number(process.env.REDFORGE_WATCHERS_PER_OBJECT ?? 500);
const FRAME_TIMEOUT_MS = 60_000;

let stack: TestStack;
/** The session token; renewed before each size (a whole run outlasts one 15-minute session). */
let token = "";
let tokenAt = 0;
async function freshToken(): Promise<string> {
  if (Date.now() - tokenAt > 8 * 60_000) { token = (await adminClient(stack)).token; tokenAt = Date.now(); }
  return token;
}
/** The scripted bridge logs each lost link: a wrangler dev reload (or workerd's restart) drops it with every other socket. */
let linkLosses = 0;
const reloads = () => linkLosses;
const logError = console.error.bind(console);
console.error = (...args: unknown[]) => { if (String(args[0]).includes("link closed")) linkLosses++; logError(...args); };
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)} ms` : "-");
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));

/** One API call; a 503 (an overloaded database on a shared machine) is retried a few times. */
async function api<T>(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(stack.apiUrl + path, {
      method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status !== 503 || attempt >= 6) return { status: res.status, body: (await res.json().catch(() => null)) as T };
    await sleep(500 * attempt);
  }
}

/** Where watchers connect: wrangler's public port, or the Worker's own workerd (found again each time: a restart moves it). */
async function baseUrl(via: "direct" | "proxy"): Promise<string> {
  return via === "proxy" ? stack.apiUrl : directWorkerUrl(stack.apiUrl);
}

interface SizeResult {
  n: number; open: number; joined: number; events: string; connect: number[]; connectFailed: string; lateJoinersOk: number;
  fanFromChange: number[]; fanFromSend: number[]; missed: number; rssPerWatcher: number; fds: string; load: string; closes: string;
  /** Per event: CPU ms of the Worker's workerd and of the client processes while it fanned out. */
  cpu?: { worker: number; clients: number }[];
}

function print(stream: string, r: SizeResult, baseline?: SizeResult): void {
  const c = r.connect, f = r.fanFromChange.slice().sort((a, b) => a - b), s = r.fanFromSend.slice().sort((a, b) => a - b);
  const ratio = baseline ? ` (p99 ×${(q(f, 0.99) / q(baseline.fanFromChange.slice().sort((a, b) => a - b), 0.99)).toFixed(1)} the ${baseline.n}-watcher p99)` : "";
  console.log(`\n${stream}: ${r.n} watchers asked, ${r.open} open (load average ${r.load})`);
  console.log(`  connect (upgrade → first frame): p50 ${ms(q(c, 0.5))}, p99 ${ms(q(c, 0.99))}${r.connectFailed ? `; failed: ${r.connectFailed}` : ""}`);
  console.log(`  late joiners: ${r.lateJoinersOk} of ${r.joined} got the current state as their first frame`);
  console.log(`  fan-out, state change → watcher (${r.events}): p50 ${ms(q(f, 0.5))}, p99 ${ms(q(f, 0.99))}, last ${ms(f.at(-1) ?? NaN)}${ratio}; target p99 < 50 ms: ${q(f, 0.99) < 50 ? "met" : "missed"}`);
  console.log(`  fan-out, trigger request sent → watcher: p50 ${ms(q(s, 0.5))}, p99 ${ms(q(s, 0.99))}, last ${ms(s.at(-1) ?? NaN)}${r.missed ? `; ${r.missed} frames never arrived in 60 s` : ""}`);
  console.log(`  Worker's workerd RSS per watcher: ${(r.rssPerWatcher / 1024).toFixed(1)} KiB; descriptors: ${r.fds}`);
  if (r.cpu?.length) {
    const avg = (k: "worker" | "clients") => r.cpu!.reduce((a, c) => a + c[k], 0) / r.cpu!.length;
    const perWatcherUs = (avg("worker") * 1000) / Math.max(1, r.open);
    console.log(`  CPU per event (trigger → every watcher's receipt): the Worker's workerd ${avg("worker").toFixed(0)} ms (${perWatcherUs.toFixed(1)} µs per watcher), the ${CLIENTS} client processes ${avg("clients").toFixed(0)} ms in all`);
    if (q(f, 0.99) >= 50) {
      // Why it is missed here, and what the sharded layout gives where objects have their own threads.
      const perObject = Math.min(r.open, PER_OBJECT);
      console.log(`  why missed: every object of this local Worker runs on workerd's one thread, so ${r.open} sends × ${perWatcherUs.toFixed(0)} µs = ${((r.open * perWatcherUs) / 1000).toFixed(0)} ms of CPU come before the last watcher's frame, however the watchers are spread; ` +
        `with REDFORGE_WATCHERS_PER_OBJECT=${PER_OBJECT} (${Math.ceil(r.open / PER_OBJECT)} object(s)) one object's share is ${perObject} × ${perWatcherUs.toFixed(0)} µs ≈ ${((perObject * perWatcherUs) / 1000).toFixed(0)} ms where each object has its own thread (production; an estimate, not measured here)`);
    }
  }
  if (r.closes) console.log(`  closed by the server meanwhile: ${r.closes}`);
}

/** Descriptors held by each workerd now, and per watcher against `before` (the same process, by role). */
async function fdSnapshot() {
  const ps = await workerdProcesses(Number(new URL(stack.apiUrl).port));
  return { proxy: ps.find((p) => p.proxy), worker: ps.find((p) => !p.proxy) };
}
type Snap = Awaited<ReturnType<typeof fdSnapshot>>;
function fdLine(before: Snap, after: Snap, watchers: number): string {
  const one = (role: "proxy" | "worker") => {
    const a = after[role], b = before[role];
    if (!a) return `${role} -`;
    const per = b && b.pid === a.pid ? ` (${((a.fds - b.fds) / Math.max(1, watchers)).toFixed(2)} per watcher)` : "";
    return `${role === "proxy" ? "wrangler's proxy workerd" : "the Worker's workerd"} ${a.fds}${per}`;
  };
  return `${one("worker")}, ${one("proxy")} of 20,000`;
}

/** CPU time (ms, user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
async function cpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

const fmt = (m: Map<string, number>) => [...m].map(([k, v]) => `${v}× ${k}`).join(", ");

async function fleetBench(via: "direct" | "proxy", inst: { id: string }, cluster: { id: string; webhookSecret: string }): Promise<void> {
  const pools = new Pools(CLIENTS, CONNECT_CONCURRENCY, FRAME_TIMEOUT_MS);
  const stream = `/ws/fleet (${via === "direct" ? "direct to the Worker's workerd" : "through wrangler's proxy"})`;
  const states = ["running", "stopped"] as const;
  const base = await fdSnapshot();
  let joined = 0, lateOk = 0;
  let baseline: SizeResult | undefined;
  const sizes = SIZES.filter((n) => via === "direct" || n <= PROXY_MAX);
  const retried = new Set<number>();
  try {
    for (let n = sizes.shift(); n !== undefined; n = sizes.shift()) {
      const want = n - joined;
      if (want <= 0) continue;
      const reloadsBefore = reloads();
      const loadBefore = load();
      const url = `${(await baseUrl(via)).replace(/^http/, "ws")}/ws/fleet?token=${encodeURIComponent(await freshToken())}`;
      const { times, failed, first } = await pools.connect(url, want);
      joined += times.length;
      lateOk += first.get("fleet:hello") ?? 0;
      await sleep(2000);
      const snap = await fdSnapshot();
      const fanFromChange: number[] = [], fanFromSend: number[] = [];
      let missed = 0, open = 0;
      const closes = new Map<string, number>();
      const cpu: { worker: number; clients: number }[] = [];
      const clientsCpu = async () => (await Promise.all(pools.pids().map(cpuMs))).reduce((a, b) => a + b, 0);
      for (let k = 0; k < EVENTS; k++) {
        await pools.all({ op: "mark" });
        const cpu0 = { worker: await cpuMs(snap.worker?.pid), clients: await clientsCpu() };
        const reason = `bench-ws-${Date.now()}-${k}`;
        const text = JSON.stringify({ type: "instance.status", instanceId: inst.id, state: states[k % 2], reason });
        const sent = Date.now();
        const res = await fetch(`${stack.apiUrl}/api/webhooks/clusters/${cluster.id}`, { method: "POST", body: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "content-type": "application/json" } });
        if (res.status !== 202) throw new Error(`status webhook: ${res.status} ${await res.text()}`);
        const got = await pools.collect([reason]);
        cpu.push({ worker: (await cpuMs(snap.worker?.pid)) - cpu0.worker, clients: (await clientsCpu()) - cpu0.clients });
        open = got.open;
        for (const [kk, v] of got.closes) closes.set(kk, (closes.get(kk) ?? 0) + v);
        for (const frames of got.watchers) {
          const hit = frames.find((f) => f[2]);
          if (!hit) { missed++; continue; }
          fanFromSend.push(hit[0] - sent);
          fanFromChange.push(hit[0] - (hit[1] ?? sent));
        }
        await sleep(500);
      }
      const r: SizeResult = {
        n, open, events: `${EVENTS} events × ${open} watchers`, connect: times, connectFailed: fmt(failed),
        lateJoinersOk: lateOk, joined, fanFromChange, fanFromSend, missed,
        rssPerWatcher: ((snap.worker?.rssBytes ?? 0) - (base.worker?.pid === snap.worker?.pid ? base.worker?.rssBytes ?? 0 : 0)) / Math.max(1, joined),
        fds: fdLine(base, snap, joined), load: `${loadBefore} → ${load()}`, closes: fmt(closes), cpu,
      };
      print(stream, r, baseline);
      if (open < n * 0.5) {
        if (!retried.has(n) && reloads() > reloadsBefore && n * (via === "direct" ? 2 : 4) < 19_500) {
          // A wrangler dev reload (it watches app/dist, which other sessions rebuild) drops every socket with 1006.
          retried.add(n);
          console.log(`  the Worker restarted during this size (${reloads() - reloadsBefore} lost bridge links: a wrangler reload, or workerd exiting, e.g. out of descriptors: see wrangler's log): measuring ${n} again`);
          await pools.all({ op: "terminate" });
          joined = 0; lateOk = 0;
          await sleep(3000);
          sizes.unshift(n);
          continue;
        }
        console.log(`  fewer than half the watchers open: ${stream} stops at ${n}`);
        break;
      }
      baseline ??= r;
    }
  } finally {
    await pools.all({ op: "terminate" }).catch(() => {});
    pools.close();
    await sleep(3000);
  }
}

async function main(): Promise<void> {
  stack = await startTestStack({ worker: "wrangler" });
  try {
    await freshToken();
    console.log(`bench/ws (${os.cpus().length} cores, ${new Date().toISOString()}, sizes ${SIZES.join("/")}, ${EVENTS} events per size, via ${VIAS.join(" and ")}, ${CLIENTS} client processes, REDFORGE_WATCHERS_PER_OBJECT ${PER_OBJECT})`);
    const cluster = (await api<{ id: string; webhookSecret: string }>(token, "POST", "/api/clusters", { name: `bench-ws-${Date.now()}` })).body;
    const bridge = await scriptedBridge(stack.apiUrl, cluster.id, cluster.webhookSecret);
    try {
      const inst = (await api<{ id: string }>(token, "POST", "/api/instances", { name: `ws-${Date.now()}`, clusterId: cluster.id })).body;
      if (STREAMS.includes("fleet")) for (const via of VIAS) await fleetBench(via, inst, cluster);
      if (STREAMS.includes("deployment")) {
        // Its own instance: the fleet events above leave theirs stopped; the scripted bridge starts this one.
        const target = (await api<{ id: string }>(token, "POST", "/api/instances", { name: `ws-d-${Date.now()}`, clusterId: cluster.id })).body;
        for (let i = 0; i < 120; i++) {
          if ((await api<{ status: string }>(token, "GET", `/api/instances/${target.id}`)).body.status === "running") break;
          await sleep(500);
        }
        for (const via of VIAS) await deploymentBench(via, target.id);
      }
    } finally {
      bridge.close();
    }
  } finally {
    await stack.stop();
  }
}

/**
 * A deployment can change state only so often, so each size gets its own:
 * created, driven by the scripted bridge to its analysis window (an hour,
 * in RESUME after the switch), then `n` watchers join (late joiners: their first frame
 * must be its current state, in_progress), then POST /rollback. Every frame
 * the rollback emits that carries a timestamp (phase and progress events) is
 * an event: fan-out = receipt − that timestamp.
 */
async function deploymentBench(via: "direct" | "proxy", instanceId: string): Promise<void> {
  let last: unknown;
  const stream = `/ws/deployments/:id (${via === "direct" ? "direct to the Worker's workerd" : "through wrangler's proxy"})`;
  const inWindow = async (id: string) => {
    for (let i = 0; i < 240; i++) {
      const d = (await api<{ status: string; phase: string | null; switched?: boolean }>(token, "GET", `/api/deployments/${id}`)).body;
      // Switched and in RESUME: the post-switch analysis (an hour) is running, POST /rollback is accepted.
      if (d.switched && d.phase === "RESUME") return;
      last = d;
      if (d.status !== "in_progress" && d.status !== "pending") throw new Error(`deployment ${id} ended ${d.status}`);
      await sleep(500);
    }
    throw new Error(`deployment ${id} never reached its analysis window: ${JSON.stringify(last)}`);
  };
  let first: SizeResult | undefined;
  const sizes = SIZES.filter((n) => via === "direct" || n <= PROXY_MAX);
  const retried = new Set<number>();
  for (let n = sizes.shift(); n !== undefined; n = sizes.shift()) {
    const reloadsBefore = reloads();
    await freshToken();
    const res = await api<{ id: string }>(token, "POST", "/api/deployments", {
      instanceId, flows: [{ id: "t1", type: "tab", label: `ws ${Date.now()}` }], analysisSeconds: 3600, rollbackWindowSeconds: 3600,
    });
    if (res.status >= 300) throw new Error(`deployment: ${res.status} ${JSON.stringify(res.body)}`);
    const id = res.body.id;
    await inWindow(id);
    const pools = new Pools(CLIENTS, CONNECT_CONCURRENCY, FRAME_TIMEOUT_MS);
    let r: SizeResult, expected: number;
    try {
      const base = await fdSnapshot();
      const loadBefore = load();
      const url = `${(await baseUrl(via)).replace(/^http/, "ws")}/ws/deployments/${id}?token=${encodeURIComponent(token)}`;
      const { times, failed, first: firsts } = await pools.connect(url, n);
      await sleep(2000);
      const snap = await fdSnapshot();
      await pools.all({ op: "mark" });
      const sent = Date.now();
      const rb = await api(token, "POST", `/api/deployments/${id}/rollback`);
      if (rb.status >= 300) {
        // The Worker restarted under the connects (at 10,000 watchers: out of descriptors) is a result, not a crash of the bench.
        console.log(`\n${stream}: ${n} watchers asked, ${times.length} opened (${fmt(failed) || "no failures"}); POST /rollback answered ${rb.status} ${JSON.stringify(rb.body).slice(0, 300)}${reloads() > reloadsBefore ? " after the Worker restarted (lost bridge link)" : ""}: ${stream} stops at ${n}`);
        break;
      }
      // The rollback's frames: until every watcher saw the final state (or 60 s).
      const got = await pools.collect(['"rolled_back"', '"deployment:state"']);
      const fanFromChange: number[] = [], fanFromSend: number[] = [];
      expected = Math.max(0, ...got.watchers.map((w) => w.length));
      let missed = 0;
      for (const frames of got.watchers) {
        missed += expected - frames.length;
        for (const f of frames) if (f[1] !== null) fanFromChange.push(f[0] - f[1]);
        if (frames[0]) fanFromSend.push(frames[0][0] - sent);
      }
      r = {
        n, open: times.length, events: `${expected} frames per watcher × ${times.length} watchers`, connect: times, connectFailed: fmt(failed),
        lateJoinersOk: firsts.get("deployment:state/in_progress") ?? 0, joined: times.length, fanFromChange, fanFromSend, missed,
        rssPerWatcher: ((snap.worker?.rssBytes ?? 0) - (base.worker?.pid === snap.worker?.pid ? base.worker?.rssBytes ?? 0 : 0)) / Math.max(1, times.length),
        fds: fdLine(base, snap, times.length), load: `${loadBefore} → ${load()}`, closes: fmt(got.closes),
      };
      console.log(`\n(/ws/deployments/${id}: the rollback sent ${expected} frames per watcher)`);
      print(stream, r, first);
    } finally {
      await pools.all({ op: "terminate" }).catch(() => {});
      pools.close();
      await sleep(3000);
    }
    const dropped = n - r.joined + r.missed / Math.max(1, expected);
    if (r.joined < n * 0.5 || dropped > n * 0.5) {
      if (!retried.has(n) && reloads() > reloadsBefore && n * (via === "direct" ? 2 : 4) < 19_500) {
        retried.add(n);
        console.log(`  the Worker restarted during this size (a wrangler reload, or workerd exiting, e.g. out of descriptors: see wrangler's log): measuring ${n} again`);
        sizes.unshift(n);
        continue;
      }
      console.log(`  fewer than half the watchers open: stops at ${n}`);
      break;
    }
    first ??= r;
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
