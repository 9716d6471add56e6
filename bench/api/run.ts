/**
 * bench/api: latency of the main API routes against a route that touches no
 * dependency (GET /api/health/live), measured in the same run on the local
 * stack (wrangler dev, embedded Postgres through the Neon relay, the KV
 * Durable Object): sequential, then 16 and 64 clients at once. Printed per
 * route: p50/p95/p99 in ms, requests/s, and p95 as a multiple of the
 * baseline's p95 in the same mode; with the load average before and after
 * each mode (the machine is shared, so absolute figures move with it).
 *   npx tsx bench/api/run.ts   (BENCH_MODES=1,16,64 BENCH_SEQ=100 BENCH_PER_CLIENT=5 BENCH_SEED=100 BENCH_HEALTH_ROWS=50)
 *   BENCH_ROUTES=writes (only the baseline and the writes) or =reads;
 *   BENCH_CONNECT=0 skips the connection-cost probe (a Pool connect vs one HTTP query);
 *   BENCH_CREATE=500 BENCH_CREATE_CLIENTS=32 BENCH_CREATE_VIA=proxy,direct: then instance creations/s (the
 *   issue's fleet-scale write target, >= 100/s), each client its own admin,
 *   once per Neon relay login mode in BENCH_RELAY_AUTH=tunnel,relay (the
 *   driver's own SCRAM vs the relay logging in from a pool, dev/pg-proxy.ts:
 *   the before/after of that change against the same Worker, same run).
 * Each route gets its own admin user: the per-principal rate limit (50/s,
 * burst 3000) must not turn the bench into a 429 count.
 */
import fs from "node:fs/promises";
import os from "node:os";
import pg from "pg";
import { Pool, neon, neonConfig } from "@neondatabase/serverless";
import WebSocket from "ws";
import { adminClient } from "../../test/harness/adminClient.ts";
import { startTestStack, type TestStack } from "../../test/harness/testStack.ts";
import { cpuOfOwn } from "../fleet-scale/procCpu.ts";
import type { NeonRelay, NeonRelayAuth } from "../../dev/neon-relay.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { quantile } from "../quantile.ts";
import { directWorkerUrl } from "../ws/workerAddress.ts";

const SEQ = Number(process.env.BENCH_SEQ ?? 100);
const PER_CLIENT = Number(process.env.BENCH_PER_CLIENT ?? 5);
const SEED = Number(process.env.BENCH_SEED ?? 100);
const HEALTH_ROWS = Number(process.env.BENCH_HEALTH_ROWS ?? 50);
const WARMUP = 10;
const REQUEST_TIMEOUT_MS = 60_000;
// BENCH_MODES=1,16,64 (clients per mode) runs a subset.
const MODES = [
  { name: "sequential", clients: 1, total: SEQ },
  { name: "16 clients", clients: 16, total: 16 * PER_CLIENT },
  { name: "64 clients", clients: 64, total: 64 * PER_CLIENT },
].filter((m) => (process.env.BENCH_MODES ?? "1,16,64").split(",").map(Number).includes(m.clients));

interface Call { method: string; path: string; body?: unknown; expect: number }
interface Route { name: string; write: boolean; call: (i: number) => Call; user?: string; token?: string; auth?: NeonRelayAuth }

let stack: TestStack;
let serial = 0;
const failures = new Map<string, number>();

