/** One deployment's live timeline (/ws/deployments/:id), its counts, its failure in plain words, and the operator buttons that apply. */
import { A, useParams } from "@solidjs/router";
import { createSignal, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { can } from "../api/me.ts";
import { applyDeploymentEvent, attentionInWords, failureInWords, formatMs, operatorActions, type Deployment } from "../deployments/timeline.ts";
import { useLive } from "../live/useLive.ts";
import { LiveBadge, StatusBadge, useConfirm, useNow } from "../ui/bits.tsx";
import { SmokeChecks, Timeline } from "./DeploymentTimeline.tsx";
import { DEPLOYMENT_TONE } from "./Deployments.tsx";


export function DeploymentDetail() {
  const params = useParams<{ id: string }>();
  const [d, setD] = createSignal<Deployment | null>(null);
  const [error, setError] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const now = useNow(500);

  const load = async () => {
    const { data, error: err, response } = await api.GET("/api/deployments/{id}", { params: { path: { id: params.id } } });
    if (!data) return setError(messageOf(err, response));
    setD(data);
  };
  void load();
  // Phase frames carry no failure, smoke results or measured durations: re-read the view after each.
  const live = useLive(`/ws/deployments/${params.id}`, {
    onMessage: (m) => {
      setD((cur) => applyDeploymentEvent(cur, m));
      if ((m as { event?: string } | null)?.event === "deployment:phase") void load();
    },
  });

  const operate = async (what: "promote" | "abort" | "rollback") => {
    const path = ({ promote: "/api/deployments/{id}/promote", abort: "/api/deployments/{id}/abort", rollback: "/api/deployments/{id}/rollback" } as const)[what];
    const { data, error: err, response } = await api.POST(path, { params: { path: { id: params.id } } });
    if (!data) { setError(messageOf(err, response)); return; }
    setError(null);
    setD(data);
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1><A href="/deployments" class="muted">Deployments</A> / {params.id.slice(0, 8)}</h1>
        <LiveBadge state={live()} />
      </div>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={d()} fallback={<p class="muted">Loading…</p>}>
        {(dep) => {
          const actions = () => operatorActions(dep(), now());
          return (
            <>
              <div class="summary">
                <StatusBadge status={dep().status} tone={DEPLOYMENT_TONE[dep().status] ?? "unknown"} />
                <progress max="1" value={dep().progress} aria-label="progress" />
                <span>held <strong>{dep().metrics.messagesHeld}</strong></span>
                <span>replayed <strong>{dep().metrics.messagesReplayed}</strong></span>
                <span>lost <strong>{dep().metrics.messagesLost}</strong></span>
                <span>in flight at drain <strong>{dep().metrics.inFlightAtDrain}</strong></span>
                <Show when={dep().metrics.holdMs !== undefined}><span>held for <strong>{formatMs(dep().metrics.holdMs ?? null)}</strong></span></Show>
                <Show when={dep().toStack}><span class="muted">stack {dep().fromStack ?? "?"} → {dep().toStack}{dep().toNodeRed ? ` (${dep().toNodeRed})` : ""}</span></Show>
                <span class="spacer" />
                <Show when={can("deployments", "update")}>
                  <Show when={actions().promote}><button type="button" class="primary" onClick={() => void operate("promote")}>Promote</button></Show>
                  <Show when={actions().abort}><button type="button" onClick={() => confirm({ title: "Abort this deployment?", body: <p>Green is stopped and blue keeps serving; held messages are replayed to blue in order.</p>, action: "Abort", run: () => operate("abort") })}>Abort</button></Show>
                  <Show when={actions().rollback}><button type="button" class="danger-quiet" onClick={() => confirm({ title: "Roll back to blue?", body: <p>Traffic goes back to the version that ran before; held messages are replayed to it in order.</p>, action: "Roll back", run: () => operate("rollback") })}>Roll back</button></Show>
                </Show>
              </div>
              <Show when={dep().attention}>
                {(a) => (
                  <div class="attention" role="status" data-testid="attention">
                    <p><strong>{attentionInWords(a(), now())}</strong></p>
                    <p>{a().message}</p>
                    <Show when={a().lastError}><p class="small">Last error: <code>{a().lastError}</code></p></Show>
                    <p class="small">Since {new Date(a().since).toLocaleTimeString()}{a().maxAttempts === null ? " · retried until it succeeds or a person acts" : ""}</p>
                    <Show when={can("deployments", "update") && (actions().retryRollback || actions().giveUpRollback)}>
                      <div class="actions start">
                        <Show when={actions().retryRollback}><button type="button" class="primary" onClick={() => void operate("rollback")} data-testid="retry-rollback">Retry rollback now</button></Show>
                        <Show when={actions().giveUpRollback}><button type="button" class="danger-quiet" data-testid="give-up-rollback" onClick={() => confirm({
                          title: "Give up the rollback?",
                          body: <p>The deployment ends <strong>failed</strong> (<code>rollback_failed</code>). Blue may not be serving and held work may not have been replayed: check the instance by hand.</p>,
                          action: "Give up rollback", run: () => operate("abort"),
                        })}>Give up rollback</button></Show>
                      </div>
                    </Show>
                  </div>
                )}
              </Show>
              <Show when={dep().error}>
                {(e) => (
                  <div class="failure" role="alert">
                    <p><strong>{failureInWords(e())}</strong></p>
                    <p><code>{e().code}</code> {e().message}</p>
                  </div>
                )}
              </Show>
              <Timeline deployment={dep()} now={now()} />
              <Show when={dep().metrics.smoke}>{(smoke) => <SmokeChecks smoke={smoke()} />}</Show>
            </>
          );
        }}
      </Show>
      <ConfirmView />
    </section>
  );
}
