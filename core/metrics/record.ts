/**
 * How the Worker counts: additions are gathered in the isolate for up to
 * FLUSH_MS and then sent, merged, to one of SHARDS MetricsSink objects (so
 * neither one object's throughput nor one call per request limits the API),
 * off the response path: the request that opened the window keeps it alive
 * with waitUntil until it is sent. A failure to count is logged and never
 * fails a request; an isolate that dies inside a window loses that window's
 * additions (they never count, nothing goes backwards).
 */
import type { Env } from "../env.ts";
import type { CounterAdd } from "../objects.ts";
import { canonicalLabels, SERIES } from "./series.ts";

/** A scrape reads every shard; writes spread over them. */
export const SHARDS = 4;
export const shardName = (i: number) => `metrics-${i}`;
/** How long an isolate gathers additions before it sends them. */
export const FLUSH_MS = 500;

interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

let pending = new Map<string, CounterAdd>();
let window: Promise<void> | undefined;
let windowOpenedAt = 0;
/** A window this old has not flushed and will not. */
const STUCK_MS = 10_000;

export function recordMetrics(env: Env, ctx: WaitUntil | undefined, adds: CounterAdd[]): void {
  if (!adds.length || !env.METRICS) return;
  for (const a of adds) {
    const key = `${a.series}\u0000${canonicalLabels(a.labels)}`;
    const known = pending.get(key);
    if (known) known.value += a.value;
    else pending.set(key, { ...a, labels: { ...a.labels } });
  }
  // A window that outlived its request's waitUntil may never fire (workerd drops a finished request's
  // timers): one far older than FLUSH_MS is given up, and the next window sends what it had gathered.
  if (window && Date.now() - windowOpenedAt < STUCK_MS) return;
  // Only the request that opens a window waits for it: no request awaits another's I/O.
  windowOpenedAt = Date.now();
  const opened = new Promise<void>((resolve) => setTimeout(resolve, FLUSH_MS)).then(() => flush(env)).finally(() => { if (window === opened) window = undefined; });
  window = opened;
  if (ctx) ctx.waitUntil(opened);
}

async function flush(env: Env): Promise<void> {
  const batch = [...pending.values()];
  pending = new Map();
  if (!batch.length) return;
  const stub = env.METRICS.get(env.METRICS.idFromName(shardName(Math.floor(Math.random() * SHARDS))));
  await stub.add(batch).catch((err: unknown) => console.error(JSON.stringify({ msg: "metrics not recorded", series: batch.length, error: String(err) })));
}

/** From a request handler: its ExecutionContext keeps the write alive after the answer (absent in app.request unit calls). */
export function recordFromRequest(c: { env: Env; executionCtx: WaitUntil }, adds: CounterAdd[]): void {
  let ctx: WaitUntil | undefined;
  try { ctx = c.executionCtx; } catch { ctx = undefined; }
  recordMetrics(c.env, ctx, adds);
}

/** Sink series names of a histogram's parts. */
export const histogramParts = (name: string) => ({ bucket: (i: number) => `${name}:b${i}`, sum: `${name}:sum`, count: `${name}:count` });

/** One observation of a histogram: its bucket, its sum and its count. */
export function observe(def: { name: string; buckets: readonly number[] }, labels: Record<string, string>, value: number): CounterAdd[] {
  const parts = histogramParts(def.name);
  let i = def.buckets.findIndex((le) => value <= le);
  if (i < 0) i = def.buckets.length;
  return [
    { series: parts.bucket(i), labels, value: 1 },
    { series: parts.sum, labels, value },
    { series: parts.count, labels, value: 1 },
  ];
}

export function requestObserved(route: string, method: string, status: number, seconds: number): CounterAdd[] {
  return observe(SERIES.httpRequestDuration, { route, method, status_class: `${Math.floor(status / 100)}xx` }, seconds);
}

/** A deployment phase ended (DeploymentRun): `outcome` completed or failed. */
export function phaseObserved(phase: string, outcome: "completed" | "failed", seconds: number): CounterAdd[] {
  return observe(SERIES.deploymentPhaseDuration, { phase, outcome }, seconds);
}

/**
 * A command's receipt (ClusterLink). Stored under the cluster's id, which the link knows and which never
 * changes; the scrape labels it with the cluster's name (core/metrics/collect.ts).
 */
export function roundTripObserved(clusterId: string, seconds: number): CounterAdd[] {
  return observe(SERIES.commandRoundTrip, { cluster_id: clusterId }, seconds);
}

export const counted = (series: { name: string }, labels: Record<string, string>, value = 1): CounterAdd => ({ series: series.name, labels, value });
