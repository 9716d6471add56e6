/**
 * Fleet: every instance with its state, live from /ws/fleet. Filters and search
 * go to the API (`status`, `clusterId`, `q`); the whole result is read by its
 * cursors (200 a page, up to MAX_ROWS) and the table renders only the rows in
 * view (@tanstack/solid-virtual), so 1,000 instances scroll and update like 20.
 */
import { createWindowVirtualizer } from "@tanstack/solid-virtual";
import { createMemo, createSignal, For, lazy, onCleanup, onMount, Show } from "solid-js";
import { api } from "../api/api.ts";
import { loadAllPages } from "../api/cursorList.ts";
import { can } from "../api/me.ts";
import { applyStatus, isInstanceStatus, mergeInstance, type InstanceSummary } from "../fleet/fleetEvents.ts";
import { useClusters } from "../fleet/useClusters.ts";
import { useLive } from "../live/useLive.ts";
import { useInstanceActions, type QuickAction } from "../fleet/instanceActions.tsx";
import { LiveBadge, useNow } from "../ui/bits.tsx";
// The create form loads when first opened: the first paint does not wait for it.
const CreateInstance = lazy(() => import("./CreateInstance.tsx").then((m) => ({ default: m.CreateInstance })));
import { FleetEmpty, FleetRow } from "./FleetRow.tsx";

const STATUSES = ["pending", "starting", "running", "stopped", "failed", "unknown", "deploying"] as const;
type Status = (typeof STATUSES)[number];
const PAGE = 200;
const MAX_ROWS = 5000;
/** A row's height in px (styles.css .grid td); rows with a reason line are measured as they render. */
const ROW_PX = 31;

export function Fleet() {
  const { clusters, nameOf } = useClusters();
  const [items, setItems] = createSignal<InstanceSummary[]>([]);
  const [loaded, setLoaded] = createSignal(false);
  const [truncated, setTruncated] = createSignal(false);
  const [error, setError] = createSignal<string | null>(null);
  const [q, setQ] = createSignal("");
  const [status, setStatus] = createSignal<Status | "">("");
  const [clusterId, setClusterId] = createSignal("");
  const [creating, setCreating] = createSignal(false);
  const [notice, setNotice] = createSignal<string | null>(null);
  const now = useNow(5000);

  const [more, setMore] = createSignal(false);
  let generation = 0;
  let inFlight: Promise<void> | null = null;
  /**
   * Reads the whole list. `progressive`: show each page as it arrives (the first view, a filter change), so the
   * first rows paint after one round trip; a re-read of the same filter swaps the list in once, whole.
   */
  const load = (progressive = false): Promise<void> => {
    const mine = ++generation;
    const query = { q: q(), status: status(), clusterId: clusterId() };
    const run = (async () => {
      const all = await loadAllPages((cursor) => api.GET("/api/instances", { params: { query: {
        limit: PAGE, ...(cursor ? { cursor } : {}), ...(query.q ? { q: query.q } : {}),
        ...(query.status ? { status: query.status as Status } : {}), ...(query.clusterId ? { clusterId: query.clusterId } : {}),
      } } }), MAX_ROWS, progressive ? (sofar) => {
        if (mine !== generation) return;
        setItems(sofar); setMore(true); setLoaded(true);
      } : undefined);
      if (mine !== generation) return; // a newer read (filter change, reconnect) has started
      setLoaded(true);
      setMore(false);
      setError(all.error);
      setTruncated(all.truncated);
      if (!all.error || all.items.length > 0) setItems(all.items);
    })();
    inFlight = run;
    void run.finally(() => { if (inFlight === run) inFlight = null; });
    return run;
  };

  // A burst of events about instances not in the table becomes one re-read.
  let reread: ReturnType<typeof setTimeout> | undefined;
  const rereadSoon = () => { clearTimeout(reread); reread = setTimeout(() => void load(), 300); };
  onCleanup(() => clearTimeout(reread));

  const refreshOne = async (id: string) => {
    const { data } = await api.GET("/api/instances/{id}", { params: { path: { id } } });
    if (data) setItems(mergeInstance(items(), data));
  };

  // Read at once (the table must not wait for a socket that may never connect) and again on every
  // (re)connect: events sent before the socket opened, or while it was down, are not replayed.
  void load(true);
  const live = useLive("/ws/fleet", {
    onMessage: (m) => {
      if (!isInstanceStatus(m)) return;
      const applied = applyStatus(items(), m);
      setItems(applied.items);
      if (applied.unknownInstance) rereadSoon();
      if (applied.refreshInstance) void refreshOne(applied.refreshInstance);
    },
    // A read already under way when the socket opens may have missed events sent before it: read again once it
    // is done, rather than throw it away and make the first paint wait for a second whole read.
    onOpen: () => { const pending = inFlight; if (pending) void pending.then(() => load()); else void load(); },
  });

  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  const onSearch = (value: string) => { setQ(value); clearTimeout(searchTimer); searchTimer = setTimeout(() => void load(true), 250); };
  onCleanup(() => clearTimeout(searchTimer));

  const actions = useInstanceActions((i, message, ok, what) => {
    setNotice(message);
    if (what === "delete") void load();
    else if (ok) void refreshOne(i.id);
  });

  return (
    <section class="page">
      <div class="page-head">
        <h1>Fleet</h1>
        <LiveBadge state={live()} />
        <Show when={loaded()}><span class="muted" data-testid="fleet-count">{items().length}{truncated() ? `+ (first ${MAX_ROWS} shown: narrow the filters)` : ""}{more() ? "+ instances, reading the rest…" : " instances"}</span></Show>
        <span class="spacer" />
        <Show when={can("instances", "create")}>
          <button class="primary" type="button" onClick={() => setCreating(true)} data-testid="create-instance">Create instance</button>
        </Show>
      </div>

      <div class="toolbar" role="search">
        <input type="search" placeholder="Search by name…" aria-label="Search instances by name" value={q()} onInput={(e) => onSearch(e.currentTarget.value)} />
        <select aria-label="Filter by status" value={status()} onChange={(e) => { setStatus(e.currentTarget.value as Status | ""); void load(true); }}>
          <option value="">any status</option>
          <For each={STATUSES}>{(s) => <option value={s}>{s}</option>}</For>
        </select>
        <select aria-label="Filter by cluster" value={clusterId()} onChange={(e) => { setClusterId(e.currentTarget.value); void load(true); }}>
          <option value="">any cluster</option>
          <For each={clusters.latest ?? []}>{(c) => <option value={c.id}>{c.name}</option>}</For>
        </select>
      </div>

      <Show when={creating()}>
        <CreateInstance clusters={clusters.latest ?? []} onClose={() => setCreating(false)} onCreated={(name) => { setCreating(false); setNotice(`${name} created: it turns running once its cluster's bridge starts it`); void load(); }} />
      </Show>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>

      <Show when={!loaded() || items().length > 0} fallback={<FleetEmpty filtered={!!(q() || status() || clusterId())} hasClusters={(clusters.latest ?? []).length > 0} canCreate={can("instances", "create")} />}>
        <FleetTable items={items()} nameOf={nameOf} now={now()} onAct={actions.run} />
      </Show>
      <actions.View />
    </section>
  );
}

