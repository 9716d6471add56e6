/**
 * Alerts: what is open now (acknowledge), live from /ws/fleet `fleet:alert`;
 * the per-team rules (create, edit, enable, delete; thresholds per kind as the
 * API validates them); the notification channels (a webhook's secret is shown
 * once, never again); and the dead letters (deliveries every retry failed).
 */
import { createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import type { components } from "../../../protocol/api/client.ts";
import { ALERT_KINDS, applyAlertEvent, isAlertEvent, KIND_PARAMS, KIND_WORDS, paramsFromForm, paramText, ruleFields } from "../alerts/ruleKinds.ts";
import { useLive } from "../live/useLive.ts";
import { ago, FieldError, LiveBadge, StatusBadge, useConfirm, useNow } from "../ui/bits.tsx";
import { ListFooter } from "../ui/ListFooter.tsx";

type Rule = components["schemas"]["AlertRule"];
type Channel = components["schemas"]["AlertChannel"];
type AlertStatus = components["schemas"]["Alert"]["status"];

const ALERT_TONE: Record<string, string> = { pending: "busy", firing: "bad", acknowledged: "busy", resolved: "ok" };
const SEVERITY_TONE: Record<string, string> = { info: "idle", warning: "busy", critical: "bad" };

export function Alerts() {
  const [notice, setNotice] = createSignal<string | null>(null);
  return (
    <section class="page">
      <div class="page-head"><h1>Alerts</h1></div>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <OpenAlerts notify={setNotice} />
      <Rules notify={setNotice} />
      <Channels notify={setNotice} />
      <DeadLetters />
    </section>
  );
}

function OpenAlerts(props: { notify: (m: string) => void }) {
  const now = useNow(5000);
  const [status, setStatus] = createSignal<AlertStatus | "">("firing");
  const list = useCursorList((cursor) => api.GET("/api/alerts", { params: { query: { limit: 50, ...(status() ? { status: status() as AlertStatus } : {}), ...(cursor ? { cursor } : {}) } } }));
  const live = useLive("/ws/fleet", {
    onMessage: (m) => {
      if (!isAlertEvent(m)) return;
      let unknown = false;
      list.update((items) => { const r = applyAlertEvent(items, m); unknown = r.unknown; return r.items; });
      // A new alert, or one that left the filtered status: read the first page again.
      if (unknown || (status() && m.data.status !== status())) void list.reload();
    },
    onOpen: () => void list.reload(),
  });
  const ack = async (id: string) => {
    const { data, error, response } = await api.POST("/api/alerts/{id}/ack", { params: { path: { id } } });
    if (!data) return props.notify(messageOf(error, response));
    props.notify(`${data.subjectName ?? data.subject}: acknowledged`);
    void list.reload();
  };
  return (
    <section class="panel" aria-labelledby="open-alerts-title" data-testid="alerts-list">
      <div class="panel-head">
        <h2 id="open-alerts-title">Alerts</h2>
        <LiveBadge state={live()} />
        <span class="spacer" />
        <select aria-label="Filter alerts by status" value={status()} onChange={(e) => { setStatus(e.currentTarget.value as AlertStatus | ""); void list.reload(); }}>
          <option value="firing">firing</option><option value="acknowledged">acknowledged</option><option value="pending">pending</option>
          <option value="resolved">resolved</option><option value="">any status</option>
        </select>
      </div>
      <Show when={list.items().length > 0}>
        <table class="grid">
          <thead><tr><th>Status</th><th>Severity</th><th>Summary</th><th>Team</th><th>Kind</th><th>Started</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={list.items()}>{(a) => (
              <tr data-alert={a.id}>
                <td><StatusBadge status={a.status} tone={ALERT_TONE[a.status] ?? "unknown"} /></td>
                <td><StatusBadge status={a.severity} tone={SEVERITY_TONE[a.severity] ?? "unknown"} /></td>
                <td>{a.summary}<Show when={a.refireCount > 0}><span class="muted small"> · came back {a.refireCount}×</span></Show></td>
                <td class="muted">{a.team}</td>
                <td class="muted">{a.kind}</td>
                <td class="muted" title={a.startedAt}>{ago(a.startedAt, now())}</td>
                <td class="row-actions"><Show when={a.status === "firing" && can("alerts", "update")}><button type="button" onClick={() => void ack(a.id)} data-testid="ack-alert">Acknowledge</button></Show></td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={<p class="muted">{status() === "firing" ? "Nothing is firing." : "No alert in this state."} Alerts come from the rules below, evaluated every minute.</p>} />
    </section>
  );
}

function Rules(props: { notify: (m: string) => void }) {
  const [editing, setEditing] = createSignal<Rule | "new" | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const list = useCursorList((cursor) => api.GET("/api/alerts/rules", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}) } } }));
  const remove = (r: Rule) => confirm({
    title: `Delete the rule ${r.name}?`, action: "Delete rule",
    body: <p>Its open alerts resolve now (and their channels are told); their history stays.</p>,
    run: async () => {
      const { error, response } = await api.DELETE("/api/alerts/rules/{id}", { params: { path: { id: r.id } } });
      props.notify(error ? messageOf(error, response) : `${r.name}: rule deleted`);
      void list.reload();
    },
  });
  return (
    <section class="panel" aria-labelledby="rules-title" data-testid="alert-rules">
      <div class="panel-head"><h2 id="rules-title">Rules</h2><span class="spacer" />
        <Show when={can("alerts", "create")}><button type="button" class="primary" onClick={() => setEditing("new")} data-testid="new-rule">New rule</button></Show></div>
      <Show when={editing()}>{(e) => {
        // Read once: the form outlives the <Show>'s accessor by a moment when it closes itself.
        const rule = e() === "new" ? null : (e() as Rule);
        return <RuleForm rule={rule} onClose={() => setEditing(null)} onSaved={(name) => { setEditing(null); props.notify(`${name}: rule saved`); void list.reload(); }} />;
      }}</Show>
      <Show when={list.items().length > 0}>
        <table class="grid">
          <thead><tr><th>Name</th><th>Team</th><th>Kind</th><th>Thresholds</th><th>Severity</th><th>Enabled</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={list.items()}>{(r) => (
              <tr data-rule={r.name}>
                <td class="strong">{r.name}</td>
                <td class="muted">{r.team}</td>
                <td title={KIND_WORDS[r.kind]}>{r.kind}</td>
                <td class="mono small">{Object.entries(r.params).map(([k, v]) => `${k}=${paramText(v)}`).join(" ") || "—"}</td>
                <td><StatusBadge status={r.severity} tone={SEVERITY_TONE[r.severity] ?? "unknown"} /></td>
                <td>{r.enabled ? "yes" : <span class="muted">no</span>}</td>
                <td class="row-actions">
                  <Show when={can("alerts", "update")}><button type="button" onClick={() => setEditing(r)}>Edit</button></Show>
                  <Show when={can("alerts", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(r)}>Delete</button></Show>
                </td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={<p class="muted">No rules yet. {can("alerts", "create") ? "Add one with New rule: pick a kind, a team and its thresholds." : "An admin adds them."}</p>} />
      <ConfirmView />
    </section>
  );
}

/** Create (every field) or edit (name, thresholds, severity, clear runs, enabled: team and kind are the rule's identity). */
function RuleForm(props: { rule: Rule | null; onClose: () => void; onSaved: (name: string) => void }) {
  const [kind, setKind] = createSignal(props.rule?.kind ?? "instance_down");
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const err = (f: string) => errors().fields[f];
  const described = (f: string) => (err(f) ? `err-rule-${f}` : undefined);

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim();
    const params = paramsFromForm(kind(), (k) => text(`param-${k}`));
    const clear = Number(text("clearEvaluations"));
    const common = {
      name: text("name"),
      severity: text("severity") as Rule["severity"],
      ...(text("clearEvaluations") ? { clearEvaluations: Number.isFinite(clear) ? clear : (text("clearEvaluations") as unknown as number) } : {}),
      enabled: f.get("enabled") === "on",
      params,
    };
    setBusy(true);
    const { data, error } = props.rule
      ? await api.PATCH("/api/alerts/rules/{id}", { params: { path: { id: props.rule.id } }, body: common })
      : await api.POST("/api/alerts/rules", { body: { ...common, team: text("team"), kind: kind() as "instance_down" } });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, ruleFields(kind())));
    props.onSaved(data.name);
  };

  return (
    <form class="panel form" onSubmit={submit} aria-labelledby="rule-form-title" data-testid="rule-form" novalidate>
      <h3 id="rule-form-title">{props.rule ? `Edit rule ${props.rule.name}` : "New alert rule"}</h3>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <label>Team
          <input name="team" value={props.rule?.team ?? "default"} disabled={!!props.rule} aria-invalid={!!err("team")} aria-describedby={described("team")} />
          <FieldError id="err-rule-team" message={err("team")} />
        </label>
        <label>Name
          <input name="name" value={props.rule?.name ?? ""} placeholder="instances-down" aria-invalid={!!err("name")} aria-describedby={described("name")} />
          <FieldError id="err-rule-name" message={err("name")} />
        </label>
        <label>Kind
          <select name="kind" value={kind()} disabled={!!props.rule} onChange={(e) => setKind(e.currentTarget.value)} aria-invalid={!!err("kind")} aria-describedby={described("kind") ?? "kind-words"}>
            <For each={ALERT_KINDS}>{(k) => <option value={k}>{k}</option>}</For>
          </select>
          <span class="muted small" id="kind-words">fires when {KIND_WORDS[kind()]}</span>
          <FieldError id="err-rule-kind" message={err("kind")} />
        </label>
        <label>Severity
          <select name="severity" value={props.rule?.severity ?? "warning"}>
            <option value="info">info</option><option value="warning">warning</option><option value="critical">critical</option>
          </select>
        </label>
        <label>Clear runs
          <input name="clearEvaluations" inputmode="numeric" value={props.rule?.clearEvaluations ?? 2} aria-invalid={!!err("clearEvaluations")} aria-describedby={described("clearEvaluations")} />
          <FieldError id="err-rule-clearEvaluations" message={err("clearEvaluations")} />
        </label>
        <label class="check"><input type="checkbox" name="enabled" checked={props.rule?.enabled ?? true} /> Enabled</label>
        <For each={KIND_PARAMS[kind()] ?? []}>{(p) => {
          const field = `params.${p.key}`;
          const current = paramText(props.rule?.kind === kind() ? props.rule.params[p.key] : undefined);
          return (
            <label>{p.label}
              <Show when={p.type === "choice"} fallback={
                <input name={`param-${p.key}`} value={current} inputmode={p.type === "number" ? "decimal" : "text"} aria-invalid={!!err(field)} aria-describedby={err(field) ? `err-rule-${p.key}` : `hint-${p.key}`} data-testid={`param-${p.key}`} />
              }>
                <select name={`param-${p.key}`} value={current || (p.type === "choice" ? p.options[0] : "")} aria-invalid={!!err(field)} aria-describedby={err(field) ? `err-rule-${p.key}` : `hint-${p.key}`}>
                  <For each={p.type === "choice" ? p.options : []}>{(o) => <option value={o}>{o}</option>}</For>
                </select>
              </Show>
              <span class="muted small" id={`hint-${p.key}`}>{p.hint}</span>
              <FieldError id={`err-rule-${p.key}`} message={err(field)} />
            </label>
          );
        }}</For>
      </div>
      <Show when={err("params")}><p class="error" role="alert">{err("params")}</p></Show>
      <div class="actions">
        <button type="button" onClick={() => props.onClose()}>Cancel</button>
        <button type="submit" class="primary" disabled={busy()}>{busy() ? "Saving…" : props.rule ? "Save rule" : "Create rule"}</button>
      </div>
    </form>
  );
}

