/**
 * The instance's stored flow versions (redeploy one blue-green), a node-level
 * diff between two stored versions (their flows read once each from
 * GET /api/deployments/versions/:id), and a diff of the running flows against
 * any pasted or uploaded export, e.g. before deploying it.
 */
import { useNavigate } from "@solidjs/router";
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { can } from "../../api/me.ts";
import type { components } from "../../../../protocol/api/client.ts";
import { diffFlows, tabNames, type FlowDiff } from "../../instances/flowDiff.ts";
import { VersionFlows } from "../../instances/versionFlows.ts";
import { ago, FieldError, useConfirm } from "../../ui/bits.tsx";

type InstanceDetail = components["schemas"]["InstanceDetail"];

export function FlowVersions(props: { instance: InstanceDetail; onDeployed: () => void }) {
  const navigate = useNavigate();
  const [confirm, ConfirmView] = useConfirm();
  const [error, setError] = createSignal<string | null>(null);
  const [versions] = createResource(() => props.instance.id, async (instanceId) => {
    const { data, error: err, response } = await api.GET("/api/deployments/versions", { params: { query: { instanceId } } });
    if (!data) throw new Error(messageOf(err, response));
    return data.items;
  });

  const redeploy = (v: { id: string; version: number }) => confirm({
    title: `Redeploy version ${v.version}?`,
    body: <p>A blue-green deployment of this stored version to {props.instance.name}, holding messages only during the switch.</p>,
    action: "Deploy",
    run: async () => {
      const { data, error: err, response } = await api.POST("/api/deployments", { body: { instanceId: props.instance.id, versionId: v.id, holdDuring: "switch" } });
      if (!data) { setError(messageOf(err, response)); return; }
      props.onDeployed();
      navigate(`/deployments/${data.id}`);
    },
  });

  return (
    <section class="panel" aria-labelledby="versions-title">
      <h2 id="versions-title">Flow versions</h2>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={versions.error}><p class="error" role="alert">{String((versions.error as Error).message)}</p></Show>
      <Show when={(versions.latest ?? []).length > 0} fallback={<p class="muted">{versions.loading ? "Loading…" : "No stored version yet: each deployment stores the flows it rolls out."}</p>}>
        <table class="grid" data-testid="flow-versions">
          <thead><tr><th>Version</th><th>Digest</th><th>Stored</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={versions.latest ?? []}>{(v, n) => (
              <tr>
                <td class="strong">v{v.version}{n() === 0 ? <span class="muted"> (latest)</span> : null}</td>
                <td class="mono muted" title={v.digest}>{v.digest.slice(0, 12)}</td>
                <td class="muted" title={v.createdAt}>{ago(v.createdAt)}</td>
                <td class="row-actions"><Show when={can("deployments", "create")}><button type="button" onClick={() => redeploy(v)}>Redeploy</button></Show></td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <Show when={(versions.latest ?? []).length > 1}>
        <VersionCompare versions={versions.latest ?? []} />
      </Show>
      <FlowCompare running={props.instance.flows} />
      <ConfirmView />
    </section>
  );
}

type Version = components["schemas"]["FlowVersion"];

/** Two stored versions, node by node: the older one is "before" whichever way they are picked. */
function VersionCompare(props: { versions: Version[] }) {
  const store = new VersionFlows(async (id) => {
    const { data, error, response } = await api.GET("/api/deployments/versions/{id}", { params: { path: { id } } });
    return data ? { flows: data.flows } : { error: messageOf(error, response) };
  });
  const [from, setFrom] = createSignal(props.versions[1]!.id);
  const [to, setTo] = createSignal(props.versions[0]!.id);
  const [diff, setDiff] = createSignal<{ diff: FlowDiff; tabs: Map<string, string>; label: string } | null>(null);
  const [error, setError] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);
  const versionOf = (id: string) => props.versions.find((v) => v.id === id)!;

  const compare = async (e: SubmitEvent) => {
    e.preventDefault();
    const [a, b] = [versionOf(from()), versionOf(to())].sort((x, y) => x.version - y.version) as [Version, Version];
    setBusy(true);
    const pair = await store.pair(a.id, b.id);
    setBusy(false);
    if ("error" in pair) { setDiff(null); return setError(pair.error); }
    setError(null);
    setDiff({ diff: diffFlows(pair.before, pair.after), tabs: new Map([...tabNames(pair.before), ...tabNames(pair.after)]), label: `v${a.version} → v${b.version}` });
  };

  return (
    <details class="subpanel" open>
      <summary>Compare two stored versions</summary>
      <form class="inline-form" onSubmit={(e) => void compare(e)} data-testid="version-compare">
        <label>From <select value={from()} onChange={(e) => setFrom(e.currentTarget.value)} data-testid="compare-from">
          <For each={props.versions}>{(v) => <option value={v.id}>v{v.version}</option>}</For>
        </select></label>
        <label>To <select value={to()} onChange={(e) => setTo(e.currentTarget.value)} data-testid="compare-to">
          <For each={props.versions}>{(v) => <option value={v.id}>v{v.version}</option>}</For>
        </select></label>
        <button type="submit" class="primary" disabled={busy() || from() === to()}>{busy() ? "Reading…" : "Compare versions"}</button>
        <Show when={from() === to()}><span class="muted small">pick two different versions</span></Show>
      </form>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={diff()}>{(d) => <><p class="muted small" data-testid="version-diff-label">{d().label}</p><DiffView diff={d().diff} tabs={d().tabs} /></>}</Show>
    </details>
  );
}

function FlowCompare(props: { running: unknown[] }) {
  const [diff, setDiff] = createSignal<FlowDiff | null>(null);
  const [error, setError] = createSignal<string | undefined>();
  const [text, setText] = createSignal("");
  const tabs = () => tabNames(props.running);

  const compare = (raw: string) => {
    let other: unknown;
    try { other = JSON.parse(raw); } catch (err) { setDiff(null); return setError(`not JSON: ${(err as Error).message}`); }
    if (!Array.isArray(other)) { setDiff(null); return setError("a Node-RED flow export is a JSON array of nodes"); }
    setError(undefined);
    setDiff(diffFlows(props.running, other));
  };
  const upload = async (file: File | undefined) => { if (!file) return; const t = await file.text(); setText(t); compare(t); };

  return (
    <details class="subpanel">
      <summary>Compare the running flows ({props.running.length} nodes) with another export</summary>
      <p class="muted small">Paste or upload an export to see what deploying it would change.</p>
      <form class="form" onSubmit={(e) => { e.preventDefault(); compare(text()); }}>
        <label class="wide">Flow JSON
          <textarea rows="4" spellcheck={false} value={text()} onInput={(e) => setText(e.currentTarget.value)} aria-invalid={!!error()} aria-describedby={error() ? "err-compare" : undefined} data-testid="compare-json" />
          <FieldError id="err-compare" message={error()} />
        </label>
        <div class="actions">
          <label class="file-pick">Upload…<input type="file" accept=".json,application/json" onChange={(e) => void upload(e.currentTarget.files?.[0])} /></label>
          <button type="submit" class="primary">Compare</button>
        </div>
      </form>
      <Show when={diff()}>{(d) => <DiffView diff={d()} tabs={tabs()} />}</Show>
    </details>
  );
}

export function DiffView(props: { diff: FlowDiff; tabs: Map<string, string> }) {
  const where = (tab: string | null) => (tab ? props.tabs.get(tab) ?? tab.slice(0, 8) : "");
  const d = () => props.diff;
  return (
    <div data-testid="flow-diff">
      <p class="summary">
        <span class="diff-add">+{d().added.length} added</span>
        <span class="diff-del">−{d().removed.length} removed</span>
        <span class="diff-chg">~{d().changed.length} changed</span>
        <span class="muted">{d().moved.length} moved only, {d().unchanged} unchanged</span>
      </p>
      <Show when={d().added.length + d().removed.length + d().changed.length > 0} fallback={<p class="muted">Same nodes, same settings.</p>}>
        <table class="grid">
          <thead><tr><th>Change</th><th>Type</th><th>Name</th><th>Flow</th><th>Properties</th><th>Id</th></tr></thead>
          <tbody>
            <For each={d().added}>{(n) => <tr class="diff-add"><td>added</td><td>{n.type}</td><td>{n.label}</td><td class="muted">{where(n.tab)}</td><td /><td class="mono muted">{n.id}</td></tr>}</For>
            <For each={d().removed}>{(n) => <tr class="diff-del"><td>removed</td><td>{n.type}</td><td>{n.label}</td><td class="muted">{where(n.tab)}</td><td /><td class="mono muted">{n.id}</td></tr>}</For>
            <For each={d().changed}>{(n) => <tr class="diff-chg"><td>changed</td><td>{n.type}</td><td>{n.label}</td><td class="muted">{where(n.tab)}</td><td>{n.fields.join(", ")}</td><td class="mono muted">{n.id}</td></tr>}</For>
          </tbody>
        </table>
      </Show>
    </div>
  );
}
