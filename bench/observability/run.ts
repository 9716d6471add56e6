/**
 * bench/observability: what observing the fleet costs.
 *   A. GET /metrics at 100 and 1,000 instances (a real bridge program with the
 *      SimulatedDriver, as bench/fleet-scale, so every per-instance series comes
 *      from real health reports): scrape time p50/p95 and payload size, in both
 *      formats' default (text 0.0.4);
 *   C. what a scrape costs the API: p50/p95 of an authenticated read
 *      (GET /api/instances, a page of 50) without scraping, with a scrape of
 *      /metrics every second beside it, and without again, in the same run;
 *   B. the request-metrics middleware: p50/p95 of a cheap API answer (401 from
 *      an authenticated route: no database) with the middleware on, off
 *      (REDFORGE_REQUEST_METRICS=off, the same wrangler dev restarted), and on
 *      again, in the same run.
 *   npx tsx bench/observability/run.ts     (BENCH_SIZES=100,1000 BENCH_SCRAPES=20 BENCH_REQUESTS=400)
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
import { percentile as pct } from "../quantile.ts";

const SIZES = (process.env.BENCH_SIZES ?? "100,1000").split(",").map(Number);
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 20);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 400);
const CONCURRENCY = 6;

let stack: TestStack;
let api: ApiClient;
let token: string;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

async function createInstances(clusterId: string, from: number, to: number): Promise<void> {
  let next = from;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < to) {
      const i = next++;
      // wrangler dev reloads when a source file changes (a shared checkout) and answers a POST in flight 503: try again.
      for (let attempt = 0; ; attempt++) {
        const res = await api.POST("/api/instances", { body: { name: `obs-${i}`, clusterId } });
        if (res.response.status === 201 || (res.response.status === 409 && attempt > 0)) break;
        if (res.response.status !== 503 || attempt >= 30) throw new Error(`create obs-${i}: ${res.response.status} ${JSON.stringify(res.error)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }));
}

const count = async (db: pg.Client, q: string, args: unknown[]) => (await db.query(q, args)).rows[0].n as number;

/** One health sweep through QStash's schedule; done when every instance has a report newer than the sweep. */
async function sweep(db: pg.Client, clusterId: string, n: number): Promise<void> {
  const since = new Date();
  stack.qstash.fireSchedule("redforge-health-sweep");
  await stack.qstash.tick();
  await waitFor("sweep", async () => (await count(db, `select count(distinct h.instance_id)::int as n from instance_health h join instances i on i.id = h.instance_id
    where i.cluster_id = $1 and h.checked_at >= $2 and h.cpu_seconds is not null`, [clusterId, since])) >= n, 300_000);
}

async function scrapes(): Promise<{ p50: number; p95: number; bytes: number; series: number }> {
  const times: number[] = [];
  let text = "";
  for (let i = 0; i < SCRAPES + 2; i++) {
    const t0 = performance.now();
    const res = await fetch(`${stack.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    text = await res.text();
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text.slice(0, 200)}`);
    if (i >= 2) times.push(performance.now() - t0); // two warm-ups
  }
  return { p50: pct(times, 50), p95: pct(times, 95), bytes: Buffer.byteLength(text), series: text.split("\n").filter((l) => l && !l.startsWith("#")).length };
}

