/** Compliance reports: build one for a time range, list the stored ones, download one and check it against its recorded SHA-256. */
import { createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { filenameOf, saveBlob, sha256Hex } from "../../api/download.ts";
import { formErrors, type FormErrors } from "../../api/fieldErrors.ts";
import { can } from "../../api/me.ts";
import { useCursorList } from "../../api/useCursorList.ts";
import type { ApiBody, components } from "../../../../protocol/api/client.ts";
import { FieldError } from "../../ui/bits.tsx";
import { formatBytes, formatInstant, localInputToIso } from "../../ui/format.ts";
import { ListFooter } from "../../ui/ListFooter.tsx";

type Report = components["schemas"]["Report"];
type Create = ApiBody<"/api/reports", "post">;
const KINDS: Create["kind"][] = ["audit_trail", "ai_decisions", "access", "data_retention"];

export function Reports() {
  const list = useCursorList((cursor) => api.GET("/api/reports", { params: { query: { limit: 25, ...(cursor ? { cursor } : {}) } } }));
  const [checks, setChecks] = createSignal<Record<string, string>>({});
  const [error, setError] = createSignal<string | null>(null);

  const download = async (r: Report) => {
    setChecks({ ...checks(), [r.id]: "downloading…" });
    const { data, error: err, response } = await api.GET("/api/reports/{id}/download", { params: { path: { id: r.id } }, parseAs: "blob" });
    if (!data) { setChecks({ ...checks(), [r.id]: "" }); return setError(messageOf(err, response)); }
    const digest = await sha256Hex(data);
    setChecks({ ...checks(), [r.id]: digest === r.digest ? "digest matches" : `digest differs: ${digest.slice(0, 12)}…` });
    saveBlob(data, filenameOf(response, `${r.kind}-${r.id.slice(0, 8)}.${r.format === "ndjson" ? "ndjson" : r.format}`));
  };

  return (
    <>
      <Show when={can("reports", "create")}><CreateReport onCreated={() => void list.reload()} /></Show>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={list.items().length > 0}>
        <table class="grid" data-testid="reports-table">
          <thead><tr><th>Kind</th><th>Framework</th><th>Range</th><th>Format</th><th>Size</th><th>SHA-256</th><th>Trigger</th><th>Built</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={list.items()}>{(r) => (
              <tr>
                <td class="strong">{r.kind.replaceAll("_", " ")}</td>
                <td>{r.framework ?? "plain"}</td>
                <td class="muted nowrap">{formatInstant(r.from)} → {formatInstant(r.to)}</td>
                <td>{r.format}</td>
                <td class="muted num">{formatBytes(r.size)}</td>
                <td class="mono muted" title={r.digest}>{r.digest.slice(0, 16)}…</td>
                <td class="muted">{r.trigger.replace("_", " ")}</td>
                <td class="muted">{formatInstant(r.createdAt)}</td>
                <td class="row-actions"><button type="button" onClick={() => void download(r)}>Download</button> <span class={checks()[r.id]?.startsWith("digest matches") ? "ok-text small" : "small"} role="status">{checks()[r.id] ?? ""}</span></td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={<div class="empty"><p>No reports yet. Build one above, or set a schedule under Schedules and retention.</p></div>} />
    </>
  );
}

function CreateReport(props: { onCreated: () => void }) {
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const dayAgo = new Date(Date.now() - 86_400_000);
  const local = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const framework = String(f.get("framework") ?? "");
    setBusy(true);
    const { data, error } = await api.POST("/api/reports", { body: {
      kind: String(f.get("kind")) as Create["kind"],
      from: localInputToIso(String(f.get("from") ?? "")) ?? "",
      to: localInputToIso(String(f.get("to") ?? "")) ?? "",
      format: String(f.get("format")) as NonNullable<Create["format"]>,
      framework: framework ? (framework as NonNullable<Create["framework"]>) : null,
    } });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, ["kind", "framework", "from", "to", "format"]));
    setErrors({ fields: {} });
    props.onCreated();
  };
  const err = (f: string) => errors().fields[f];
  return (
    <details class="panel">
      <summary>Build a report</summary>
      <form class="form" onSubmit={submit} novalidate data-testid="create-report">
        <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
        <div class="form-grid">
          <label>Kind<select name="kind"><For each={KINDS}>{(k) => <option value={k}>{k.replaceAll("_", " ")}</option>}</For></select></label>
          <label>Framework<select name="framework"><option value="">plain</option><option value="hipaa">HIPAA</option><option value="soc2">SOC 2</option><option value="gdpr">GDPR</option></select></label>
          <label>From<input name="from" type="datetime-local" value={local(dayAgo)} aria-invalid={!!err("from")} /><FieldError id="err-report-from" message={err("from")} /></label>
          <label>To<input name="to" type="datetime-local" value={local(new Date())} aria-invalid={!!err("to")} /><FieldError id="err-report-to" message={err("to")} /></label>
          <label>Format<select name="format"><option value="json">JSON</option><option value="ndjson">NDJSON</option><option value="csv">CSV</option></select></label>
        </div>
        <div class="actions"><button type="submit" class="primary" disabled={busy()}>{busy() ? "Building…" : "Build report"}</button></div>
      </form>
    </details>
  );
}