/** Milliseconds, and whether the answer was the expected one (a failure is counted, not fatal: overload is a result). */
async function request(call: Call, token?: string, base = stack.apiUrl): Promise<{ ms: number; ok: boolean }> {
  const t0 = performance.now();
  let res: Response;
  let text: string;
  try {
    res = await fetch(base + call.path, {
      method: call.method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(call.body ? { "content-type": "application/json" } : {}) },
      body: call.body ? JSON.stringify(call.body) : undefined,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await res.text();
  } catch (err) {
    const why = (err as Error).name === "TimeoutError" ? `no answer in ${REQUEST_TIMEOUT_MS / 1000} s` : String((err as Error).cause ?? err);
    failures.set(why, (failures.get(why) ?? 0) + 1);
    return { ms: performance.now() - t0, ok: false };
  }
  const ms = performance.now() - t0;
  if (res.status !== call.expect) {
    const code = /"code":"([^"]+)"/.exec(text)?.[1] ?? "";
    failures.set(`${res.status} ${code}`, (failures.get(`${res.status} ${code}`) ?? 0) + 1);
  }
  return { ms, ok: res.status === call.expect };
}

async function api<T>(token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(stack.apiUrl + path, {
    method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<T>;
}

interface Stat { p50: number; p95: number; p99: number; rps: number; n: number; failed: number; why: string }

async function measure(route: Route, clients: number, total: number): Promise<Stat> {
  // A fresh session per mode: a whole run on a loaded machine outlasts one 15-minute token.
  if (route.user) route.token = await login(route.user);
  for (let i = 0; i < WARMUP; i++) await request(route.call(serial++), route.token);
  failures.clear();
  const times: number[] = [];
  let failed = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < total) {
      next++;
      const r = await request(route.call(serial++), route.token);
      times.push(r.ms);
      if (!r.ok) failed++;
    }
  }));
  const wall = performance.now() - t0;
  times.sort((a, b) => a - b);
  const why = [...failures].map(([k, n]) => `${n}× ${k}`).join(", ");
  return { p50: quantile(times, 0.5), p95: quantile(times, 0.95), p99: quantile(times, 0.99), rps: total / (wall / 1000), n: total, failed, why };
}

const PASSWORD = "bench-password-123456";

/** An admin of its own per route, so each route has a full rate-limit bucket. */
async function adminUser(adminToken: string, name: string): Promise<string> {
  const username = `bench-${name}-${Date.now()}`;
  await api(adminToken, "POST", "/api/users", { username, email: `${username}@bench.test`, password: PASSWORD, role: "admin" });
  return username;
}

