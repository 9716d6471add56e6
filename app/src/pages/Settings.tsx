/** Settings: model prices, the encryption key's re-seal state, and the control plane's health; what the API does not serve says so. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { can } from "../api/me.ts";
import type { components } from "../../../protocol/api/client.ts";
import { FieldError, StatusBadge, useConfirm } from "../ui/bits.tsx";
import { formatCount, formatInstant, formatUsd } from "../ui/format.ts";

type Price = components["schemas"]["ModelPrice"];
type Reseal = components["schemas"]["ResealResult"];

export function Settings() {
  return (
    <section class="page">
      <div class="page-head"><h1>Settings</h1></div>
      <ControlPlaneHealth />
      <ModelPrices />
      <EncryptionKey />
    </section>
  );
}

function ControlPlaneHealth() {
  const [health, { refetch }] = createResource(async () => {
    const { data, error, response } = await api.GET("/api/health");
    // A degraded control plane answers 503 with the same body: the checks are what this panel shows.
    const body = data ?? (error && "checks" in error ? (error as unknown as NonNullable<typeof data>) : null);
    if (!body) throw new Error(`the control plane answered ${response.status} ${response.statusText}`);
    return body;
  });
  return (
    <section class="panel" aria-labelledby="health-cp-title" data-testid="control-plane-health">
      <div class="panel-head"><h2 id="health-cp-title">Control plane</h2><span class="spacer" /><button type="button" onClick={() => void refetch()}>Check again</button></div>
      <Show when={health.error}><p class="error" role="alert">{String((health.error as Error).message)}</p></Show>
      <Show when={health.latest}>{(h) => (
        <table class="grid">
          <thead><tr><th>Check</th><th>State</th><th class="num">Latency</th><th>Error</th></tr></thead>
          <tbody>
            <For each={[["database (Postgres)", h().checks.database], ["KV (Redis or the KV Durable Object)", h().checks.kv], ["scheduler (QStash)", h().checks.scheduler]] as const}>{([name, c]) => (
              <tr><td>{name}</td><td><StatusBadge status={c.ok ? "ok" : "down"} tone={c.ok ? "ok" : "bad"} /></td><td class="num muted">{Math.round(c.latencyMs)} ms</td><td class="muted">{c.error ?? ""}</td></tr>
            )}</For>
          </tbody>
        </table>
      )}</Show>
      <Show when={health.latest}>{(h) => (
        <p class="small">Overall <strong>{h().status}</strong> · environment <code>{h().environment}</code> · checked {formatInstant(h().timestamp)} · version <code data-testid="cp-version">{h().version}</code></p>
      )}</Show>
    </section>
  );
}

function ModelPrices() {
  const [prices, { refetch }] = createResource(async () => {
    const { data, error, response } = await api.GET("/api/ai/prices");
    if (!data) throw new Error(messageOf(error, response));
    return data.items;
  });
  const [editing, setEditing] = createSignal<Price | "new" | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const [notice, setNotice] = createSignal<string | null>(null);
  const remove = (p: Price) => confirm({
    title: `Delete the price of ${p.model}?`, action: "Delete price", body: <p>Calls to it arriving from now on are stored unpriced. Costs already stored stay.</p>,
    run: async () => { const { error, response } = await api.DELETE("/api/ai/prices/{id}", { params: { path: { id: p.id } } }); setNotice(error ? messageOf(error, response) : `${p.model}: price deleted`); void refetch(); },
  });
  return (
    <section class="panel" aria-labelledby="prices-title">
      <div class="panel-head"><h2 id="prices-title">Model prices</h2><span class="spacer" />
        <Show when={can("ai_prices", "update")}><button type="button" class="primary" onClick={() => setEditing("new")}>Add a price</button></Show></div>
      <p class="muted small">US dollars per million tokens. A call is priced when it arrives, with the price of that moment.</p>
      <Show when={notice()}><p class="notice" role="status">{notice()}</p></Show>
      <Show when={prices.error}><p class="error" role="alert">{String((prices.error as Error).message)}</p></Show>
      <Show when={editing()}>{(e) => <PriceForm price={e() === "new" ? null : (e() as Price)} onClose={() => setEditing(null)} onSaved={(m) => { setEditing(null); setNotice(`${m}: price saved`); void refetch(); }} />}</Show>
      <Show when={(prices.latest ?? []).length > 0} fallback={<p class="muted">No prices: AI decisions are stored unpriced until a price is set.</p>}>
        <table class="grid" data-testid="prices-table">
          <thead><tr><th>Provider</th><th>Model</th><th class="num">Input / Mtok</th><th class="num">Output / Mtok</th><th>Updated</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={prices.latest ?? []}>{(p) => (
              <tr>
                <td>{p.provider}</td><td class="strong">{p.model}</td>
                <td class="num">{formatUsd(p.inputUsdPerMtok)}</td><td class="num">{formatUsd(p.outputUsdPerMtok)}</td>
                <td class="muted">{formatInstant(p.updatedAt)}</td>
                <td class="row-actions">
                  <Show when={can("ai_prices", "update")}><button type="button" onClick={() => setEditing(p)}>Edit</button></Show>
                  <Show when={can("ai_prices", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(p)}>Delete</button></Show>
                </td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ConfirmView />
    </section>
  );
}

function PriceForm(props: { price: Price | null; onClose: () => void; onSaved: (model: string) => void }) {
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const err = (f: string) => errors().fields[f];
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const num = (k: string) => { const raw = String(f.get(k) ?? "").trim(); return raw === "" ? Number.NaN : Number(raw); };
    const body = { provider: String(f.get("provider") ?? "").trim(), model: String(f.get("model") ?? "").trim(), inputUsdPerMtok: num("inputUsdPerMtok"), outputUsdPerMtok: num("outputUsdPerMtok") };
    const { data, error } = await api.PUT("/api/ai/prices", { body });
    if (!data) return setErrors(formErrors(error, ["provider", "model", "inputUsdPerMtok", "outputUsdPerMtok"]));
    props.onSaved(data.model);
  };
  return (
    <form class="form subpanel" onSubmit={submit} novalidate aria-label="Model price">
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <label>Provider<input name="provider" value={props.price?.provider ?? ""} readOnly={!!props.price} aria-invalid={!!err("provider")} /><FieldError id="err-price-provider" message={err("provider")} /></label>
        <label>Model<input name="model" value={props.price?.model ?? ""} readOnly={!!props.price} aria-invalid={!!err("model")} /><FieldError id="err-price-model" message={err("model")} /></label>
        <label>Input $ / Mtok<input name="inputUsdPerMtok" type="number" step="any" min="0" value={props.price?.inputUsdPerMtok ?? ""} aria-invalid={!!err("inputUsdPerMtok")} /><FieldError id="err-price-in" message={err("inputUsdPerMtok")} /></label>
        <label>Output $ / Mtok<input name="outputUsdPerMtok" type="number" step="any" min="0" value={props.price?.outputUsdPerMtok ?? ""} aria-invalid={!!err("outputUsdPerMtok")} /><FieldError id="err-price-out" message={err("outputUsdPerMtok")} /></label>
      </div>
      <div class="actions"><button type="button" onClick={() => props.onClose()}>Cancel</button><button type="submit" class="primary">Save price</button></div>
    </form>
  );
}

/**
 * The API serves no rotation status of its own; the last re-seal's audit row (SECRETS_RESEALED) says which
 * key id sealed everything and what no key could open. Re-sealing is idempotent, so the button is safe to press.
 */