/** An authenticated read of the fleet (Postgres and the principal cache), timed; `scrapeEveryMs` scrapes /metrics beside it. */
async function readsWhile(scrapeEveryMs: number | null): Promise<{ p50: number; p95: number; scrapes: number }> {
  let scrapes = 0;
  let stop = false;
  const scraper = scrapeEveryMs === null ? Promise.resolve() : (async () => {
    while (!stop) {
      const t0 = performance.now();
      const res = await fetch(`${stack.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      scrapes++;
      await new Promise((r) => setTimeout(r, Math.max(0, scrapeEveryMs - (performance.now() - t0))));
    }
  })();
  const times: number[] = [];
  try {
    for (let i = 0; i < REQUESTS + 20; i++) {
      const t0 = performance.now();
      const res = await fetch(`${stack.apiUrl}/api/instances?limit=50`, { headers: { Authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`GET /api/instances answered ${res.status}`);
      if (i >= 20) times.push(performance.now() - t0);
    }
  } finally {
    stop = true;
    await scraper;
  }
  return { p50: pct(times, 50), p95: pct(times, 95), scrapes };
}

/** A cheap API answer: 401 from an authenticated route (no database, no Durable Object beyond the per-address limit). */
async function cheapRoute(): Promise<{ p50: number; p95: number }> {
  const times: number[] = [];
  for (let i = 0; i < REQUESTS + 30; i++) {
    const t0 = performance.now();
    const res = await fetch(`${stack.apiUrl}/api/instances`);
    await res.arrayBuffer();
    if (res.status !== 401) throw new Error(`expected 401, got ${res.status}`);
    if (i >= 30) times.push(performance.now() - t0);
  }
  return { p50: pct(times, 50), p95: pct(times, 95) };
}

async function withRequestMetrics(setting: "on" | "off") {
  // The per-address limit would answer a benchmark loop 429; it is not what is measured.
  stack.workerVars.REDFORGE_RATE_LIMIT_CLIENT = "0";
  if (setting === "off") stack.workerVars.REDFORGE_REQUEST_METRICS = "off";
  else delete stack.workerVars.REDFORGE_REQUEST_METRICS;
  await stack.restartWorker();
  await waitFor("worker up again", async () => (await fetch(`${stack.apiUrl}/api/instances`).catch(() => null))?.status === 401, 60_000);
  return cheapRoute();
}

async function main() {
  stack = await startTestStack({ worker: "wrangler" });
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-bench-obs-"));
  await fs.chmod(tmp, 0o755);
  const bridges: RunningBridge[] = [];
  const db = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
  await db.connect();
  const rows: [string, string][] = [];
  try {
    ({ api, token } = await adminClient(stack));
    const { data } = await api.POST("/api/clusters", { body: { name: "sim" } });
    const cluster = { id: data!.id, secret: data!.webhookSecret };
    bridges.push(await startBridge({ clusterId: cluster.id, api: stack.apiUrl, secret: cluster.secret, driver: new SimulatedDriver(), stateDir: path.join(tmp, "sim"), log: quietLog }));
    let have = 0;
    for (const n of SIZES) {
      await createInstances(cluster.id, have, n);
      have = n;
      await waitFor(`${n} running`, async () => (await count(db, "select count(*)::int as n from instances where cluster_id = $1 and status = 'running'", [cluster.id])) >= n, 900_000);
      await sweep(db, cluster.id, n);
      const s = await scrapes();
      rows.push([`GET /metrics @ ${n} instances: p50 / p95`, `${s.p50.toFixed(0)} ms / ${s.p95.toFixed(0)} ms`]);
      rows.push([`GET /metrics @ ${n} instances: size / samples`, `${(s.bytes / 1024).toFixed(0)} KiB / ${s.series}`]);
    }
    // C: the API beside a scrape every second, between two runs without, at the last fleet size.
    stack.workerVars.REDFORGE_RATE_LIMIT_CLIENT = "0";
    await stack.restartWorker();
    await waitFor("worker up again", async () => (await fetch(`${stack.apiUrl}/api/instances`).catch(() => null))?.status === 401, 60_000);
    const quiet1 = await readsWhile(null);
    const scraped = await readsWhile(1_000);
    const quiet2 = await readsWhile(null);
    const quiet = { p50: (quiet1.p50 + quiet2.p50) / 2, p95: (quiet1.p95 + quiet2.p95) / 2 };
    const fmtC = (r: { p50: number; p95: number }) => `${r.p50.toFixed(1)} ms / ${r.p95.toFixed(1)} ms`;
    rows.push([`GET /api/instances?limit=50 @ ${have}, no scrape (1st): p50 / p95 (n=${REQUESTS})`, fmtC(quiet1)]);
    rows.push([`GET /api/instances?limit=50, a scrape every 1 s beside it (${scraped.scrapes} scrapes)`, fmtC(scraped)]);
    rows.push(["GET /api/instances?limit=50, no scrape (2nd)", fmtC(quiet2)]);
    rows.push(["API p95 with scrapes / without (mean of the two)", `×${(scraped.p95 / quiet.p95).toFixed(2)} (p50 ×${(scraped.p50 / quiet.p50).toFixed(2)})`]);
    const on1 = await withRequestMetrics("on");
    const off = await withRequestMetrics("off");
    const on2 = await withRequestMetrics("on");
    const fmt = (r: { p50: number; p95: number }) => `${r.p50.toFixed(1)} ms / ${r.p95.toFixed(1)} ms`;
    rows.push([`cheap route, request metrics on (1st): p50 / p95 (n=${REQUESTS})`, fmt(on1)]);
    rows.push(["cheap route, request metrics off: p50 / p95", fmt(off)]);
    rows.push(["cheap route, request metrics on (2nd): p50 / p95", fmt(on2)]);
    const on = { p50: (on1.p50 + on2.p50) / 2, p95: (on1.p95 + on2.p95) / 2 };
    rows.push(["middleware overhead (mean of on runs − off): p50 / p95", `${(on.p50 - off.p50).toFixed(1)} ms / ${(on.p95 - off.p95).toFixed(1)} ms (×${(on.p50 / off.p50).toFixed(2)} / ×${(on.p95 / off.p95).toFixed(2)})`]);
    console.log(`\nbench/observability (${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}, ${new Date().toISOString()})`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(64)} ${v}`);
  } finally {
    for (const b of bridges) await b.close().catch(() => {});
    await db.end();
    await stack.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

const quietLog = lineLogger((line, level) => { if (level === "error") console.error(`[bridge] ${line}`); });

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
