/**
 * Dead letters from agent flows (GET /api/dead-letters): what a primitive gave
 * up on, filtered by instance, error code and replay state, with the failed
 * message's input for roles holding ai_prompts:read. Replay sends the input
 * again to the instance (POST /api/dead-letters/:id/replay; buttons only for
 * dead_letters:update, so viewers see none); a letter replayed before needs a
 * confirmation and goes with ?force=true. Rows with a pending replay are
 * re-read every 2 s until the bridge reports (no socket carries replays).
 */
import { A } from "@solidjs/router";
import { createEffect, createResource, createSignal, For, onCleanup, Show } from "solid-js";
import type { components } from "../../../protocol/api/client.ts";
import { api, messageOf } from "../api/api.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import { REPLAY_TONE, replayAction, replayOutcome } from "../deadLetters/replayView.ts";
import { ago, StatusBadge, useConfirm, useNow } from "../ui/bits.tsx";
import { formatInstant } from "../ui/format.ts";
import { ListFooter } from "../ui/ListFooter.tsx";

type Letter = components["schemas"]["DeadLetter"];
type ReplayState = NonNullable<Letter["replayState"]>;
interface Filters { instanceId?: string; errorCode?: string; replayState?: ReplayState }

export function DeadLetters() {
  const now = useNow(10_000);
  const [filters, setFilters] = createSignal<Filters>({});
  const [notice, setNotice] = createSignal<string | null>(null);
  const [instances] = createResource(async () => (await api.GET("/api/instances", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const instanceName = (id: string) => instances.latest?.find((i) => i.id === id)?.name ?? id.slice(0, 8);
  const list = useCursorList((cursor) => api.GET("/api/dead-letters", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}), ...filters() } } }));
  const [ask, ConfirmView] = useConfirm();

  // A replay waits for the bridge's next collection (about 2 s): re-read while any shown row is pending.
  createEffect(() => {
    if (!list.items().some((l) => l.replayState === "pending")) return;
    const t = setTimeout(() => void list.reload(), 2_000);
    onCleanup(() => clearTimeout(t));
  });

  const apply = (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim() || undefined;
    const next: Filters = {};
    const instanceId = text("instanceId"), errorCode = text("errorCode"), replayState = text("replayState") as ReplayState | undefined;
    if (instanceId) next.instanceId = instanceId;
    if (errorCode) next.errorCode = errorCode;
    if (replayState) next.replayState = replayState;
    setFilters(next);
    void list.reload();
  };

  const send = async (l: Letter, force: boolean) => {
    const { data, error, response } = await api.POST("/api/dead-letters/{id}/replay", { params: { path: { id: l.id }, query: force ? { force: "true" } : {} } });
    if (!data) {
      setNotice(`Letter ${l.id}: ${messageOf(error, response)}`);
      return;
    }
    setNotice(`Letter ${l.id}: replay requested; the cluster's bridge sends it within seconds.`);
    list.update((items) => items.map((x) => (x.id === data.id ? data : x)));
  };
  const replay = (l: Letter) => {
    const a = replayAction(l);
    if (!a) return;
    if (!a.confirm) return void send(l, false);
    ask({
      title: `Replay letter ${l.id} again?`,
      body: <p>It was replayed {ago(l.replayedAt, now())} ({l.replayState}). Its input goes to {instanceName(l.instanceId)} once more: a primitive that already acted on it may act twice.</p>,
      action: "Replay again",
      run: () => send(l, true),
    });
  };

  return (
    <section class="page">
      <div class="page-head"><h1>Dead letters</h1></div>
      <p class="muted">Messages an agent flow gave up on (<code>redforge/dlq/&#123;instance&#125;</code>, forwarded by the cluster's bridge). Replay sends the message's input to the instance again.</p>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <form class="panel form" onSubmit={apply} aria-label="Filter dead letters">
        <div class="form-grid">
          <label>Instance<select name="instanceId" data-testid="dl-instance"><option value="">any</option><For each={instances.latest ?? []}>{(i) => <option value={i.id}>{i.name}</option>}</For></select></label>
          <label>Error code<input name="errorCode" placeholder="any, e.g. model_unavailable" /></label>
          <label>Replay<select name="replayState"><option value="">any</option><option value="pending">pending</option><option value="succeeded">succeeded</option><option value="failed">failed</option></select></label>
        </div>
        <div class="actions"><button type="submit" class="primary">Apply filters</button></div>
      </form>
      <section class="panel" aria-labelledby="dl-list-title">
        <h2 id="dl-list-title">Letters</h2>
        <Show when={!can("ai_prompts", "read")}><p class="muted small">Inputs are hidden for your role (needs <code>ai_prompts:read</code>).</p></Show>
        <Show when={list.items().length > 0}>
          <table class="grid" data-testid="dead-letter-list">
            <thead><tr><th>Failed</th><th>Instance</th><th>Primitive</th><th>Flow</th><th>Error</th><th class="num">Attempts</th><th>Input</th><th>Replay</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              <For each={list.items()}>{(l) => (
                <tr data-letter={l.id}>
                  <td class="muted nowrap" title={formatInstant(l.failedAt)}>{ago(l.failedAt, now())}</td>
                  <td><A href={`/instances/${l.instanceId}`}>{instanceName(l.instanceId)}</A></td>
                  <td>{l.primitive ?? "—"}</td>
                  <td class="mono small">{l.flowId ?? "—"}</td>
                  <td><code>{l.errorCode}</code><span class="reason">{l.errorMessage}</span></td>
                  <td class="num">{l.attempts ?? "—"}</td>
                  <td class="details">{l.redacted ? <span class="muted">hidden</span> : l.input === null ? <span class="muted">none</span> : <details><summary>show</summary><pre class="mono small">{JSON.stringify(l.input, null, 2)}</pre></details>}</td>
                  <td data-testid="replay-state">
                    <Show when={l.replayState} fallback={<span class="muted">not replayed</span>}>
                      {(s) => <><StatusBadge status={s()} tone={REPLAY_TONE[s()]} /><span class="reason">{replayOutcome(l)}{l.replayedAt ? ` · ${ago(l.replayedAt, now())}` : ""}{l.replayCount > 1 ? ` · ${l.replayCount} replays` : ""}</span></>}
                    </Show>
                  </td>
                  <td class="row-actions">
                    <Show when={can("dead_letters", "update") && replayAction(l)}>
                      {(a) => <button type="button" onClick={() => replay(l)}>{a().label}</button>}
                    </Show>
                  </td>
                </tr>
              )}</For>
            </tbody>
          </table>
        </Show>
        <ListFooter list={list} empty={<p class="muted" data-testid="dead-letters-empty">No dead letters match. A primitive dead-letters a message it gave up on (docs/agents.md, "Error handling").</p>} />
      </section>
      <ConfirmView />
    </section>
  );
}
