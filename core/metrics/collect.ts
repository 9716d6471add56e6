/**
 * What one scrape reads: the counters from every MetricsSink shard, and the
 * fleet's state from Postgres in one round of parallel queries. A source that
 * cannot be read leaves its series out and says so in redforge_metrics_source_up,
 * so a scrape answers 200 with what it has rather than failing whole.
 */
import { sql } from "drizzle-orm";
import { linkStatuses } from "../fleet/linkStatuses.ts";
import type { Db } from "../../db/client.ts";
import type { Env } from "../env.ts";
import type { SinkRow } from "../objects.ts";
import type { Family, HistogramSample, Labels, Sample } from "./exposition.ts";
import { histogramParts, SHARDS, shardName } from "./record.ts";
import { canonicalLabels, SERIES, type SeriesDef } from "./series.ts";


async function readSink(env: Env): Promise<SinkRow[]> {
  const shards = await Promise.all(Array.from({ length: SHARDS }, (_, i) => env.METRICS.get(env.METRICS.idFromName(shardName(i))).read()));
  // The same series and labels from several shards add up.
  const sum = new Map<string, SinkRow>();
  for (const row of shards.flat()) {
    const key = `${row.series}\u0000${canonicalLabels(row.labels)}`;
    const known = sum.get(key);
    if (known) known.value += row.value;
    else sum.set(key, { ...row });
  }
  return [...sum.values()];
}

function counterFamily(def: SeriesDef, rows: SinkRow[]): Family {
  return { def, samples: rows.filter((r) => r.series === def.name).map((r) => ({ labels: r.labels, value: r.value })) };
}

function histogramFamily(def: SeriesDef & { buckets: readonly number[] }, rows: SinkRow[], relabel: (l: Labels) => Labels = (l) => l): Family {
  const parts = histogramParts(def.name);
  const byLabels = new Map<string, HistogramSample>();
  const of = (stored: Labels) => {
    const labels = relabel(stored);
    const key = canonicalLabels(labels);
    let h = byLabels.get(key);
    if (!h) byLabels.set(key, (h = { labels, buckets: new Array(def.buckets.length + 1).fill(0), sum: 0, count: 0 }));
    return h;
  };
  for (const r of rows) {
    if (!r.series.startsWith(`${def.name}:`)) continue;
    const h = of(r.labels);
    // Added, not set: two stored label sets may show as one (a renamed cluster's id and name).
    if (r.series === parts.sum) h.sum += r.value;
    else if (r.series === parts.count) h.count += r.value;
    else {
      const i = Number(r.series.slice(`${def.name}:b`.length));
      if (Number.isInteger(i) && i >= 0 && i <= def.buckets.length) h.buckets[i]! += r.value;
    }
  }
  return { def, histograms: [...byLabels.values()] };
}

/** Sink rows stored under a cluster's id (they outlive renames) are shown with its name; a deleted cluster keeps its id. */
async function clusterNames(db: Db): Promise<Map<string, string>> {
  const rows = (await db.execute<{ id: string; name: string }>(sql`select id, name from clusters`)).rows;
  return new Map(rows.map((r) => [r.id, r.name]));
}

const byClusterName = (names: Map<string, string>) => ({ cluster_id: id, ...rest }: Labels): Labels =>
  ({ ...rest, cluster: (id && names.get(id)) || id || "" });

/**
 * Each live cluster's link: connection, outbox depth, the bridge's version. Asked at most
 * 32 at a time and only until LINK_DEADLINE_MS (core/fleet/linkStatuses.ts): with thousands of clusters (edge
 * hosts) one scrape must not wake thousands of objects at once or answer after Prometheus gave up
 * (clean-clone CI saw GET /metrics take > 57 s with the suite's ~1,000 clusters on a loaded machine).
 * A link not read in time is shown from its row (`status`), without outbox or version, and counted
 * in redforge_cluster_links_unread.
 */
const LINK_DEADLINE_MS = 4_000;

