/**
 * Writes docs/observability/grafana/*.json: Grafana 10+ dashboards over the
 * series of docs/observability.md, the data source a variable (`datasource`),
 * so they import into any Grafana whatever its Prometheus is called. Panels
 * are declared here compactly and laid out on the 24-column grid in order;
 * `npx tsx scripts/grafana-dashboards.ts` regenerates the files, and
 * test/integration/prometheus-scrape.test.ts runs every panel's PromQL against
 * a real Prometheus.
 */
import fs from "node:fs/promises";
import path from "node:path";

type PanelType = "stat" | "timeseries" | "table" | "bargauge";

interface Panel {
  title: string;
  type: PanelType;
  /** [expr, legend] per query. */
  targets: Array<[string, string?]>;
  unit?: string;
  /** Width in grid columns (24 per row); height defaults by type. */
  w?: number;
  h?: number;
  description?: string;
  /** Table panels: instant queries. */
  instant?: boolean;
}

interface Dashboard {
  uid: string;
  title: string;
  description: string;
  variables: Array<"cluster" | "team">;
  panels: Panel[];
}

const DS = { type: "prometheus", uid: "${datasource}" };
const RATE = "$__rate_interval";

const VARIABLES = {
  cluster: { query: "label_values(redforge_cluster_connected, cluster)", label: "Cluster" },
  team: { query: "label_values(redforge_instances, team)", label: "Team" },
} as const;

const C = 'cluster=~"$cluster"';
const T = 'team=~"$team"';