type EncryptionStatus = components["schemas"]["EncryptionStatus"];

/** Which key seals how many values of each column: an old key can go once no value names it. */
function RotationStatus(props: { status: EncryptionStatus }) {
  const keyIds = () => [props.status.currentKeyId, ...props.status.previousKeyIds.filter((k) => k !== props.status.currentKeyId),
    ...new Set(Object.values(props.status.columns).flatMap((c) => Object.keys(c)).filter((k) => k !== props.status.currentKeyId && !props.status.previousKeyIds.includes(k)))];
  const role = (k: string) => (k === props.status.currentKeyId ? "current" : props.status.previousKeyIds.includes(k) ? "previous" : k === "v1" ? "before key ids" : "not configured");
  return (
    <div data-testid="rotation-status">
      <p>
        Current key <code>{props.status.currentKeyId}</code>
        {props.status.previousKeyIds.length ? <> · previous {props.status.previousKeyIds.map((k) => <code>{k}</code>)}</> : " · no previous key configured"}
        {" · "}
        <strong class={props.status.notCurrent > 0 ? "bad-text" : "ok-text"}>{props.status.notCurrent > 0 ? `${formatCount(props.status.notCurrent)} value(s) not under the current key: re-seal` : "every value is under the current key"}</strong>
      </p>
      <table class="grid">
        <thead><tr><th>Sealed column</th><For each={keyIds()}>{(k) => <th class="num"><code>{k}</code> <span class="muted">({role(k)})</span></th>}</For></tr></thead>
        <tbody>
          <For each={Object.entries(props.status.columns)}>{([column, byKey]) => (
            <tr><td class="mono">{column}</td><For each={keyIds()}>{(k) => <td class="num">{formatCount(byKey[k] ?? 0)}</td>}</For></tr>
          )}</For>
        </tbody>
      </table>
    </div>
  );
}