async function readLinks(env: Env, db: Db): Promise<Family[]> {
  const rows = (await db.execute<{ id: string; name: string; driver: string; status: string }>(sql`select id, name, driver, status from clusters where deleted_at is null`)).rows;
  const statuses = await linkStatuses(env, rows, LINK_DEADLINE_MS);
  const links = rows.map((c, i) => ({ c, s: statuses[i] }));
  return [
    { def: SERIES.clusterConnected, samples: links.map(({ c, s }) => ({ labels: { cluster: c.name, driver: c.driver }, value: (s ? s.connected : c.status === "connected") ? 1 : 0 })) },
    { def: SERIES.clusterOpenCommands, samples: links.flatMap(({ c, s }) => (s ? [{ labels: { cluster: c.name }, value: s.openCommands }] : [])) },
    { def: SERIES.bridgeInfo, samples: links.flatMap(({ c, s }) => (s?.lastHello ? [{ labels: { cluster: c.name, version: s.lastHello.bridgeVersion }, value: 1 }] : [])) },
    { def: SERIES.clusterLinksUnread, samples: [{ labels: {}, value: links.filter(({ s }) => !s).length }] },
  ];
}

interface FleetRows {
  instances: Array<{ status: string; cluster: string; team: string; n: number }>;
  health: Array<{
    instance: string; cluster: string; ready: boolean; rss_bytes: string | null; heap_used_bytes: string | null;
    cpu_seconds: number | null; messages_in: string | null; messages_out: string | null; message_errors: string | null;
    flow_messages: Array<{ flowId: string; in: number; out: number; errors: number }> | null; tab_names: Record<string, string> | null;
  }>;
  names: Map<string, string>;
  clusters: Array<{ status: string; driver: string; n: number }>;
  deployments: Array<{ status: string; error_code: string | null; n: number }>;
}

async function readFleet(db: Db): Promise<FleetRows> {
  const [instances, health, clusters, deployments, names] = await Promise.all([
    db.execute<FleetRows["instances"][number]>(sql`
      select i.status, c.name as cluster, i.team, count(*)::int as n
      from instances i join clusters c on c.id = i.cluster_id
      where i.deleted_at is null group by 1, 2, 3`),
    // The latest health row of each live instance; label by name (what a person reads), not id.
    db.execute<FleetRows["health"][number]>(sql`
      select distinct on (h.instance_id) i.name as instance, c.name as cluster, h.ready, h.rss_bytes, h.heap_used_bytes,
        h.cpu_seconds, h.messages_in, h.messages_out, h.message_errors, h.flow_messages,
        -- The tabs' labels, for flow_name: only when there are flow counters to name.
        case when h.flow_messages is null or jsonb_typeof(i.flows) <> 'array' then null else (select jsonb_object_agg(t->>'id', t->>'label') from jsonb_array_elements(i.flows) t
          where t->>'type' = 'tab' and t ? 'id') end as tab_names
      from instance_health h join instances i on i.id = h.instance_id and i.deleted_at is null
      join clusters c on c.id = i.cluster_id
      order by h.instance_id, h.checked_at desc`),
    db.execute<FleetRows["clusters"][number]>(sql`select status, driver, count(*)::int as n from clusters where deleted_at is null group by 1, 2`),
    db.execute<FleetRows["deployments"][number]>(sql`select status, error_code, count(*)::int as n from deployments group by 1, 2`),
    clusterNames(db),
  ]);
  return { instances: instances.rows, health: health.rows, clusters: clusters.rows, deployments: deployments.rows, names };
}