async function login(username: string): Promise<string> {
  const res = await fetch(`${stack.apiUrl}/api/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** Health history as a sweep would leave it, so the fleet metrics have rows to read. */
async function seedHealth(db: pg.Client, clusterId: string): Promise<void> {
  await db.query(
    `insert into instance_health (instance_id, checked_at, state, live, ready, rss_bytes, heap_used_bytes, flows_state, missing_node_types)
     select i.id, now() - (g * interval '1 minute'), 'running', true, g % 7 <> 0, 110000000 + g, 40000000 + g, 'started', '[]'::jsonb
     from instances i cross join generate_series(1, $2::int) g where i.cluster_id = $1`,
    [clusterId, HEALTH_ROWS],
  );
}

/** Whole-machine busy CPU seconds (every process, other sessions' too). */
async function machineCpu(): Promise<number> {
  const [, ...f] = (await fs.readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
}

const cpuNow = async () => {
  const u = process.cpuUsage();
  return { workerd: await cpuOfOwn(/workerd/), postgres: await cpuOfOwn(/postgres/), self: (u.user + u.system) / 1e6, all: await machineCpu(), at: performance.now() };
};

const relayOf = (): NeonRelay => stack.services.find((s) => s.name === "neon relay") as NeonRelay;
const RELAY_MODES = (process.env.BENCH_RELAY_AUTH ?? "tunnel,relay").split(",") as NeonRelayAuth[];

/**
 * What one write transaction's connection costs, measured from Node with the
 * Worker's own driver through the same relay: a `Pool` connect + `select 1`
 * with the relay in "tunnel" mode (WebSocket, Postgres startup, SCRAM-SHA-256:
 * the driver computes the 4,096-iteration PBKDF2 in its bundled pure-JS
 * SHA-256, in V8 as in workerd) and in "relay" mode (the relay logs in for it,
 * from a pool), against one SQL-over-HTTP `select 1` (what reads pay). CPU is
 * this process's: the driver and the relay together.
 */
async function connectCost(n = 30): Promise<void> {
  const url = stack.workerVars.DATABASE_URL!;
  const relay = stack.workerVars.NEON_LOCAL_PROXY!;
  neonConfig.wsProxy = (host, port) => `${relay}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineConnect = false;
  neonConfig.pipelineTLS = false;
  neonConfig.fetchEndpoint = `http://${relay}/sql`;
  neonConfig.webSocketConstructor = WebSocket;
  const run = async (what: () => Promise<unknown>) => {
    await what();
    const wall: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) { const t0 = performance.now(); await what(); wall.push(performance.now() - t0); }
    const cpu = process.cpuUsage(cpu0);
    wall.sort((a, b) => a - b);
    return { p50: quantile(wall, 0.5), cpu: (cpu.user + cpu.system) / 1000 / n };
  };
  const loadBefore = load();
  const connect = async () => { const pool = new Pool({ connectionString: url, max: 1 }); try { await pool.query("select 1"); } finally { await pool.end(); } };
  relayOf().auth = "tunnel";
  const tunnelled = await run(connect);
  relayOf().auth = "relay";
  const relayed = await run(connect);
  const http = await run(() => neon(url).query("select 1"));
  console.log(`\nconnection cost, ${n} each from Node through the relay (load average ${loadBefore} → ${load()}):`);
  console.log(`  Pool connect + select 1, relay "tunnel" (driver does SCRAM): p50 ${tunnelled.p50.toFixed(1)} ms, CPU ${tunnelled.cpu.toFixed(1)} ms in this process`);
  console.log(`  Pool connect + select 1, relay "relay" (pooled login):       p50 ${relayed.p50.toFixed(1)} ms, CPU ${relayed.cpu.toFixed(1)} ms in this process` +
    ` (×${(relayed.cpu / tunnelled.cpu).toFixed(2)} CPU, ×${(relayed.p50 / tunnelled.p50).toFixed(2)} p50)`);
  console.log(`  SQL-over-HTTP select 1 (reads):                               p50 ${http.p50.toFixed(1)} ms, CPU ${http.cpu.toFixed(1)} ms in this process`);
}

const CREATE = Number(process.env.BENCH_CREATE ?? 500);
const CREATE_CLIENTS = Number(process.env.BENCH_CREATE_CLIENTS ?? 32);
/**
 * Where the creations are sent: "proxy" = the public port, through wrangler dev's proxy workerd (a
 * second process that forwards every request, ~2 ms of CPU each on this machine; production has no
 * such hop), "direct" = the Worker's own workerd (bench/ws/workerAddress.ts), as production's edge
 * reaches the Worker. BENCH_CREATE_VIA=proxy,direct (default both, printed apart).
 */
type CreationVia = "proxy" | "direct";
const VIAS = (process.env.BENCH_CREATE_VIA ?? "proxy,direct").split(",") as CreationVia[];

/**
 * Instance creations per second: CREATE_CLIENTS clients, each its own admin
 * (so no rate limit), create CREATE instances between them as fast as the
 * API answers. The simulated driver: nothing picks the command up, so this
 * is the control plane's cost alone (quota check, insert, outbox, audit row).
 */
interface CreationRun { label: string; rate: number; cpu: { workerd: number; postgres: number; self: number } }

/**
 * The same load on routes that touch no database, right before a creation
 * run: what any request costs workerd (wrangler dev's proxy + the Worker's
 * middleware), so a creation's CPU reads as a multiple of it.
 */
