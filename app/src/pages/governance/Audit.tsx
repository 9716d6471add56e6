/** The audit log: search, the hash chain's verification, and export as NDJSON or CSV (with the API's verification trailer). */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { filenameOf, saveBlob } from "../../api/download.ts";
import { useCursorList } from "../../api/useCursorList.ts";
import type { components } from "../../../../protocol/api/client.ts";
import { AuditTable } from "../../ui/AuditTable.tsx";
import { formatCount, formatInstant, localInputToIso } from "../../ui/format.ts";
import { ListFooter } from "../../ui/ListFooter.tsx";

type Verification = components["schemas"]["AuditVerification"];
interface Filters { from?: string; to?: string; userId?: string; action?: string; resourceType?: string; resourceId?: string }

export function Audit() {
  const [filters, setFilters] = createSignal<Filters>({});
  const [users] = createResource(async () => (await api.GET("/api/users", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const userName = (id: string | null) => (id ? users.latest?.find((u) => u.id === id)?.username ?? id.slice(0, 8) : "system");
  const list = useCursorList((cursor) => api.GET("/api/audit", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}), ...filters() } } }));
  const [verification, setVerification] = createSignal<Verification | null>(null);
  const [busy, setBusy] = createSignal<string | null>(null);
  const [error, setError] = createSignal<string | null>(null);

  const search = (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim() || undefined;
    const next: Filters = {};
    for (const [k, v] of Object.entries({ from: localInputToIso(String(f.get("from") ?? "")), to: localInputToIso(String(f.get("to") ?? "")), userId: text("userId"), action: text("action"), resourceType: text("resourceType"), resourceId: text("resourceId") })) {
      if (v) next[k as keyof Filters] = v;
    }
    setFilters(next);
    void list.reload();
  };
  const verify = async () => {
    setBusy("verify");
    const { data, error: err, response } = await api.GET("/api/audit/verify");
    setBusy(null);
    if (!data) return setError(messageOf(err, response));
    setError(null);
    setVerification(data);
  };
  const exportAs = async (format: "ndjson" | "csv") => {
    setBusy(format);
    const { from, to } = filters();
    const { data, error: err, response } = await api.GET("/api/audit/export", { params: { query: { format, ...(from ? { from } : {}), ...(to ? { to } : {}) } }, parseAs: "blob" });
    setBusy(null);
    if (!data) return setError(messageOf(err, response));
    setError(null);
    saveBlob(data, filenameOf(response, `audit.${format}`));
  };

  return (
    <>
      <form class="panel form" onSubmit={search} aria-label="Search the audit log" data-testid="audit-search">
        <div class="form-grid">
          <label>From<input name="from" type="datetime-local" /></label>
          <label>To<input name="to" type="datetime-local" /></label>
          <label>User<select name="userId"><option value="">anyone</option><For each={users.latest ?? []}>{(u) => <option value={u.id}>{u.username}</option>}</For></select></label>
          <label>Action<input name="action" placeholder="INSTANCE_CREATED" /></label>
          <label>Resource type<input name="resourceType" placeholder="instance" /></label>
          <label>Resource id<input name="resourceId" /></label>
        </div>
        <div class="actions">
          <button type="button" onClick={() => void verify()} disabled={busy() === "verify"} data-testid="audit-verify">{busy() === "verify" ? "Verifying…" : "Verify the chain"}</button>
          <button type="button" onClick={() => void exportAs("ndjson")} disabled={!!busy()}>{busy() === "ndjson" ? "Exporting…" : "Export NDJSON"}</button>
          <button type="button" onClick={() => void exportAs("csv")} disabled={!!busy()} data-testid="audit-csv">{busy() === "csv" ? "Exporting…" : "Export CSV"}</button>
          <button type="submit" class="primary">Search</button>
        </div>
        <p class="muted small">Exports cover the time range (not the other filters) and end with the chain's verification trailer; docs/audit.md shows how to check one offline (<code>scripts/verify-audit-export.ts</code>).</p>
      </form>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={verification()}>{(v) => <VerificationResult v={v()} />}</Show>
      <Show when={list.items().length > 0}><AuditTable items={list.items()} userName={userName} testId="audit-table" /></Show>
      <ListFooter list={list} empty={<div class="empty"><p>No audit entry matches. Widen the time range or clear a filter.</p></div>} />
    </>
  );
}

function VerificationResult(props: { v: Verification }) {
  return (
    <Show when={props.v.ok ? props.v : null} fallback={
      <div class="failure" role="alert" data-testid="audit-verification">
        <p><strong class="bad-text">The chain is broken</strong> at row {"firstBroken" in props.v ? props.v.firstBroken.id : "?"} ({"firstBroken" in props.v ? props.v.firstBroken.reason.replaceAll("_", " ") : ""}) after checking {formatCount(props.v.rows)} rows.</p>
        <Show when={"firstBroken" in props.v ? props.v.firstBroken : null}>{(b) => <p class="mono small">expected {b().expected.slice(0, 16)}…, found {b().actual.slice(0, 16)}…</p>}</Show>
      </div>
    }>{(ok) => (
      <div class="notice" role="status" data-testid="audit-verification">
        <strong class="ok-text">Chain intact</strong>: {formatCount(ok().rows)} rows verified{ok().head ? <>, head #{ok().head!.id} <code>{ok().head!.hash.slice(0, 16)}…</code></> : null}
        <Show when={ok().checkpoint}>{(c) => <span class="muted"> · from the signed checkpoint #{c().id} up to row {c().upToId} ({formatInstant(c().createdAt)}), rows before it purged by retention</span>}</Show>
      </div>
    )}</Show>
  );
}