function fleetFamilies(f: FleetRows): Family[] {
  const gauge = (def: SeriesDef, samples: Sample[]): Family => ({ def, samples });
  const perInstance = (value: (h: FleetRows["health"][number]) => number | null, extra: Labels = {}) =>
    f.health.flatMap((h) => { const v = value(h); return v === null ? [] : [{ labels: { instance: h.instance, cluster: h.cluster, ...extra }, value: v }]; });
  const n = (v: string | number | null) => (v === null ? null : Number(v));
  const byStatus = new Map<string, number>();
  const byReason = new Map<string, number>();
  for (const d of f.deployments) {
    byStatus.set(d.status, (byStatus.get(d.status) ?? 0) + d.n);
    if ((d.status === "rolled_back" || d.status === "failed") && d.error_code) byReason.set(d.error_code, (byReason.get(d.error_code) ?? 0) + d.n);
  }
  return [
    gauge(SERIES.instances, f.instances.map((r) => ({ labels: { status: r.status, cluster: r.cluster, team: r.team }, value: r.n }))),
    gauge(SERIES.instanceReady, perInstance((h) => (h.ready ? 1 : 0))),
    gauge(SERIES.instanceRss, perInstance((h) => (h.rss_bytes === null ? null : Number(h.rss_bytes)))),
    gauge(SERIES.instanceHeap, perInstance((h) => (h.heap_used_bytes === null ? null : Number(h.heap_used_bytes)))),
    // Counters as the instance last reported them: the process's own totals (Prometheus's rate() handles its restarts).
    gauge(SERIES.instanceCpu, perInstance((h) => n(h.cpu_seconds))),
    gauge(SERIES.instanceMessages, [...perInstance((h) => n(h.messages_in), { direction: "in" }), ...perInstance((h) => n(h.messages_out), { direction: "out" })]),
    gauge(SERIES.instanceMessageErrors, perInstance((h) => n(h.message_errors))),
    gauge(SERIES.flowMessages, perFlow(f, (fl) => [[fl.in, { direction: "in" }], [fl.out, { direction: "out" }]])),
    gauge(SERIES.flowMessageErrors, perFlow(f, (fl) => [[fl.errors, {}]])),
    gauge(SERIES.clusters, f.clusters.map((r) => ({ labels: { status: r.status, driver: r.driver }, value: r.n }))),
    gauge(SERIES.deployments, [...byStatus].map(([status, n]) => ({ labels: { status }, value: n }))),
    gauge(SERIES.rollbacks, [...byReason].map(([reason, n]) => ({ labels: { reason }, value: n }))),
  ];
}

/** Per-instance flows shown per scrape: bounds the series to 10 × instances × 3 whatever a bridge reports (it may report 100). */
export const FLOWS_PER_INSTANCE = 10;

function perFlow(f: FleetRows, values: (fl: { in: number; out: number; errors: number }) => Array<[number, Labels]>): Sample[] {
  return f.health.flatMap((h) => {
    const flows = Array.isArray(h.flow_messages) ? [...h.flow_messages] : [];
    // The busiest first, as the gate orders them; a bridge's order is not trusted.
    flows.sort((a, b) => b.in + b.out - (a.in + a.out));
    return flows.slice(0, FLOWS_PER_INSTANCE).flatMap((fl) => {
      const base = { instance: h.instance, cluster: h.cluster, flow: fl.flowId, flow_name: h.tab_names?.[fl.flowId] ?? fl.flowId };
      return values(fl).filter(([v]) => Number.isFinite(v)).map(([value, extra]) => ({ labels: { ...base, ...extra }, value }));
    });
  });
}

export async function collect(env: Env, db: Db): Promise<Family[]> {
  const [sink, fleet, links] = await Promise.allSettled([readSink(env), readFleet(db), readLinks(env, db)]);
  for (const failed of [sink, fleet, links]) {
    if (failed.status === "rejected") console.error(JSON.stringify({ msg: "metrics source unreadable", error: String(failed.reason) }));
  }
  const rows = sink.status === "fulfilled" ? sink.value : [];
  return [
    { def: SERIES.scrapeErrors, samples: [
      { labels: { source: "database" }, value: fleet.status === "fulfilled" ? 1 : 0 },
      { labels: { source: "sink" }, value: sink.status === "fulfilled" ? 1 : 0 },
      { labels: { source: "cluster_links" }, value: links.status === "fulfilled" ? 1 : 0 },
    ] },
    ...(fleet.status === "fulfilled" ? fleetFamilies(fleet.value) : []),
    ...(links.status === "fulfilled" ? links.value : []),
    histogramFamily(SERIES.httpRequestDuration, rows),
    histogramFamily(SERIES.deploymentPhaseDuration, rows),
    histogramFamily(SERIES.commandRoundTrip, rows, byClusterName(fleet.status === "fulfilled" ? fleet.value.names : new Map())),
    counterFamily(SERIES.webhookVerificationFailures, rows),
    counterFamily(SERIES.aiTokens, rows),
    counterFamily(SERIES.aiCost, rows),
    counterFamily(SERIES.qstashDeliveries, rows),
  ];
}