async function baselineCpu(tokens: string[], base: string): Promise<string> {
  const lines: string[] = [];
  for (const path of ["/api/health/live", "/api/auth/me"]) {
    const cpu0 = await cpuNow();
    let next = 0;
    const t0 = performance.now();
    await Promise.all(tokens.map(async (token) => {
      while (next < CREATE) { next++; await request({ method: "GET", path, expect: 200 }, token, base); }
    }));
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = await cpuNow();
    lines.push(`GET ${path} ${(CREATE / wall).toFixed(0)}/s, workerd ${((1000 * (cpu1.workerd - cpu0.workerd)) / CREATE).toFixed(1)} ms CPU each`);
  }
  return lines.join("; ");
}

async function creationRate(db: pg.Client, adminToken: string, clusterId: string, teams: "one" | "distinct", auth: NeonRelayAuth, via: CreationVia): Promise<CreationRun> {
  relayOf().auth = auth;
  const base = via === "direct" ? await directWorkerUrl(stack.apiUrl) : stack.apiUrl;
  const tokens: string[] = [];
  for (let i = 0; i < CREATE_CLIENTS; i++) {
    const user = await adminUser(adminToken, `c${i}`);
    // Before the first login: the principal cache would keep the old team for a minute.
    if (teams === "distinct") await db.query("update users set team = $1 where username = $2", [`bench-team-${Date.now()}-${i}`, user]);
    tokens.push(await login(user));
  }
  const baseline = await baselineCpu(tokens, base);
  const loadBefore = load();
  const cpu0 = await cpuNow();
  failures.clear();
  const times: number[] = [];
  let next = 0;
  let created = 0;
  const t0 = performance.now();
  await Promise.all(tokens.map(async (token) => {
    while (next < CREATE) {
      const i = next++;
      const r = await request({ method: "POST", path: "/api/instances", body: { name: `rate-${i}-${Date.now()}`, clusterId }, expect: 201 }, token, base);
      times.push(r.ms);
      if (r.ok) created++;
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = await cpuNow();
  times.sort((a, b) => a - b);
  const rate = created / wall;
  const why = [...failures].map(([k, n]) => `${n}× ${k}`).join(", ");
  const perMs = (a: number, b: number) => (1000 * (b - a)) / Math.max(1, created);
  const per = (a: number, b: number) => `${perMs(a, b).toFixed(1)} ms`;
  const label = `${teams === "one" ? "one team" : `${CREATE_CLIENTS} teams`}, relay "${auth}"${VIAS.length > 1 || via === "direct" ? `, ${via === "direct" ? "direct to the Worker's workerd" : "through wrangler's proxy"}` : ""}`;
  console.log(`\ninstance creations, ${label}: ${created} of ${CREATE} in ${wall.toFixed(1)} s at ${CREATE_CLIENTS} clients = ${rate.toFixed(1)}/s` +
    ` (p50 ${times.length ? quantile(times, 0.5).toFixed(0) : "-"} ms, p99 ${times.length ? quantile(times, 0.99).toFixed(0) : "-"} ms; load average ${loadBefore} → ${load()})${why ? `; failed: ${why}` : ""}`);
  console.log(`  CPU per creation: workerd ${per(cpu0.workerd, cpu1.workerd)}, postgres ${per(cpu0.postgres, cpu1.postgres)}, this process (Neon relay + client) ${per(cpu0.self, cpu1.self)}; ` +
    `baseline at ${CREATE_CLIENTS} clients: ${baseline}; machine ${os.cpus().length} cores busy ${(100 * (cpu1.all - cpu0.all) / ((cpu1.at - cpu0.at) / 1000) / os.cpus().length).toFixed(0)}%`);
  return { label, rate, cpu: { workerd: perMs(cpu0.workerd, cpu1.workerd), postgres: perMs(cpu0.postgres, cpu1.postgres), self: perMs(cpu0.self, cpu1.self) } };
}

/**
 * BENCH_HELLO=1: the cluster's bridge says hello once, listing its stacks, and goes away, as a
 * cluster with a current bridge has (its creations' stack check then has a report to go by;
 * without it every creation asks the ClusterLink). Commands still pile up unsent, as without it.
 */
async function sayHello(adminToken: string, cluster: { id: string; webhookSecret: string }): Promise<void> {
  const body = JSON.stringify({ bridgeVersion: "bench" });
  const res = await fetch(`${stack.apiUrl}/api/clusters/${cluster.id}/token`, {
    method: "POST", body, headers: { ...(await webhookHeaders(cluster.webhookSecret, body)), "content-type": "application/json" },
  });
  if (res.status !== 200) throw new Error(`cluster token: ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  const ws = new WebSocket(`${stack.apiUrl.replace(/^http/, "ws")}/api/clusters/${cluster.id}/link`, { headers: { authorization: `Bearer ${token}` } });
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  ws.send(JSON.stringify({ kind: "hello", bridgeVersion: "bench", driver: "process", stacks: [{ id: "5.0", nodeRed: "5.0.7" }, { id: "4.1", nodeRed: "4.1.15" }] }));
  for (let i = 0; ; i++) {
    if ((await api<{ reported: boolean }>(adminToken, "GET", `/api/stacks?clusterId=${cluster.id}`)).reported) break;
    if (i > 100) throw new Error("the hello's stacks never showed in GET /api/stacks");
    await new Promise((r) => setTimeout(r, 100));
  }
  ws.close();
  console.log("cluster's bridge said hello (stacks 5.0, 4.1) and disconnected (BENCH_HELLO=1)");
}

const cpuTotal = (r: CreationRun) => r.cpu.workerd + r.cpu.postgres + r.cpu.self;

const fmt = (n: number) => n.toFixed(1).padStart(7);
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");

async function main() {
  stack = await startTestStack({ worker: "wrangler" });
  const db = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
  await db.connect();
  try {
    if (process.env.BENCH_CONNECT !== "0") await connectCost();
    const { token: adminToken } = await adminClient(stack);
    const cluster = await api<{ id: string; webhookSecret: string }>(adminToken, "POST", "/api/clusters", { name: "bench-api" });
    if (process.env.BENCH_HELLO === "1") await sayHello(adminToken, cluster);
    const seeded: string[] = [];
    for (let i = 0; i < SEED; i++) seeded.push((await api<{ id: string }>(adminToken, "POST", "/api/instances", { name: `seed-${i}`, clusterId: cluster.id })).id);
    await seedHealth(db, cluster.id);

    const routes: Route[] = [
      { name: "GET /api/health/live (baseline, no DB)", write: false, call: () => ({ method: "GET", path: "/api/health/live", expect: 200 }) },
      { name: "GET /api/instances?limit=20", write: false, call: () => ({ method: "GET", path: "/api/instances?limit=20", expect: 200 }) },
      { name: "GET /api/auth/me", write: false, call: () => ({ method: "GET", path: "/api/auth/me", expect: 200 }) },
      { name: "GET /api/audit?limit=20", write: false, call: () => ({ method: "GET", path: "/api/audit?limit=20", expect: 200 }) },
      { name: "GET /api/metrics/fleet", write: false, call: () => ({ method: "GET", path: "/api/metrics/fleet", expect: 200 }) },
      { name: "POST /api/instances", write: true, call: (i) => ({ method: "POST", path: "/api/instances", body: { name: `b-${i}`, clusterId: cluster.id }, expect: 201 }) },
      { name: "PATCH /api/instances/:id", write: true, call: (i) => ({ method: "PATCH", path: `/api/instances/${seeded[i % seeded.length]}`, body: { env: { BENCH_I: String(i) } }, expect: 200 }) },
    ];
    const only = process.env.BENCH_ROUTES;
    if (only) routes.splice(1, routes.length, ...routes.slice(1).filter((r) => (only === "writes") === r.write));
    // Writes open a Pool: measure them once per relay login mode (before/after dev/pg-proxy.ts, same Worker, same run).
    if (RELAY_MODES.length > 1) {
      routes.splice(0, routes.length, ...routes.flatMap((r) => (r.write ? RELAY_MODES.map((auth) => ({ ...r, name: `${r.name} [${auth}]`, auth })) : [r])));
    }
    for (const [i, r] of routes.entries()) if (i > 0) r.user = await adminUser(adminToken, `r${i}`);

    console.log(`\nbench/api (${os.cpus().length} cores, ${new Date().toISOString()}, ${SEED} instances × ${HEALTH_ROWS} health rows seeded)`);
    const summary: string[] = [];
    for (const mode of MODES) {
      const loadBefore = load();
      const results: [Route, Stat][] = [];
      for (const r of routes) {
        relayOf().auth = r.auth ?? "relay";
        results.push([r, await measure(r, mode.clients, mode.total)]);
      }
      relayOf().auth = "relay";
      const base = results[0]![1];
      console.log(`\n${mode.name} (${mode.total} requests per route; load average ${loadBefore} → ${load()})`);
      console.log(`  ${"route".padEnd(42)}     p50     p95     p99   req/s  p95/baseline (ms)`);
      for (const [r, s] of results) {
        const ratio = s.p95 / base.p95;
        console.log(`  ${r.name.padEnd(42)} ${fmt(s.p50)} ${fmt(s.p95)} ${fmt(s.p99)} ${s.rps.toFixed(0).padStart(7)}  ×${ratio.toFixed(1).padEnd(6)}${s.failed ? ` ${s.failed} failed (${s.why})` : ""}`);
        if (mode.clients === 1 && r !== routes[0]) {
          const target = r.write ? s.p95 < 60 : s.p95 < 25 && ratio < 3;
          summary.push(`  ${r.name.padEnd(42)} p95 ${s.p95.toFixed(1)} ms, ×${ratio.toFixed(1)} baseline: ${target ? "meets" : "misses"} the target (${r.write ? "writes p95 < 60 ms" : "reads p95 < 25 ms and < 3× baseline"})`);
        }
      }
    }
    if (CREATE > 0) {
      // One team: every create also queues on that team's quota lock (core/governance/quotas.ts). Distinct teams: only the audit chain is shared.
      for (const teams of ["one", "distinct"] as const) {
        const runs: CreationRun[] = [];
        for (const via of VIAS) for (const auth of RELAY_MODES) runs.push(await creationRate(db, adminToken, cluster.id, teams, auth, via));
        for (const r of runs) {
          summary.push(`  ${`instance creations/s, ${r.label}`.padEnd(42)} ${r.rate.toFixed(1)}/s at ${CREATE_CLIENTS} clients, ${cpuTotal(r).toFixed(1)} ms CPU each: ${r.rate >= 100 ? "meets" : "misses"} the target (>= 100/s)`);
        }
        // Same-run ratios: the relay's login modes (same route), and direct vs wrangler's proxy (same relay mode).
        const pairs: [CreationRun | undefined, CreationRun | undefined][] = [];
        if (RELAY_MODES.length > 1) pairs.push([runs[0], runs[1]]);
        if (VIAS.length > 1) pairs.push([runs[0], runs[RELAY_MODES.length]]);
        for (const [before, after] of pairs) {
          if (!before || !after) continue;
          summary.push(`    ${after.label} vs ${before.label}: creations/s ×${(after.rate / before.rate).toFixed(2)}, CPU per creation ×${(cpuTotal(after) / cpuTotal(before)).toFixed(2)}` +
            ` (workerd ×${(after.cpu.workerd / before.cpu.workerd).toFixed(2)}, postgres ×${(after.cpu.postgres / before.cpu.postgres).toFixed(2)}, relay + client ×${(after.cpu.self / before.cpu.self).toFixed(2)})`);
        }
      }
      relayOf().auth = "relay";
    }
    console.log(`\ntargets (sequential; issue 14 asks for an idle machine, load now ${load()}):`);
    for (const line of summary) console.log(line);
  } finally {
    await db.end();
    await stack.stop();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
