/**
 * One rollout, live from /ws/rollouts/:id: status and counts, the plan in
 * words, every wave with each instance's state (its deployment linked, its
 * failure reason), and pause / resume / approve next wave / abort when the API
 * would accept them.
 */
import { A, useParams } from "@solidjs/router";
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { loadAllPages } from "../api/cursorList.ts";
import { can } from "../api/me.ts";
import { useLive } from "../live/useLive.ts";
import {
  applyRolloutEvent, planInWords, ROLLOUT_TONE, rolloutActions, rolloutFailureInWords, waveLabel, type Rollout, type RolloutWave,
} from "../rollouts/rolloutView.ts";
import { ago, LiveBadge, StatusBadge, useConfirm, useNow } from "../ui/bits.tsx";

type Action = "pause" | "resume" | "approve" | "abort";
const PATHS = {
  pause: "/api/rollouts/{id}/pause", resume: "/api/rollouts/{id}/resume", approve: "/api/rollouts/{id}/approve", abort: "/api/rollouts/{id}/abort",
} as const;

export function RolloutDetail() {
  const params = useParams<{ id: string }>();
  const [r, setR] = createSignal<Rollout | null>(null);
  const [error, setError] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);
  const [confirm, ConfirmView] = useConfirm();
  const now = useNow(1000);
  // Instance names for the rows (the view carries ids): the whole fleet once, by its cursors.
  const [names] = createResource(async () => {
    const all = await loadAllPages((cursor) => api.GET("/api/instances", { params: { query: { limit: 200, ...(cursor ? { cursor } : {}) } } }), 5000);
    return new Map(all.items.map((i) => [i.id, i.name]));
  });
  const nameOf = (id: string) => names.latest?.get(id) ?? id.slice(0, 8);

  const load = async () => {
    const { data, error: err, response } = await api.GET("/api/rollouts/{id}", { params: { path: { id: params.id } } });
    if (!data) return setError(messageOf(err, response));
    setR(data);
  };
  void load();
  // The socket's first frame is the whole view; every (re)connect sends it again.
  const live = useLive(`/ws/rollouts/${params.id}`, { onMessage: (m) => setR((cur) => applyRolloutEvent(cur, m)) });

  const operate = async (what: Action): Promise<void> => {
    setBusy(true);
    const { data, error: err, response } = await api.POST(PATHS[what], { params: { path: { id: params.id } } });
    setBusy(false);
    if (!data) { setError(messageOf(err, response)); return; }
    setError(null);
    setR(data);
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1><A href="/rollouts" class="muted">Rollouts</A> / {params.id.slice(0, 8)}</h1>
        <LiveBadge state={live()} />
      </div>
      <Show when={error()}><p class="error" role="alert" data-testid="rollout-error">{error()}</p></Show>
      <Show when={r()} fallback={<Show when={!error()}><p class="muted">Loading…</p></Show>}>
        {(ro) => {
          const acts = () => rolloutActions(ro().status);
          const done = () => ro().summary.completed + ro().summary.failed;
          return (
            <>
              <div class="summary" data-testid="rollout-summary">
                <StatusBadge status={ro().status} tone={ROLLOUT_TONE[ro().status] ?? "unknown"} />
                <progress max={Math.max(1, ro().summary.total)} value={done()} aria-label="instances settled" />
                <span><strong data-testid="rollout-completed">{ro().summary.completed}</strong> done</span>
                <span><strong data-testid="rollout-failed">{ro().summary.failed}</strong> failed</span>
                <span><strong>{ro().summary.pending}</strong> pending</span>
                <span class="muted">of {ro().summary.total}</span>
                <span>selector <code>{ro().selector}</code></span>
                <Show when={ro().nextWaveAt}>{(at) => <span class="muted">next wave in {Math.max(0, Math.round((Date.parse(at()) - now()) / 1000))}s</span>}</Show>
                <span class="spacer" />
                <Show when={can("deployments", "create")}>
                  <Show when={acts().approve}><button type="button" class="primary" disabled={busy()} onClick={() => void operate("approve")} data-testid="rollout-approve">Start next wave</button></Show>
                  <Show when={acts().pause}><button type="button" disabled={busy()} onClick={() => void operate("pause")} data-testid="rollout-pause">Pause</button></Show>
                  <Show when={acts().resume}><button type="button" class="primary" disabled={busy()} onClick={() => void operate("resume")} data-testid="rollout-resume">Resume</button></Show>
                  <Show when={acts().abort}><button type="button" class="danger-quiet" disabled={busy()} data-testid="rollout-abort" onClick={() => confirm({
                    title: "Abort this rollout?",
                    body: <p>Instances not started yet are skipped; deployments already running finish. Instances already on the new version keep it.</p>,
                    action: "Abort rollout", run: () => operate("abort"),
                  })}>Abort</button></Show>
                </Show>
              </div>
              <p class="muted small">{planInWords(ro().plan)}{ro().description ? ` · ${ro().description}` : ""} · started {ago(ro().createdAt, now())}</p>
              <Show when={ro().status === "awaiting_approval"}>
                <div class="attention" role="status"><p><strong>Wave {(ro().currentWave ?? 0) + 1} is done; the next one waits for a person.</strong> {can("deployments", "create") ? "Start it when the instances look right, or abort." : "Someone who may deploy starts it."}</p></div>
              </Show>
              <Show when={ro().failure}>
                {(f) => (
                  <div class="failure" role="alert" data-testid="rollout-failure">
                    <p><strong>{rolloutFailureInWords(f())}</strong></p>
                    <p><code>{f().code}</code> {f().message}</p>
                  </div>
                )}
              </Show>
              <For each={ro().waves}>{(w) => <Wave wave={w} waveCount={ro().waves.filter((x) => !x.lateJoiners).length} nameOf={nameOf} current={ro().currentWave === w.index} />}</For>
            </>
          );
        }}
      </Show>
      <ConfirmView />
    </section>
  );
}

