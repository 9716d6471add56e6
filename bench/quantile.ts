/**
 * The one percentile every bench prints: nearest rank, the smallest sample with at least q of the
 * samples at or below it. The benches' own copies read sorted[floor(q·n)], one rank too high: over
 * 100 samples their "p99" was the slowest one (docs/performance-ingest.md, Session 10).
 */

/** `sorted` ascending; q in [0, 1]. NaN when there are no samples. */
export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Unsorted samples, p in [0, 100]. */
export function percentile(samples: readonly number[], p: number): number {
  return quantile([...samples].sort((a, b) => a - b), p / 100);
}
