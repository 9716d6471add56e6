/** The health sweep's points (GET /api/metrics/instances/:id, oldest first) as chart columns. */
import type { components } from "../../../protocol/api/client.ts";

export type InstanceMetrics = components["schemas"]["InstanceMetrics"];
export type HealthPoint = InstanceMetrics["series"][number];

export interface HealthColumns {
  /** Seconds since the epoch (uPlot's time axis). */
  x: number[];
  rssMiB: (number | null)[];
  heapMiB: (number | null)[];
  /** 1 ready, 0 not ready (or not live). */
  ready: number[];
}

const MIB = 1024 * 1024;

export function healthColumns(series: readonly HealthPoint[]): HealthColumns {
  const sorted = [...series].sort((a, b) => Date.parse(a.checkedAt) - Date.parse(b.checkedAt));
  return {
    x: sorted.map((p) => Math.floor(Date.parse(p.checkedAt) / 1000)),
    rssMiB: sorted.map((p) => (p.rssBytes === null ? null : Math.round((p.rssBytes / MIB) * 10) / 10)),
    heapMiB: sorted.map((p) => (p.heapUsedBytes === null ? null : Math.round((p.heapUsedBytes / MIB) * 10) / 10)),
    ready: sorted.map((p) => (p.live && p.ready ? 1 : 0)),
  };
}

/** How much of the window the instance answered ready, for the chart's summary line. */
export function readyShare(series: readonly HealthPoint[]): number | null {
  if (series.length === 0) return null;
  return series.filter((p) => p.live && p.ready).length / series.length;
}