function Wave(props: { wave: RolloutWave; waveCount: number; nameOf: (id: string) => string; current: boolean }) {
  const w = () => props.wave;
  const titleId = () => `wave-${w().index}`;
  return (
    <section class="panel" aria-labelledby={titleId()} data-testid="rollout-wave" data-wave={w().index} data-status={w().status}>
      <div class="panel-head">
        <h2 id={titleId()}>{waveLabel(w(), props.waveCount)}</h2>
        <StatusBadge status={w().status} tone={ROLLOUT_TONE[w().status] ?? "unknown"} />
        <Show when={props.current}><span class="muted small">current</span></Show>
        <span class="spacer" />
        <span class="muted small">{w().startedAt ? `started ${new Date(w().startedAt!).toLocaleTimeString()}` : "not started"}{w().completedAt ? ` · ended ${new Date(w().completedAt!).toLocaleTimeString()}` : ""}</span>
      </div>
      <table class="grid">
        <thead><tr><th>Instance</th><th>State</th><th>Deployment</th><th>Why</th></tr></thead>
        <tbody>
          <For each={w().instances}>{(i) => (
            <tr data-rollout-instance={props.nameOf(i.instanceId)} data-status={i.status}>
              <td><A href={`/instances/${i.instanceId}`}>{props.nameOf(i.instanceId)}</A></td>
              <td><StatusBadge status={i.status} tone={ROLLOUT_TONE[i.status] ?? "unknown"} /></td>
              <td>
                <Show when={i.deploymentId} fallback={<span class="muted">—</span>}>{(d) => <A href={`/deployments/${d()}`}>{d().slice(0, 8)}</A>}</Show>
                <Show when={i.rollbackDeploymentId}>{(d) => <span class="reason">restored by <A href={`/deployments/${d()}`}>{d().slice(0, 8)}</A></span>}</Show>
              </td>
              <td class="muted">{i.code ? <code>{i.code}</code> : null} {i.reason ?? ""}</td>
            </tr>
          )}</For>
        </tbody>
      </table>
    </section>
  );
}
