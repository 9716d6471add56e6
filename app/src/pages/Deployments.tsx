/** Start a blue-green deployment from pasted flow JSON, and the history with a status filter. */
import { A, useNavigate } from "@solidjs/router";
import { createResource, createSignal, For, Show } from "solid-js";
import { api } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import { ListFooter } from "../ui/ListFooter.tsx";
import type { ApiBody } from "../../../protocol/api/client.ts";
import type { Deployment } from "../deployments/timeline.ts";
import { ago, FieldError, StatusBadge } from "../ui/bits.tsx";

const STATUSES = ["pending", "in_progress", "paused", "completed", "failed", "rolled_back"] as const;
type Status = (typeof STATUSES)[number];
export const DEPLOYMENT_TONE: Record<string, string> = { completed: "ok", in_progress: "busy", pending: "busy", paused: "idle", failed: "bad", rolled_back: "bad" };

export function Deployments() {
  const [status, setStatus] = createSignal<Status | "">("");
  const [instances] = createResource(async () => (await api.GET("/api/instances", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const nameOf = (id: string) => instances.latest?.find((i) => i.id === id)?.name ?? id.slice(0, 8);
  const list = useCursorList((cursor) => api.GET("/api/deployments", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}), ...(status() ? { status: status() as Status } : {}) } } }));

  return (
    <section class="page">
      <div class="page-head"><h1>Deployments</h1></div>
      <Show when={can("deployments", "create")}><StartDeployment instances={instances.latest ?? []} /></Show>
      <div class="toolbar">
        <select aria-label="Filter by status" value={status()} onChange={(e) => { setStatus(e.currentTarget.value as Status | ""); void list.reload(); }}>
          <option value="">any status</option>
          <For each={STATUSES}>{(s) => <option value={s}>{s.replace("_", " ")}</option>}</For>
        </select>
      </div>
      <Show when={list.items().length > 0}><DeploymentRows items={list.items()} nameOf={nameOf} /></Show>
      <ListFooter list={list} empty={
        <div class="empty"><p><strong>No deployments{status() ? ` that are ${status().replace("_", " ")}` : " yet"}.</strong></p>
          <p>Paste an instance's new flow JSON above to roll it out blue-green; its flows need a <code>redforge-gate</code> at each entry to hold messages during the switch (docs/deployments.md).</p></div>
      } />
    </section>
  );
}

/** Deployments as table rows (the history here and on an instance's page). */
export function DeploymentRows(props: { items: Deployment[]; nameOf: (instanceId: string) => string; hideInstance?: boolean }) {
  return (
    <table class="grid" data-testid="deployments-table">
      <thead><tr><th>Deployment</th><Show when={!props.hideInstance}><th>Instance</th></Show><th>Status</th><th>Phase</th><th>Held / lost</th><th>Failure</th><th>Started</th></tr></thead>
      <tbody>
        <For each={props.items}>{(d) => (
          <tr>
            <td><A href={`/deployments/${d.id}`}>{d.id.slice(0, 8)}</A>{d.toStack && d.fromStack !== d.toStack ? <span class="muted"> · stack {d.fromStack} → {d.toStack}</span> : null}</td>
            <Show when={!props.hideInstance}><td><A href={`/instances/${d.instanceId}`}>{props.nameOf(d.instanceId)}</A></td></Show>
            <td><StatusBadge status={d.status} tone={DEPLOYMENT_TONE[d.status] ?? "unknown"} /></td>
            <td class="muted">{d.phase ?? "—"}</td>
            <td class="muted">{d.metrics.messagesHeld} / {d.metrics.messagesLost}</td>
            <td class="muted">{d.error?.code ?? ""}</td>
            <td class="muted" title={d.createdAt}>{ago(d.createdAt)}</td>
          </tr>
        )}</For>
      </tbody>
    </table>
  );
}

const FIELDS = ["instanceId", "flows", "holdDuring", "verify", "analysisSeconds", "rollbackWindowSeconds"] as const;

/** An optional whole-number field: absent when empty (the API's default applies), NaN passes through for the API to refuse. */
function seconds(f: FormData, name: string): Record<string, number> {
  const raw = String(f.get(name) ?? "").trim();
  return raw ? { [name]: Number(raw) } : {};
}

function StartDeployment(props: { instances: { id: string; name: string; status: string }[] }) {
  const navigate = useNavigate();
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    let flows: unknown;
    try { flows = JSON.parse(String(f.get("flows") ?? "")); } catch (err) {
      return setErrors({ fields: { flows: `not JSON: ${(err as Error).message}` } });
    }
    if (!Array.isArray(flows)) return setErrors({ fields: { flows: "a Node-RED flow export is a JSON array of nodes" } });
    const body: ApiBody<"/api/deployments", "post"> = {
      instanceId: String(f.get("instanceId") ?? ""),
      flows: flows as NonNullable<ApiBody<"/api/deployments", "post">["flows"]>,
      holdDuring: f.get("holdDuring") === "deploy" ? "deploy" : "switch",
      ...(f.get("pause") ? { verify: { pause: true } } : {}),
      ...seconds(f, "analysisSeconds"),
      ...seconds(f, "rollbackWindowSeconds"),
    };
    setBusy(true);
    const { data, error } = await api.POST("/api/deployments", { body });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, FIELDS));
    navigate(`/deployments/${data.id}`);
  };

  return (
    <details class="panel">
      <summary>Start a deployment</summary>
      <form class="form" onSubmit={submit} novalidate>
        <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
        <div class="form-grid">
          <label>Instance
            <select name="instanceId" aria-invalid={!!errors().fields.instanceId}>
              <For each={props.instances}>{(i) => <option value={i.id}>{i.name} ({i.status})</option>}</For>
            </select>
            <FieldError id="err-instanceId" message={errors().fields.instanceId} />
          </label>
          <label>Hold messages
            <select name="holdDuring">
              <option value="switch">only during the switch (shortest hold)</option>
              <option value="deploy">from drain until green serves</option>
            </select>
          </label>
          <label>Analysis after the switch (s)
            <input name="analysisSeconds" type="number" min="0" placeholder="5" aria-invalid={!!errors().fields.analysisSeconds} />
            <FieldError id="err-analysisSeconds" message={errors().fields.analysisSeconds} />
          </label>
          <label>Rollback window (s)
            <input name="rollbackWindowSeconds" type="number" min="0" placeholder="60" aria-invalid={!!errors().fields.rollbackWindowSeconds} />
            <FieldError id="err-rollbackWindowSeconds" message={errors().fields.rollbackWindowSeconds} />
          </label>
          <label class="check"><input type="checkbox" name="pause" /> pause after verify, to promote by hand</label>
          <label class="wide">Flow JSON <span class="muted">the whole flow export (an array of nodes)</span>
            <textarea name="flows" rows="6" spellcheck={false} placeholder='[{"id": "…", "type": "tab", …}]' aria-invalid={!!errors().fields.flows} />
            <FieldError id="err-flows" message={errors().fields.flows} />
          </label>
        </div>
        <div class="actions"><button type="submit" class="primary" disabled={busy() || props.instances.length === 0}>{busy() ? "Starting…" : "Deploy blue-green"}</button></div>
      </form>
    </details>
  );
}
