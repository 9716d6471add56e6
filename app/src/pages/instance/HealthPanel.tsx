/**
 * RSS, heap and readiness over time, from the health sweep's history
 * (GET /api/metrics/instances/:id: one point a minute per instance, kept per the
 * instance_health retention). Re-read whenever `tick` moves.
 */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { can } from "../../api/me.ts";
import { healthColumns, readyShare } from "../../instances/health.ts";
import { Chart } from "../../ui/Chart.tsx";
import { formatBytes, formatInstant } from "../../ui/format.ts";

const WINDOWS = [{ label: "last hour", points: 60 }, { label: "last 6 hours", points: 360 }, { label: "last 16 hours", points: 1000 }] as const;

export function HealthPanel(props: { instanceId: string; tick: number }) {
  const [points, setPoints] = createSignal<number>(60);
  const [metrics] = createResource(() => (can("metrics", "read") ? { id: props.instanceId, limit: points(), tick: props.tick } : false), async ({ id, limit }) => {
    const { data, error, response } = await api.GET("/api/metrics/instances/{id}", { params: { path: { id }, query: { limit } } });
    if (!data) throw new Error(messageOf(error, response));
    return data;
  });
  const cols = () => healthColumns(metrics.latest?.series ?? []);
  const summary = () => {
    const m = metrics.latest;
    if (!m || m.series.length === 0) return "No health reports yet.";
    const share = readyShare(m.series);
    return `${m.series.length} health reports; latest RSS ${formatBytes(m.latest?.rssBytes)}, heap ${formatBytes(m.latest?.heapUsedBytes)}, ready ${Math.round((share ?? 0) * 100)} % of the window.`;
  };

  return (
    <section class="panel" aria-labelledby="health-title" data-testid="health-panel">
      <div class="panel-head">
        <h2 id="health-title">Health</h2>
        <span class="spacer" />
        <select aria-label="Health window" value={points()} onChange={(e) => setPoints(Number(e.currentTarget.value))}>
          <For each={WINDOWS}>{(w) => <option value={w.points}>{w.label}</option>}</For>
        </select>
      </div>
      <Show when={can("metrics", "read")} fallback={<p class="muted">Your role cannot read metrics.</p>}>
        <Show when={!metrics.error} fallback={<p class="error" role="alert">{String((metrics.error as Error)?.message)}</p>}>
          <Show when={metrics.latest?.latest}>{(l) => (
            <div class="summary">
              <span>live <strong>{l().live ? "yes" : "no"}</strong></span>
              <span>ready <strong>{l().ready ? "yes" : "no"}</strong></span>
              <span>RSS <strong>{formatBytes(l().rssBytes)}</strong></span>
              <span>heap <strong>{formatBytes(l().heapUsedBytes)}</strong></span>
              <span>flows <strong>{l().flowsState ?? "—"}</strong></span>
              <Show when={l().missingNodeTypes.length > 0}><span class="drift">missing node types: {l().missingNodeTypes.join(", ")}</span></Show>
              <Show when={l().error}><span class="drift">{l().error}</span></Show>
              <span class="muted">checked {formatInstant(l().checkedAt)}</span>
            </div>
          )}</Show>
          <Show when={cols().x.length > 1} fallback={<p class="muted">{metrics.loading && !metrics.latest ? "Loading…" : "The chart appears after two health sweeps (one a minute, once the instance's bridge reports)."}</p>}>
            <Chart x={cols().x} ys={[cols().rssMiB, cols().heapMiB, cols().ready]} summary={summary()} testId="health-chart"
              series={[
                { label: "RSS (MiB)", color: "--accent", format: (v) => `${v} MiB` },
                { label: "heap (MiB)", color: "--unknown", format: (v) => `${v} MiB` },
                { label: "ready", color: "--ok", scale: "ready", stepped: true, format: (v) => (v >= 1 ? "ready" : "not ready") },
              ]}
              scales={{ ready: { range: [-0.1, 1.1] } }} />
          </Show>
        </Show>
      </Show>
    </section>
  );
}
