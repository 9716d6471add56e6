/**
 * Clusters: whether each bridge is connected now and which version it runs,
 * live from /ws/fleet `cluster:link` events, and what the bridge found wrong
 * with the cluster (`cluster:warnings`, e.g. a broker that drops held work, in
 * a row under the cluster's: issue 12); register a cluster (its webhook
 * secret and the bridge's command line are shown once), rotate a secret,
 * delete an empty cluster.
 */
import { createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import { applyClusterLink, applyClusterWarnings, bridgeCommand, isClusterLink, isClusterWarnings, WARNING_TITLES } from "../fleet/clusterEvents.ts";
import { parseKeyValues } from "../fleet/keyValues.ts";
import type { Cluster } from "../fleet/useClusters.ts";
import { useLive } from "../live/useLive.ts";
import { ago, FieldError, LiveBadge, StatusBadge, useConfirm, useNow } from "../ui/bits.tsx";
import { ListFooter } from "../ui/ListFooter.tsx";

const TONE: Record<string, string> = { connected: "ok", registered: "idle", disconnected: "bad" };

/** What the API answered once: the secret never comes back after this panel is closed. */
interface Issued { id: string; name: string; driver: string; webhookSecret: string; rotated: boolean }

export function Clusters() {
  const now = useNow(5000);
  const [registering, setRegistering] = createSignal(false);
  const [issued, setIssued] = createSignal<Issued | null>(null);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const list = useCursorList((cursor) => api.GET("/api/clusters", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}) } } }));
  const live = useLive("/ws/fleet", {
    onMessage: (m) => {
      if (!isClusterLink(m) && !isClusterWarnings(m)) return;
      let known = true;
      list.update((items) => { const applied = isClusterLink(m) ? applyClusterLink(items, m) : applyClusterWarnings(items, m); known = applied.known; return applied.items; });
      if (!known && !list.state().next) void list.reload();
    },
    // Events sent while the socket was down are not replayed: read the state again.
    onOpen: () => void list.reload(),
  });

  const rotate = (c: Cluster) => confirm({
    title: `Rotate ${c.name}'s secret?`,
    body: <p>The bridge's current secret stops working at once: put the new one in its secret file and restart it, or it cannot report or reconnect.</p>,
    action: "Rotate secret",
    run: async () => {
      const { data, error, response } = await api.POST("/api/clusters/{id}/rotate-secret", { params: { path: { id: c.id } } });
      if (!data) return void setNotice(`${c.name}: ${messageOf(error, response)}`);
      setIssued({ id: data.id, name: data.name, driver: data.driver, webhookSecret: data.webhookSecret, rotated: true });
    },
  });
  const remove = (c: Cluster) => confirm({
    title: `Delete cluster ${c.name}?`,
    body: <p>Only an empty cluster can be deleted (delete its instances first). Its bridge can no longer connect; its history stays in the audit trail.</p>,
    action: "Delete cluster",
    run: async () => {
      const { error, response } = await api.DELETE("/api/clusters/{id}", { params: { path: { id: c.id } } });
      setNotice(error ? `${c.name}: ${messageOf(error, response)}` : `${c.name} deleted`);
      void list.reload();
    },
  });

  return (
    <section class="page">
      <div class="page-head">
        <h1>Clusters</h1>
        <LiveBadge state={live()} />
        <span class="spacer" />
        <Show when={can("clusters", "create")}>
          <button class="primary" type="button" onClick={() => { setRegistering(true); setIssued(null); }} data-testid="register-cluster">Register cluster</button>
        </Show>
      </div>
      <Show when={registering()}>
        <RegisterCluster onClose={() => setRegistering(false)} onRegistered={(c) => { setRegistering(false); setIssued({ ...c, rotated: false }); void list.reload(); }} />
      </Show>
      <Show when={issued()}>{(c) => <SecretOnce issued={c()} onDone={() => setIssued(null)} />}</Show>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <Show when={list.items().length > 0}>
        <table class="grid" data-testid="clusters-table">
          <thead><tr><th>Name</th><th>Connection</th><th>Bridge</th><th>Driver</th><th>Labels</th><th>Last seen</th><th>Registered</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={list.items()}>{(c) => (<>
              <tr data-cluster={c.name}>
                <td class="strong">{c.name}<div class="mono muted small">{c.id}</div></td>
                <td><StatusBadge status={c.connected ? "connected" : c.status === "registered" ? "registered" : "disconnected"} tone={TONE[c.connected ? "connected" : c.status] ?? "bad"}
                  title={c.connectedAt ? `connected since ${new Date(c.connectedAt).toLocaleString()}` : null} /></td>
                <td class="mono" data-testid="bridge-version">{c.bridgeVersion ?? <span class="muted">—</span>}</td>
                <td>{c.driver}</td>
                <td class="muted">{Object.entries(c.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "—"}</td>
                <td class="muted" title={c.lastSeenAt ?? ""}>{ago(c.lastSeenAt, now())}</td>
                <td class="muted">{new Date(c.createdAt).toLocaleString()}</td>
                <td class="row-actions">
                  <Show when={can("clusters", "update")}><button type="button" onClick={() => rotate(c)}>Rotate secret</button></Show>
                  <Show when={can("clusters", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(c)}>Delete</button></Show>
                </td>
              </tr>
              <Show when={c.warnings.length > 0}>
                <tr class="warning-row" data-cluster-warnings={c.name}>
                  <td colSpan={8}>
                    <For each={c.warnings}>{(w) => (
                      <div class="attention" role="alert" data-testid="cluster-warning" data-code={w.code}>
                        <p><strong>{WARNING_TITLES[w.code] ?? w.code}</strong> <span class="small">reported by the bridge {ago(w.detectedAt, now())}</span></p>
                        <p>{w.message}</p>
                      </div>
                    )}</For>
                  </td>
                </tr>
              </Show>
            </>)}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={
        <div class="empty">
          <p><strong>No clusters yet.</strong></p>
          <p>{can("clusters", "create") ? "Register one with the Register cluster button, then run its bridge with the command line shown." : "Ask an admin to register one; it shows up here with its bridge's state."}</p>
        </div>
      } />
      <ConfirmView />
    </section>
  );
}

const FIELDS = ["name", "driver", "labels"] as const;

function RegisterCluster(props: { onClose: () => void; onRegistered: (c: Omit<Issued, "rotated">) => void }) {
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const err = (f: (typeof FIELDS)[number]) => errors().fields[f];

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const labels = parseKeyValues(String(f.get("labels") ?? ""));
    if ("error" in labels) return setErrors({ fields: { labels: labels.error } });
    setBusy(true);
    const { data, error } = await api.POST("/api/clusters", { body: {
      name: String(f.get("name") ?? "").trim(),
      driver: String(f.get("driver")) as "process" | "kubernetes",
      ...(Object.keys(labels.values).length ? { labels: labels.values } : {}),
    } });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, FIELDS));
    props.onRegistered({ id: data.id, name: data.name, driver: data.driver, webhookSecret: data.webhookSecret });
  };

  return (
    <form class="panel form" onSubmit={submit} aria-labelledby="register-title" data-testid="register-form" novalidate>
      <h2 id="register-title">Register cluster</h2>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <label>Name
          <input name="name" placeholder="edge-1" aria-invalid={!!err("name")} aria-describedby={err("name") ? "err-name" : undefined} />
          <FieldError id="err-name" message={err("name")} />
        </label>
        <label>Driver
          <select name="driver" aria-invalid={!!err("driver")} aria-describedby={err("driver") ? "err-driver" : undefined}>
            <option value="process">process (Node-RED processes on the bridge's host)</option>
            <option value="kubernetes">kubernetes (StatefulSets in the bridge's cluster)</option>
          </select>
          <FieldError id="err-driver" message={err("driver")} />
        </label>
        <label class="wide">Labels <span class="muted">key=value, one a line</span>
          <textarea name="labels" rows="2" spellcheck={false} aria-invalid={!!err("labels")} aria-describedby={err("labels") ? "err-labels" : undefined} />
          <FieldError id="err-labels" message={err("labels")} />
        </label>
      </div>
      <div class="actions">
        <button type="button" onClick={() => props.onClose()}>Cancel</button>
        <button type="submit" class="primary" disabled={busy()}>{busy() ? "Registering…" : "Register"}</button>
      </div>
    </form>
  );
}

/** The secret, once, with the commands that put it in a file and start the bridge. */
function SecretOnce(props: { issued: Issued; onDone: () => void }) {
  const file = () => `${props.issued.name}.secret`;
  const command = () => bridgeCommand(props.issued.id, location.origin, props.issued.driver, file());
  const [copied, setCopied] = createSignal<string | null>(null);
  const copy = async (what: string, text: string) => {
    try { await navigator.clipboard.writeText(text); setCopied(what); } catch { setCopied(null); }
  };
  return (
    <section class="panel secret-once" aria-labelledby="secret-title" data-testid="cluster-secret" role="region">
      <h2 id="secret-title">{props.issued.rotated ? `New secret for ${props.issued.name}` : `${props.issued.name} registered`}</h2>
      <p><strong>Copy the webhook secret now: it is shown only this once.</strong> The bridge signs every report with it.</p>
      <label>Webhook secret
        <input class="mono" readOnly value={props.issued.webhookSecret} data-testid="cluster-secret-value" onFocus={(e) => e.currentTarget.select()} />
      </label>
      <div class="actions start"><button type="button" onClick={() => void copy("secret", props.issued.webhookSecret)}>Copy secret</button></div>
      <p>On the machine that runs the bridge, from a RedForge checkout:</p>
      <pre class="command" data-testid="bridge-command">{`umask 077; printf '%s' '<paste the secret>' > ${file()}\n${command()}`}</pre>
      <div class="actions start">
        <button type="button" onClick={() => void copy("command", command())}>Copy command</button>
        <Show when={copied()}><span role="status">{copied()} copied</span></Show>
        <span class="spacer" />
        <button type="button" class="primary" onClick={() => props.onDone()}>I have saved it</button>
      </div>
      <p class="small">The cluster turns <em>connected</em> here as soon as its bridge says hello.</p>
    </section>
  );
}
