/** Clusters and whether their bridge is connected now. */
import { For, onCleanup, Show } from "solid-js";
import { api } from "../api/api.ts";
import { useCursorList } from "../api/useCursorList.ts";
import { ago, StatusBadge, useNow } from "../ui/bits.tsx";
import { ListFooter } from "../ui/ListFooter.tsx";

const TONE: Record<string, string> = { connected: "ok", registered: "idle", disconnected: "bad" };

export function Clusters() {
  const now = useNow(5000);
  const list = useCursorList((cursor) => api.GET("/api/clusters", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}) } } }));
  // Connection state has no stream of its own yet: re-read it every 10 s (while only the first page is shown).
  const poll = setInterval(() => { if (!list.state().next) void list.reload(); }, 10_000);
  onCleanup(() => clearInterval(poll));

  return (
    <section class="page">
      <div class="page-head"><h1>Clusters</h1></div>
      <Show when={list.items().length > 0}>
        <table class="grid" data-testid="clusters-table">
          <thead><tr><th>Name</th><th>Connection</th><th>Driver</th><th>Labels</th><th>Last seen</th><th>Registered</th></tr></thead>
          <tbody>
            <For each={list.items()}>{(c) => (
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
      </Show>
      <ListFooter list={list} empty={
        <div class="empty">
          <p><strong>No clusters yet.</strong></p>
          <p>Register one with <code>POST /api/clusters {"{"}"name": "edge-1"{"}"}</code> (keep the <code>webhookSecret</code> it returns), then run its bridge:
            <code>npm run bridge -- --cluster &lt;id&gt; --api {location.origin} --secret-file cluster.secret</code>. Registering clusters from the console is not built yet.</p>
        </div>
      } />
    </section>
  );
}