const DASHBOARDS: Dashboard[] = [
  {
    uid: "redforge-fleet",
    title: "RedForge / Fleet overview",
    description: "Instances, clusters and bridges, and what each instance's flows do (CPU, messages and errors as its gate and exit nodes count them).",
    variables: ["cluster", "team"],
    panels: [
      { title: "Instances", type: "stat", w: 4, targets: [[`sum(redforge_instances{${C}, ${T}})`]] },
      { title: "Running", type: "stat", w: 4, targets: [[`sum(redforge_instances{status="running", ${C}, ${T}}) or vector(0)`]] },
      { title: "Failed", type: "stat", w: 4, targets: [[`sum(redforge_instances{status="failed", ${C}, ${T}}) or vector(0)`]] },
      { title: "Not ready", type: "stat", w: 4, targets: [[`count(redforge_instance_ready{${C}} == 0) or vector(0)`]], description: "Instances whose last health report said not ready." },
      { title: "Clusters connected", type: "stat", w: 4, targets: [[`sum(redforge_cluster_connected{${C}})`]] },
      { title: "Clusters disconnected", type: "stat", w: 4, targets: [[`count(redforge_cluster_connected{${C}} == 0) or vector(0)`]] },
      { title: "Instances by status", type: "timeseries", w: 12, targets: [[`sum by (status) (redforge_instances{${C}, ${T}})`, "{{status}}"]] },
      { title: "Instances by cluster and team", type: "timeseries", w: 12, targets: [[`sum by (cluster, team) (redforge_instances{${C}, ${T}})`, "{{cluster}} / {{team}}"]] },
      { title: "CPU per instance", type: "timeseries", unit: "percentunit", w: 12, targets: [[`rate(redforge_instance_cpu_seconds_total{${C}}[${RATE}])`, "{{instance}}"]], description: "CPU seconds per second of each instance's Node-RED process (1 = one core)." },
      { title: "Resident memory per instance", type: "timeseries", unit: "bytes", w: 12, targets: [[`redforge_instance_resident_memory_bytes{${C}}`, "{{instance}}"], [`redforge_instance_heap_used_bytes{${C}}`, "{{instance}} heap"]] },
      { title: "Messages in per second", type: "timeseries", unit: "reqps", w: 8, targets: [[`sum by (instance) (rate(redforge_instance_messages_total{direction="in", ${C}}[${RATE}]))`, "{{instance}}"]] },
      { title: "Messages out per second", type: "timeseries", unit: "reqps", w: 8, targets: [[`sum by (instance) (rate(redforge_instance_messages_total{direction="out", ${C}}[${RATE}]))`, "{{instance}}"]] },
      { title: "Message errors per second", type: "timeseries", unit: "reqps", w: 8, targets: [[`sum by (instance) (rate(redforge_instance_message_errors_total{${C}}[${RATE}]))`, "{{instance}}"]], description: "Messages that left through an exit carrying msg.error, HTTP work refused by a full hold, and in-flight messages dropped after their TTL." },
      { title: "Top 10 instances by message rate", type: "bargauge", unit: "reqps", w: 12, instant: true, targets: [[`topk(10, sum by (instance, cluster) (rate(redforge_instance_messages_total{direction="in", ${C}}[5m])))`, "{{instance}} ({{cluster}})"]] },
      { title: "Error ratio by instance", type: "bargauge", unit: "percentunit", w: 12, instant: true, targets: [[`topk(10, sum by (instance) (rate(redforge_instance_message_errors_total{${C}}[5m])) / clamp_min(sum by (instance) (rate(redforge_instance_messages_total{direction="in", ${C}}[5m])), 1e-9))`, "{{instance}}"]] },
      { title: "Command outbox depth", type: "timeseries", w: 8, targets: [[`redforge_cluster_open_commands{${C}}`, "{{cluster}}"]] },
      { title: "Command round trip p95", type: "timeseries", unit: "s", w: 8, targets: [[`histogram_quantile(0.95, sum by (cluster, le) (rate(redforge_cluster_command_round_trip_seconds_bucket{${C}}[${RATE}])))`, "{{cluster}}"]], description: "From a command's first send on the cluster's link to the bridge's receipt." },
      { title: "Bridge versions", type: "table", w: 8, instant: true, targets: [[`max by (cluster, version) (redforge_bridge_info{${C}})`]] },
    ],
  },
  {
    uid: "redforge-deployments",
    title: "RedForge / Deployments",
    description: "Blue-green deployments: outcomes, rollbacks by reason, and how long each phase takes.",
    variables: [],
    panels: [
      { title: "Completed", type: "stat", w: 6, targets: [['sum(redforge_deployments_total{status="completed"}) or vector(0)']] },
      { title: "Rolled back", type: "stat", w: 6, targets: [['sum(redforge_deployments_total{status="rolled_back"}) or vector(0)']] },
      { title: "Failed", type: "stat", w: 6, targets: [['sum(redforge_deployments_total{status="failed"}) or vector(0)']] },
      { title: "In progress or paused", type: "stat", w: 6, targets: [['sum(redforge_deployments_total{status=~"in_progress|paused|pending"}) or vector(0)']] },
      { title: "Deployments finished per hour, by outcome", type: "timeseries", w: 12, targets: [['sum by (status) (increase(redforge_deployments_total{status=~"completed|rolled_back|failed"}[1h]))', "{{status}}"]] },
      { title: "Rollbacks and failures by reason", type: "bargauge", w: 12, instant: true, targets: [["sort_desc(sum by (reason) (redforge_deployment_rollbacks_total))", "{{reason}}"]] },
      { title: "Phase duration p50", type: "timeseries", unit: "s", w: 12, targets: [[`histogram_quantile(0.5, sum by (phase, le) (rate(redforge_deployment_phase_duration_seconds_bucket{outcome="completed"}[${RATE}])))`, "{{phase}}"]] },
      { title: "Phase duration p95", type: "timeseries", unit: "s", w: 12, targets: [[`histogram_quantile(0.95, sum by (phase, le) (rate(redforge_deployment_phase_duration_seconds_bucket{outcome="completed"}[${RATE}])))`, "{{phase}}"]] },
      { title: "Mean phase duration (whole range)", type: "bargauge", unit: "s", w: 12, instant: true, targets: [['sum by (phase) (redforge_deployment_phase_duration_seconds_sum) / clamp_min(sum by (phase) (redforge_deployment_phase_duration_seconds_count), 1)', "{{phase}}"]] },
      { title: "Phases that failed per hour", type: "timeseries", w: 12, targets: [['sum by (phase) (increase(redforge_deployment_phase_duration_seconds_count{outcome="failed"}[1h]))', "{{phase}}"]] },
    ],
  },
  {
    uid: "redforge-ai-cost",
    title: "RedForge / AI usage and cost",
    description: "Tokens and cost of the AI decisions the fleet's flows report, by model and team (the price table at ingest).",
    variables: ["team"],
    panels: [
      { title: "Cost today (USD)", type: "stat", unit: "currencyUSD", w: 6, targets: [[`sum(increase(redforge_ai_cost_usd_total{${T}}[1d]))`]] },
      { title: "Tokens today", type: "stat", w: 6, targets: [[`sum(increase(redforge_ai_tokens_total{${T}}[1d]))`]] },
      { title: "Cost per hour by team", type: "timeseries", unit: "currencyUSD", w: 12, targets: [[`sum by (team) (increase(redforge_ai_cost_usd_total{${T}}[1h]))`, "{{team}}"]] },
      { title: "Tokens per second by model", type: "timeseries", w: 12, targets: [[`sum by (model) (rate(redforge_ai_tokens_total{${T}}[${RATE}]))`, "{{model}}"]] },
      { title: "Cost per second by model", type: "timeseries", unit: "currencyUSD", w: 12, targets: [[`sum by (model) (rate(redforge_ai_cost_usd_total{${T}}[${RATE}]))`, "{{model}}"]] },
      { title: "Cost by model and team (whole range)", type: "table", w: 12, instant: true, targets: [[`sort_desc(sum by (model, team) (redforge_ai_cost_usd_total{${T}}))`]] },
      { title: "Cost per 1k tokens by model", type: "bargauge", unit: "currencyUSD", w: 12, instant: true, targets: [[`sum by (model) (redforge_ai_cost_usd_total{${T}}) / clamp_min(sum by (model) (redforge_ai_tokens_total{${T}}), 1) * 1000`, "{{model}}"]] },
    ],
  },
  {
    uid: "redforge-agents",
    title: "RedForge / Agent performance",
    description: "What each agent flow (Node-RED tab) does: messages in and out, errors, work piling up, and what its model calls and CPU cost per message. Per-flow series cover each instance's 10 busiest flows.",
    variables: ["cluster"],
    panels: [
      { title: "Flows reporting", type: "stat", w: 6, targets: [[`count(redforge_flow_messages_total{direction="in", ${C}}) or vector(0)`]] },
      { title: "Messages in per second", type: "stat", unit: "reqps", w: 6, targets: [[`sum(rate(redforge_flow_messages_total{direction="in", ${C}}[${RATE}])) or vector(0)`]] },
      { title: "Error ratio", type: "stat", unit: "percentunit", w: 6, targets: [[`sum(rate(redforge_flow_message_errors_total{${C}}[${RATE}])) / clamp_min(sum(rate(redforge_flow_messages_total{direction="in", ${C}}[${RATE}])), 1e-9)`]] },
      { title: "AI cost per 1,000 messages (1 h)", type: "stat", unit: "currencyUSD", w: 6, targets: [[`sum(increase(redforge_ai_cost_usd_total[1h])) / clamp_min(sum(increase(redforge_flow_messages_total{direction="in"}[1h])), 1) * 1000`]], description: "The fleet's model cost over the messages its flows took in (all teams)." },
      { title: "Messages in per second by flow", type: "timeseries", unit: "reqps", w: 12, targets: [[`sum by (instance, flow_name) (rate(redforge_flow_messages_total{direction="in", ${C}}[${RATE}]))`, "{{instance}} / {{flow_name}}"]] },
      { title: "Messages out per second by flow", type: "timeseries", unit: "reqps", w: 12, targets: [[`sum by (instance, flow_name) (rate(redforge_flow_messages_total{direction="out", ${C}}[${RATE}]))`, "{{instance}} / {{flow_name}}"]] },
      { title: "Errors per second by flow", type: "timeseries", unit: "reqps", w: 12, targets: [[`sum by (instance, flow_name) (rate(redforge_flow_message_errors_total{${C}}[${RATE}]))`, "{{instance}} / {{flow_name}}"]] },
      { title: "In minus out per second by flow", type: "timeseries", unit: "reqps", w: 12, targets: [[`sum by (instance, flow_name) (rate(redforge_flow_messages_total{direction="in", ${C}}[${RATE}])) - sum by (instance, flow_name) (rate(redforge_flow_messages_total{direction="out", ${C}}[${RATE}]))`, "{{instance}} / {{flow_name}}"]], description: "Above zero for long: the flow takes in more than it answers (slow model, work piling up, or answers lost)." },
      { title: "Error ratio by flow (top 10, 5 m)", type: "bargauge", unit: "percentunit", w: 12, instant: true, targets: [[`topk(10, sum by (instance, flow_name) (rate(redforge_flow_message_errors_total{${C}}[5m])) / clamp_min(sum by (instance, flow_name) (rate(redforge_flow_messages_total{direction="in", ${C}}[5m])), 1e-9))`, "{{instance}} / {{flow_name}}"]] },
      { title: "Busiest flows (messages in, 1 h)", type: "table", w: 12, instant: true, targets: [[`topk(20, sum by (instance, cluster, flow_name) (increase(redforge_flow_messages_total{direction="in", ${C}}[1h])))`]] },
      { title: "CPU seconds per message by instance", type: "timeseries", unit: "s", w: 12, targets: [[`sum by (instance) (rate(redforge_instance_cpu_seconds_total{${C}}[${RATE}])) / clamp_min(sum by (instance) (rate(redforge_instance_messages_total{direction="in", ${C}}[${RATE}])), 1e-9)`, "{{instance}}"]] },
      { title: "Model tokens per second by model", type: "timeseries", w: 12, targets: [[`sum by (model) (rate(redforge_ai_tokens_total[${RATE}]))`, "{{model}}"]] },
    ],
  },
  {
    uid: "redforge-api",
    title: "RedForge / Control plane and API",
    description: "The control plane's own health: API latency and errors by route, webhook verification failures, QStash jobs, and whether each metrics source answered.",
    variables: [],
    panels: [
      { title: "Requests per second", type: "stat", unit: "reqps", w: 6, targets: [[`sum(rate(redforge_http_request_duration_seconds_count[${RATE}]))`]] },
      { title: "5xx ratio", type: "stat", unit: "percentunit", w: 6, targets: [[`(sum(rate(redforge_http_request_duration_seconds_count{status_class="5xx"}[${RATE}])) or vector(0)) / clamp_min(sum(rate(redforge_http_request_duration_seconds_count[${RATE}])), 1e-9)`]] },
      { title: "p95 latency", type: "stat", unit: "s", w: 6, targets: [[`histogram_quantile(0.95, sum by (le) (rate(redforge_http_request_duration_seconds_bucket[${RATE}])))`]] },
      { title: "Metrics sources down", type: "stat", w: 6, targets: [["count(redforge_metrics_source_up == 0) or vector(0)"]] },
      { title: "Requests per second by status class", type: "timeseries", unit: "reqps", w: 12, targets: [[`sum by (status_class) (rate(redforge_http_request_duration_seconds_count[${RATE}]))`, "{{status_class}}"]] },
      { title: "p95 latency by route", type: "timeseries", unit: "s", w: 12, targets: [[`histogram_quantile(0.95, sum by (route, le) (rate(redforge_http_request_duration_seconds_bucket[${RATE}])))`, "{{route}}"]] },
      { title: "Slowest routes (p99, 1 h)", type: "bargauge", unit: "s", w: 12, instant: true, targets: [["topk(10, histogram_quantile(0.99, sum by (route, le) (rate(redforge_http_request_duration_seconds_bucket[1h]))))", "{{route}}"]] },
      { title: "Busiest routes (1 h)", type: "bargauge", w: 12, instant: true, targets: [["topk(10, sum by (route, method) (increase(redforge_http_request_duration_seconds_count[1h])))", "{{method}} {{route}}"]] },
      { title: "Webhook verification failures per second", type: "timeseries", unit: "reqps", w: 12, targets: [[`sum by (reason) (rate(redforge_webhook_verification_failures_total[${RATE}]))`, "{{reason}}"]] },
      { title: "QStash deliveries per second", type: "timeseries", unit: "reqps", w: 12, targets: [[`sum by (job, outcome) (rate(redforge_qstash_deliveries_total[${RATE}]))`, "{{job}} {{outcome}}"]] },
      { title: "Metrics sources", type: "timeseries", w: 12, targets: [["redforge_metrics_source_up", "{{source}}"]] },
      { title: "Scrape duration", type: "timeseries", unit: "s", w: 12, targets: [['scrape_duration_seconds{job=~"redforge.*"}', "{{instance}}"]], description: "Prometheus's own measure of GET /metrics (bench/observability has the figures per fleet size)." },
    ],
  },
];