function EncryptionKey() {
  const [last, { refetch }] = createResource(() => can("audit", "read"), async (allowed) => {
    if (!allowed) return null;
    return (await api.GET("/api/audit", { params: { query: { action: "SECRETS_RESEALED", limit: 1 } } })).data?.items[0] ?? null;
  });
  const [result, setResult] = createSignal<Reseal | null>(null);
  const [error, setError] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);
  const [confirm, ConfirmView] = useConfirm();
  const reseal = () => confirm({
    title: "Re-seal every stored secret?", action: "Re-seal now",
    body: <p>Each sealed value is opened with whichever configured key opens it and sealed again under the current key. Safe to repeat; values no key opens are counted, not lost.</p>,
    run: async () => {
      setBusy(true);
      const { data, error: err, response } = await api.POST("/api/admin/reseal", { body: { batchSize: 200 } });
      setBusy(false);
      if (!data) { setError(messageOf(err, response)); return; }
      setError(null); setResult(data); void refetch(); void refetchStatus();
    },
  });
  const [status, { refetch: refetchStatus }] = createResource(() => can("config", "read"), async (allowed) => {
    if (!allowed) return null;
    const { data, error: err, response } = await api.GET("/api/admin/encryption");
    if (!data) throw new Error(messageOf(err, response));
    return data;
  });
  const details = () => (last.latest?.details ?? null) as { keyId?: string; current?: number; resealed?: number; failed?: number } | null;
  return (
    <section class="panel" aria-labelledby="key-title">
      <div class="panel-head"><h2 id="key-title">Encryption key</h2><span class="spacer" />
        <Show when={can("config", "update")}><button type="button" onClick={reseal} disabled={busy()}>{busy() ? "Re-sealing…" : "Re-seal now"}</button></Show></div>
      <p class="muted small">Rotation: set the new key as <code>REDFORGE_ENCRYPTION_KEY</code>, the old one in <code>REDFORGE_ENCRYPTION_KEYS_PREVIOUS</code>, re-seal, then drop the old one (docs/compliance.md). </p>
      <Show when={status.error}><p class="error" role="alert">{String((status.error as Error).message)}</p></Show>
      <Show when={status.latest}>{(st) => <RotationStatus status={st()} />}</Show>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={result()}>{(r) => <p class="notice" role="status">Key <code>{r().keyId}</code>: {formatCount(r().current)} already current, {formatCount(r().resealed)} re-sealed, <span class={r().failed > 0 ? "bad-text" : ""}>{formatCount(r().failed)} no key could open</span>.</p>}</Show>
      <Show when={details()} fallback={<p class="muted">{can("audit", "read") ? "No re-seal has run yet." : "Your role cannot read the audit log, where re-seals are recorded."}</p>}>{(d) => (
        <p>Last re-seal {formatInstant(last.latest!.timestamp)}: key id <code>{d().keyId ?? "?"}</code>, {formatCount(d().current ?? 0)} current, {formatCount(d().resealed ?? 0)} re-sealed, <span class={(d().failed ?? 0) > 0 ? "bad-text" : ""}>{formatCount(d().failed ?? 0)} failed</span>.</p>
      )}</Show>
      <ConfirmView />
    </section>
  );
}
