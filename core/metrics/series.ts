/**
 * Every series GET /metrics exposes, declared once: name (Prometheus naming
 * conventions, unit in the name), type, help, and its labels, whose
 * cardinality is bounded as documented in docs/observability.md. Counters that
 * must survive isolates and restarts live in the MetricsSink Durable Object;
 * gauges are read from Postgres at scrape time.
 */
export type MetricType = "counter" | "gauge" | "histogram";

export interface SeriesDef {
  name: string;
  type: MetricType;
  help: string;
  labels: readonly string[];
  /** Histogram upper bounds (seconds), ascending; +Inf is implied. */
  buckets?: readonly number[];
}

/** API latency buckets: most answers are a few ms; a cold Neon connect is ~100 ms; nothing sane passes 10 s. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** Deployment phases take from milliseconds (AUDIT) to minutes (DEPLOY pulls an image, CLEANUP waits out a window). */
export const PHASE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800] as const;
/** A command's first send to the bridge's receipt: a few ms on an idle link, seconds on a loaded bridge. */
export const ROUND_TRIP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export const SERIES = {
  httpRequestDuration: {
    name: "redforge_http_request_duration_seconds", type: "histogram", labels: ["route", "method", "status_class"], buckets: LATENCY_BUCKETS,
    help: "API request duration by route template (not the raw path), method and status class (2xx..5xx).",
  },
  webhookVerificationFailures: {
    name: "redforge_webhook_verification_failures_total", type: "counter", labels: ["reason"],
    help: "Cluster webhooks refused before their body was read, by reason (bad signature, stale timestamp, replayed id, unknown cluster).",
  },
  aiTokens: {
    name: "redforge_ai_tokens_total", type: "counter", labels: ["model", "team"],
    help: "Tokens of AI decisions accepted from the fleet, by model and the instance's team.",
  },
  aiCost: {
    name: "redforge_ai_cost_usd_total", type: "counter", labels: ["model", "team"],
    help: "Cost in USD of AI decisions accepted from the fleet (the model price table at ingest), by model and team.",
  },
  qstashDeliveries: {
    name: "redforge_qstash_deliveries_total", type: "counter", labels: ["job", "outcome"],
    help: "Signed QStash job deliveries by job (health-sweep, compliance-export, retention-purge) and outcome (ok, refused = 4xx, failed = 5xx, retried by QStash).",
  },
  instances: {
    name: "redforge_instances", type: "gauge", labels: ["status", "cluster", "team"],
    help: "Instances (not deleted) by status, cluster name and team.",
  },
  instanceReady: {
    name: "redforge_instance_ready", type: "gauge", labels: ["instance", "cluster"],
    help: "1 when the instance's last health report said ready, else 0.",
  },
  instanceRss: {
    name: "redforge_instance_resident_memory_bytes", type: "gauge", labels: ["instance", "cluster"],
    help: "Resident set size of the instance's Node-RED at its last health report.",
  },
  instanceHeap: {
    name: "redforge_instance_heap_used_bytes", type: "gauge", labels: ["instance", "cluster"],
    help: "V8 heap used by the instance's Node-RED at its last health report.",
  },
  instanceCpu: {
    name: "redforge_instance_cpu_seconds_total", type: "counter", labels: ["instance", "cluster"],
    help: "CPU seconds (user + system) of the instance's Node-RED process at its last health report; resets when the process restarts (a deployment's green is a new process).",
  },
  instanceMessages: {
    name: "redforge_instance_messages_total", type: "counter", labels: ["instance", "cluster", "direction"],
    help: "Messages through the instance's redforge-gate nodes (direction in) and redforge-exit nodes (out) since its Node-RED process started, at the last health report.",
  },
  instanceMessageErrors: {
    name: "redforge_instance_message_errors_total", type: "counter", labels: ["instance", "cluster"],
    help: "Messages the instance's flows ended in error since its Node-RED process started: through an exit with msg.error, refused by a full hold, or dropped after the in-flight TTL.",
  },
  flowMessages: {
    name: "redforge_flow_messages_total", type: "counter", labels: ["instance", "cluster", "flow", "flow_name", "direction"],
    help: "Messages through one flow (Node-RED tab) of an instance, gate in and exit out, since its Node-RED process started; the instance's 10 busiest flows at its last health report.",
  },
  flowMessageErrors: {
    name: "redforge_flow_message_errors_total", type: "counter", labels: ["instance", "cluster", "flow", "flow_name"],
    help: "Messages one flow of an instance ended in error (exit with msg.error, refused by a full hold, dropped after the TTL); the same 10 flows as redforge_flow_messages_total.",
  },
  deploymentPhaseDuration: {
    name: "redforge_deployment_phase_duration_seconds", type: "histogram", labels: ["phase", "outcome"], buckets: PHASE_BUCKETS,
    help: "Time a deployment spent in a phase (DRAIN, DEPLOY, VERIFY, RESUME, AUDIT, CLEANUP, ROLLING_BACK), observed when the phase completed or failed.",
  },
  commandRoundTrip: {
    name: "redforge_cluster_command_round_trip_seconds", type: "histogram", labels: ["cluster"], buckets: ROUND_TRIP_BUCKETS,
    help: "From a command's first send on the cluster's link to the bridge's receipt, by cluster.",
  },
  clusters: {
    name: "redforge_clusters", type: "gauge", labels: ["status", "driver"],
    help: "Clusters (not deleted) by the status their bridge last reported and driver.",
  },
  clusterConnected: {
    name: "redforge_cluster_connected", type: "gauge", labels: ["cluster", "driver"],
    help: "1 while the cluster's bridge holds its command link open (ClusterLink), else 0.",
  },
  clusterOpenCommands: {
    name: "redforge_cluster_open_commands", type: "gauge", labels: ["cluster"],
    help: "Commands in the cluster's outbox not yet answered (sent, received or waiting).",
  },
  bridgeInfo: {
    name: "redforge_bridge_info", type: "gauge", labels: ["cluster", "version"],
    help: "Always 1: the bridge version the cluster's bridge last said hello with.",
  },
  clusterLinksUnread: {
    name: "redforge_cluster_links_unread", type: "gauge", labels: [],
    help: "Live clusters whose link did not answer within this scrape's bound (their redforge_cluster_connected comes from the database; no outbox or version series this scrape).",
  },
  deployments: {
    name: "redforge_deployments_total", type: "counter", labels: ["status"],
    help: "Deployments by current status (completed, rolled_back, failed, in_progress, paused, pending).",
  },
  rollbacks: {
    name: "redforge_deployment_rollbacks_total", type: "counter", labels: ["reason"],
    help: "Deployments that ended rolled back or failed, by failure code (protocol/deployments.ts FAILURE_CODES).",
  },
  scrapeErrors: {
    name: "redforge_metrics_source_up", type: "gauge", labels: ["source"],
    help: "1 when the scrape could read the source (database, sink), 0 when it could not (its series are missing from this scrape).",
  },
} as const satisfies Record<string, SeriesDef>;

export type SeriesKey = keyof typeof SERIES;

/** One text per label set, whatever order the caller built it in: the key counters are stored and summed under. */
export function canonicalLabels(labels: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))));
}