/** The table body holds only the rows in the window, between two spacer rows that keep the scroll height true. */
function FleetTable(props: {
  items: InstanceSummary[]; nameOf: (id: string) => string; now: number;
  onAct: (i: InstanceSummary, what: QuickAction) => void;
}) {
  let table!: HTMLTableElement;
  // The window scrolls; the table starts below the page head, which the virtualiser must know.
  const [margin, setMargin] = createSignal(0);
  onMount(() => setMargin(table.getBoundingClientRect().top + window.scrollY));
  const virtual = createWindowVirtualizer({
    get count() { return props.items.length; },
    get scrollMargin() { return margin(); },
    estimateSize: () => ROW_PX,
    overscan: 12,
    getItemKey: (index) => props.items[index]?.id ?? index,
  });
  const visible = createMemo(() => {
    const r = virtual.getVirtualItems();
    if (r.length === 0) return [];
    return props.items.slice(r[0]!.index, r[r.length - 1]!.index + 1);
  });
  const first = () => virtual.getVirtualItems()[0]?.index ?? 0;
  const top = () => Math.max(0, (virtual.getVirtualItems()[0]?.start ?? margin()) - margin());
  const bottom = () => Math.max(0, virtual.getTotalSize() - ((virtual.getVirtualItems().at(-1)?.end ?? margin()) - margin()));

  return (
    <table class="grid" data-testid="fleet-table" ref={table} aria-rowcount={props.items.length + 1}>
      <thead>
        <tr><th>Name</th><th>Status</th><th>Desired</th><th>Cluster</th><th>Team</th><th>Stack</th><th>Endpoints</th><th>Updated</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr>
      </thead>
      <tbody>
        <Show when={top() > 0}><tr class="spacer-row" aria-hidden="true"><td colSpan={9} style={{ height: `${top()}px` }} /></tr></Show>
        <For each={visible()}>{(i, n) => (
          <FleetRow instance={i} index={first() + n()} measure={virtual.measureElement} clusterName={props.nameOf(i.clusterId)} now={props.now} onAct={(what) => props.onAct(i, what)} />
        )}</For>
        <Show when={bottom() > 0}><tr class="spacer-row" aria-hidden="true"><td colSpan={9} style={{ height: `${bottom()}px` }} /></tr></Show>
      </tbody>
    </table>
  );
}
