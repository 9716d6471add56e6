import { DurableObject } from "cloudflare:workers";
import type { Env } from "../core/env.ts";
import type { CounterAdd, MetricsSinkApi, SinkRow } from "../core/objects.ts";
import { canonicalLabels } from "../core/metrics/series.ts";

/**
 * One shard of the control plane's counters (core/metrics/record.ts picks a
 * shard per write; a scrape sums all of them). Counters cannot live in an
 * isolate's memory: isolates come and go, and each would count only its own
 * requests. A Durable Object runs one call at a time, so additions from every
 * isolate are applied in full and in SQLite, which survives restarts and
 * evictions: the values only ever grow.
 */
export class MetricsSink extends DurableObject<Env> implements MetricsSinkApi {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS counters (series TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (series, labels))");
  }

  async add(adds: CounterAdd[]): Promise<void> {
    for (const a of adds) {
      // Counters never go down: a negative or non-finite addition is a caller's bug, not a sample.
      if (!(a.value >= 0) || !Number.isFinite(a.value)) continue;
      this.sql.exec(
        "INSERT INTO counters (series, labels, value) VALUES (?, ?, ?) ON CONFLICT(series, labels) DO UPDATE SET value = value + excluded.value",
        a.series, canonicalLabels(a.labels), a.value,
      );
    }
  }

  async read(): Promise<SinkRow[]> {
    return this.sql.exec<{ series: string; labels: string; value: number }>("SELECT series, labels, value FROM counters").toArray()
      .map((r) => ({ series: r.series, labels: JSON.parse(r.labels) as Record<string, string>, value: r.value }));
  }
}
