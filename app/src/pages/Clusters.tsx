/** Clusters and whether their bridge is connected now. */
import { createSignal, For, onCleanup, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import type { Cluster } from "../fleet/useClusters.ts";
import { ago, StatusBadge, useNow } from "../ui/bits.tsx";

const TONE: Record<string, string> = { connected: "ok", registered: "idle", disconnected: "bad" };

export function Clusters() {
  const [items, setItems] = createSignal<Cluster[]>([]);
  const [next, setNext] = createSignal<string | null>(null);
  const [loaded, setLoaded] = createSignal(false);
  const [error, setError] = createSignal<string | null>(null);
  const now = useNow(5000);

  const load = async (cursor?: string) => {
    const { data, error: err, response } = await api.GET("/api/clusters", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}) } } });
    setLoaded(true);
    if (!data) return setError(messageOf(err, response));
    setError(null);
    setItems(cursor ? [...items(), ...data.items] : data.items);
    setNext(data.nextCursor);
  };
  void load();
  // Connection state has no stream of its own yet: re-read it every 10 s.
  const poll = setInterval(() => { if (!next()) void load(); }, 10_000);
  onCleanup(() => clearInterval(poll));

  return (
    <section class="page">
      <div class="page-head"><h1>Clusters</h1></div>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={!loaded() || items().length > 0} fallback={
        <div class="empty">
          <p><strong>No clusters yet.</strong></p>
          <p>Register one with <code>POST /api/clusters {"{"}"name": "edge-1"{"}"}</code> (keep the <code>webhookSecret</code> it returns), then run its bridge:
            <code>npm run bridge -- --cluster &lt;id&gt; --api {location.origin} --secret-file cluster.secret</code>. Registering clusters from the console is not built yet.</p>
        </div>
      }>
        <table class="grid" data-testid="clusters-table">
          <thead><tr><th>Name</th><th>Connection</th><th>Driver</th><th>Labels</th><th>Last seen</th><th>Registered</th></tr></thead>
          <tbody>
            <For each={items()}>{(c) => (
              <tr>
                <td class="strong">{c.name}</td>
                <td><StatusBadge status={c.status} tone={TONE[c.status] ?? "unknown"} /></td>
                <td>{c.driver}</td>
                <td class="muted">{Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "—"}</td>
                <td class="muted" title={c.lastSeenAt ?? ""}>{ago(c.lastSeenAt, now())}</td>
                <td class="muted">{new Date(c.createdAt).toLocaleString()}</td>
              </tr>
            )}</For>
          </tbody>
        </table>
        <Show when={next()}><div class="pager"><button type="button" onClick={() => void load(next()!)}>Load more</button></div></Show>
      </Show>
    </section>
  );
}
