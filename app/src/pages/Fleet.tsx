/**
 * Fleet: every instance with its state, live from /ws/fleet. Filters and search
 * go to the API (`status`, `clusterId`, `q`), pages follow its cursors.
 */
import { createSignal, For, onCleanup, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { can } from "../api/me.ts";
import { applyStatus, isInstanceStatus, mergeInstance, type InstanceSummary } from "../fleet/fleetEvents.ts";
import { useClusters } from "../fleet/useClusters.ts";
import { useLive } from "../live/useLive.ts";
import { LiveBadge, useConfirm, useNow } from "../ui/bits.tsx";
import { CreateInstance } from "./CreateInstance.tsx";
import { FleetEmpty, FleetRow } from "./FleetRow.tsx";

const STATUSES = ["pending", "starting", "running", "stopped", "failed", "unknown", "deploying"] as const;
type Status = (typeof STATUSES)[number];
const PAGE = 50;

export function Fleet() {
  const { clusters, nameOf } = useClusters();
  const [items, setItems] = createSignal<InstanceSummary[]>([]);
  const [loaded, setLoaded] = createSignal(false);
  const [error, setError] = createSignal<string | null>(null);
  const [q, setQ] = createSignal("");
  const [status, setStatus] = createSignal<Status | "">("");
  const [clusterId, setClusterId] = createSignal("");
  // Cursors of the pages before this one (the first page's is undefined), and the next page's.
  const [cursors, setCursors] = createSignal<(string | undefined)[]>([undefined]);
  const [next, setNext] = createSignal<string | null>(null);
  const [creating, setCreating] = createSignal(false);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const now = useNow(5000);

  const load = async () => {
    const cursor = cursors().at(-1);
    const { data, error: err, response } = await api.GET("/api/instances", { params: { query: {
      limit: PAGE, ...(cursor ? { cursor } : {}), ...(q() ? { q: q() } : {}),
      ...(status() ? { status: status() as Status } : {}), ...(clusterId() ? { clusterId: clusterId() } : {}),
    } } });
    setLoaded(true);
    if (!data) return setError(messageOf(err, response));
    setError(null);
    setItems(data.items);
    setNext(data.nextCursor);
  };
  const refilter = () => { setCursors([undefined]); void load(); };

  // A burst of events about instances not on this page becomes one re-read.
  let reread: ReturnType<typeof setTimeout> | undefined;
  const rereadSoon = () => { clearTimeout(reread); reread = setTimeout(() => void load(), 300); };
  onCleanup(() => clearTimeout(reread));

  const refreshOne = async (id: string) => {
    const { data } = await api.GET("/api/instances/{id}", { params: { path: { id } } });
    if (data) setItems(mergeInstance(items(), data));
  };

  // Read at once (the table must not wait for a socket that may never connect) and again on every
  // (re)connect: events sent before the socket opened, or while it was down, are not replayed.
  void load();
  const live = useLive("/ws/fleet", {
    onMessage: (m) => {
      if (!isInstanceStatus(m)) return;
      const applied = applyStatus(items(), m);
      setItems(applied.items);
      if (applied.unknownInstance && cursors().length === 1) rereadSoon();
      if (applied.refreshInstance) void refreshOne(applied.refreshInstance);
    },
    onOpen: () => void load(),
  });

  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  const onSearch = (value: string) => { setQ(value); clearTimeout(searchTimer); searchTimer = setTimeout(refilter, 250); };
  onCleanup(() => clearTimeout(searchTimer));

  const act = async (i: InstanceSummary, what: "start" | "stop") => {
    const path = what === "start" ? "/api/instances/{id}/start" : "/api/instances/{id}/stop";
    const { error: err, response } = await api.POST(path, { params: { path: { id: i.id } } });
    setNotice(err ? `${i.name}: ${messageOf(err, response)}` : `${i.name}: ${what} requested`);
    if (!err) void load();
  };
  const destroy = (i: InstanceSummary) => confirm({
    title: `Delete ${i.name}?`,
    body: <p>The bridge removes its Node-RED runtime and the name becomes free again. Its flows and history stay in the audit trail. This cannot be undone.</p>,
    action: "Delete instance",
    run: async () => {
      const { error: err, response } = await api.DELETE("/api/instances/{id}", { params: { path: { id: i.id } } });
      setNotice(err ? `${i.name}: ${messageOf(err, response)}` : `${i.name}: delete requested`);
      void load();
    },
  });

  return (
    <section class="page">
      <div class="page-head">
        <h1>Fleet</h1>
        <LiveBadge state={live()} />
        <span class="spacer" />
        <Show when={can("instances", "create")}>
          <button class="primary" type="button" onClick={() => setCreating(true)} data-testid="create-instance">Create instance</button>
        </Show>
      </div>

      <div class="toolbar" role="search">
        <input type="search" placeholder="Search by name…" aria-label="Search instances by name" value={q()} onInput={(e) => onSearch(e.currentTarget.value)} />
        <select aria-label="Filter by status" value={status()} onChange={(e) => { setStatus(e.currentTarget.value as Status | ""); refilter(); }}>
          <option value="">any status</option>
          <For each={STATUSES}>{(s) => <option value={s}>{s}</option>}</For>
        </select>
        <select aria-label="Filter by cluster" value={clusterId()} onChange={(e) => { setClusterId(e.currentTarget.value); refilter(); }}>
          <option value="">any cluster</option>
          <For each={clusters.latest ?? []}>{(c) => <option value={c.id}>{c.name}</option>}</For>
        </select>
      </div>

      <Show when={creating()}>
        <CreateInstance clusters={clusters.latest ?? []} onClose={() => setCreating(false)} onCreated={(name) => { setCreating(false); setNotice(`${name} created: it turns running once its cluster's bridge starts it`); refilter(); }} />
      </Show>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>

      <Show when={!loaded() || items().length > 0 || cursors().length > 1} fallback={<FleetEmpty filtered={!!(q() || status() || clusterId())} hasClusters={(clusters.latest ?? []).length > 0} canCreate={can("instances", "create")} />}>
        <table class="grid" data-testid="fleet-table">
          <thead>
            <tr><th>Name</th><th>Status</th><th>Desired</th><th>Cluster</th><th>Team</th><th>Stack</th><th>Endpoints</th><th>Updated</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr>
          </thead>
          <tbody>
            <For each={items()}>{(i) => (
              <FleetRow instance={i} clusterName={nameOf(i.clusterId)} now={now()} onAct={(what) => void act(i, what)} onDelete={() => destroy(i)} />
            )}</For>
          </tbody>
        </table>
        <div class="pager">
          <button type="button" disabled={cursors().length <= 1} onClick={() => { setCursors(cursors().slice(0, -1)); void load(); }}>← Previous</button>
          <span class="muted">page {cursors().length}</span>
          <button type="button" disabled={!next()} onClick={() => { setCursors([...cursors(), next()!]); void load(); }}>Next →</button>
        </div>
      </Show>
      <ConfirmView />
    </section>
  );
}