function Channels(props: { notify: (m: string) => void }) {
  const [creating, setCreating] = createSignal(false);
  const [secret, setSecret] = createSignal<{ name: string; secret: string } | null>(null);
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [confirm, ConfirmView] = useConfirm();
  const list = useCursorList((cursor) => api.GET("/api/alerts/channels", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}) } } }));
  const err = (f: string) => errors().fields[f];

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim();
    const { data, error } = await api.POST("/api/alerts/channels", { body: { team: text("team"), name: text("name"), kind: text("kind") as "webhook" | "slack", url: text("url") } });
    if (!data) return setErrors(formErrors(error, ["team", "name", "kind", "url"]));
    setErrors({ fields: {} });
    setCreating(false);
    if (data.secret) setSecret({ name: data.name, secret: data.secret });
    else props.notify(`${data.name}: channel added`);
    void list.reload();
  };
  const remove = (c: Channel) => confirm({
    title: `Remove the channel ${c.name}?`, action: "Remove channel",
    body: <p>Alerts stop going to {c.url}. Its dead letters stay listed.</p>,
    run: async () => {
      const { error, response } = await api.DELETE("/api/alerts/channels/{id}", { params: { path: { id: c.id } } });
      props.notify(error ? messageOf(error, response) : `${c.name}: channel removed`);
      void list.reload();
    },
  });

  return (
    <section class="panel" aria-labelledby="channels-title" data-testid="alert-channels">
      <div class="panel-head"><h2 id="channels-title">Channels</h2><span class="spacer" />
        <Show when={can("alerts", "create")}><button type="button" class="primary" onClick={() => setCreating(true)} data-testid="new-channel">Add channel</button></Show></div>
      <Show when={secret()}>{(s) => (
        <div class="secret-once" role="region" aria-label="Channel signing secret" data-testid="channel-secret">
          <p><strong>{s().name}'s signing secret, shown only now:</strong> receivers verify each delivery's <code>webhook-signature</code> with it (Standard Webhooks).</p>
          <p><code>{s().secret}</code></p>
          <div class="actions start"><button type="button" onClick={() => setSecret(null)}>I have saved it</button></div>
        </div>
      )}</Show>
      <Show when={creating()}>
        <form class="form" onSubmit={submit} aria-label="Add channel" data-testid="channel-form" novalidate>
          <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
          <div class="form-grid">
            <label>Team<input name="team" value="default" aria-invalid={!!err("team")} aria-describedby={err("team") ? "err-ch-team" : undefined} /><FieldError id="err-ch-team" message={err("team")} /></label>
            <label>Name<input name="name" placeholder="ops-hook" aria-invalid={!!err("name")} aria-describedby={err("name") ? "err-ch-name" : undefined} /><FieldError id="err-ch-name" message={err("name")} /></label>
            <label>Kind<select name="kind"><option value="webhook">webhook (signed JSON)</option><option value="slack">slack (incoming webhook)</option></select></label>
            <label class="wide">URL<input name="url" placeholder="https://hooks.example.com/redforge" aria-invalid={!!err("url")} aria-describedby={err("url") ? "err-ch-url" : undefined} /><FieldError id="err-ch-url" message={err("url")} /></label>
          </div>
          <div class="actions"><button type="button" onClick={() => setCreating(false)}>Cancel</button><button type="submit" class="primary">Add channel</button></div>
        </form>
      </Show>
      <Show when={list.items().length > 0}>
        <table class="grid">
          <thead><tr><th>Name</th><th>Team</th><th>Kind</th><th>URL</th><th>Secret</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={list.items()}>{(c) => (
              <tr>
                <td class="strong">{c.name}</td><td class="muted">{c.team}</td><td>{c.kind}</td><td class="mono small">{c.url}</td>
                <td class="muted">{c.kind === "webhook" ? "set (write-only)" : "none"}</td>
                <td class="row-actions"><Show when={can("alerts", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(c)}>Remove</button></Show></td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={<p class="muted">No channels: alerts show here and on /ws/fleet only. Add a webhook or Slack channel to be told.</p>} />
      <ConfirmView />
    </section>
  );
}

function DeadLetters() {
  const now = useNow(10_000);
  const list = useCursorList((cursor) => api.GET("/api/alerts/notifications", { params: { query: { status: "dead", limit: 25, ...(cursor ? { cursor } : {}) } } }));
  return (
    <details class="panel" data-testid="dead-letters">
      <summary>Dead letters <span class="muted">(deliveries that failed every retry)</span></summary>
      <Show when={list.items().length > 0}>
        <table class="grid">
          <thead><tr><th>Event</th><th>Team</th><th class="num">Attempts</th><th>Last error</th><th>When</th></tr></thead>
          <tbody>
            <For each={list.items()}>{(n) => (
              <tr><td>{n.event}</td><td class="muted">{n.team}</td><td class="num">{n.attempts}</td><td class="mono small">{n.lastError ?? "—"}</td><td class="muted" title={n.createdAt}>{ago(n.createdAt, now())}</td></tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={<p class="muted">None: every notification was delivered or is still being retried.</p>} />
    </details>
  );
}
