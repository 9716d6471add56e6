/**
 * How the Worker counts: additions go to one of SHARDS MetricsSink objects
 * (so one object's throughput does not cap the API), off the response path
 * (waitUntil). A failure to count is logged and never fails a request.
 */
import type { Env } from "../env.ts";
import type { CounterAdd } from "../objects.ts";
import { SERIES } from "./series.ts";

/** A scrape reads every shard; writes spread over them. */
export const SHARDS = 4;
export const shardName = (i: number) => `metrics-${i}`;

interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

export function recordMetrics(env: Env, ctx: WaitUntil | undefined, adds: CounterAdd[]): void {
  if (!adds.length || !env.METRICS) return;
  const stub = env.METRICS.get(env.METRICS.idFromName(shardName(Math.floor(Math.random() * SHARDS))));
  const sent = stub.add(adds).catch((err: unknown) => console.error(JSON.stringify({ msg: "metrics not recorded", error: String(err) })));
  if (ctx) ctx.waitUntil(sent);
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

export const counted = (series: { name: string }, labels: Record<string, string>, value = 1): CounterAdd => ({ series: series.name, labels, value });