function variable(name: "cluster" | "team") {
  const v = VARIABLES[name];
  return {
    name, label: v.label, type: "query", datasource: DS, definition: v.query,
    query: { query: v.query, refId: `${name}-values` },
    includeAll: true, multi: true, allValue: ".*", current: { selected: true, text: ["All"], value: ["$__all"] },
    refresh: 2, sort: 1, hide: 0,
  };
}

function panel(p: Panel, id: number, x: number, y: number, w: number, h: number) {
  return {
    id, type: p.type, title: p.title, ...(p.description ? { description: p.description } : {}),
    datasource: DS, gridPos: { h, w, x, y },
    targets: p.targets.map(([expr, legend], i) => ({
      refId: String.fromCharCode(65 + i), datasource: DS, expr, legendFormat: legend ?? "__auto",
      ...(p.instant || p.type === "table" ? { instant: true, range: false, format: p.type === "table" ? "table" : "time_series" } : { range: true }),
    })),
    fieldConfig: { defaults: { unit: p.unit ?? "short" }, overrides: [] },
    options: p.type === "timeseries"
      ? { legend: { displayMode: "list", placement: "bottom", showLegend: true }, tooltip: { mode: "multi", sort: "desc" } }
      : p.type === "stat"
        ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area", textMode: "auto" }
        : p.type === "bargauge"
          ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, orientation: "horizontal", displayMode: "gradient" }
          : { showHeader: true },
    ...(p.type === "table" ? { transformations: [{ id: "organize", options: { excludeByName: { Time: true } } }] } : {}),
  };
}

export function render(d: Dashboard) {
  let x = 0, y = 0, rowH = 0, id = 1;
  const panels = d.panels.map((p) => {
    const w = p.w ?? 12;
    const h = p.h ?? (p.type === "stat" ? 4 : 8);
    if (x + w > 24) { x = 0; y += rowH; rowH = 0; }
    const out = panel(p, id++, x, y, w, h);
    x += w;
    rowH = Math.max(rowH, h);
    return out;
  });
  return {
    uid: d.uid, title: d.title, description: d.description, tags: ["redforge"], editable: true, graphTooltip: 1,
    schemaVersion: 39, version: 1, refresh: "30s", time: { from: "now-6h", to: "now" }, timezone: "browser",
    annotations: { list: [] }, links: [],
    templating: {
      list: [
        { name: "datasource", label: "Data source", type: "datasource", query: "prometheus", current: {}, hide: 0, refresh: 1, regex: "" },
        ...d.variables.map(variable),
      ],
    },
    panels,
  };
}

const fileName = (uid: string) => `${uid.replace(/^redforge-/, "")}.json`;

async function main() {
  const dir = path.resolve(import.meta.dirname, "../docs/observability/grafana");
  await fs.mkdir(dir, { recursive: true });
  for (const d of DASHBOARDS) {
    await fs.writeFile(path.join(dir, fileName(d.uid)), `${JSON.stringify(render(d), null, 2)}\n`);
    console.log(`${fileName(d.uid)}: ${d.panels.length} panels`);
  }
}

await main();
