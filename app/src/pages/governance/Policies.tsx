/** Policies: list, create and edit (the rule as JSON, checked by the API against its kind), enable or disable, and a dry run. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { formErrors, type FormErrors } from "../../api/fieldErrors.ts";
import { can } from "../../api/me.ts";
import type { ApiBody, components } from "../../../../protocol/api/client.ts";
import { FieldError, StatusBadge, useConfirm } from "../../ui/bits.tsx";

type Policy = components["schemas"]["Policy"];
type Kind = ApiBody<"/api/policies", "post">["kind"];
type Rule = ApiBody<"/api/policies", "post">["rule"];
const KINDS: Kind[] = ["approved_models", "deployment_window", "max_replicas"];
/** A starting rule per kind, so the editor begins from something the API accepts. */
const TEMPLATES: Record<Kind, unknown> = {
  approved_models: { models: ["gpt-4o-mini"], providers: ["openai"] },
  deployment_window: { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00", timezone: "UTC", selector: { team: "default" } },
  max_replicas: { max: 1, selector: {} },
};

export function Policies() {
  const [policies, { refetch }] = createResource(async () => {
    const { data, error, response } = await api.GET("/api/policies");
    if (!data) throw new Error(messageOf(error, response));
    return data.items;
  });
  const [editing, setEditing] = createSignal<Policy | "new" | null>(null);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const toggle = async (p: Policy) => {
    const { error, response } = await api.PATCH("/api/policies/{id}", { params: { path: { id: p.id } }, body: { enabled: !p.enabled } });
    setNotice(error ? `${p.name}: ${messageOf(error, response)}` : `${p.name} ${p.enabled ? "disabled" : "enabled"}`);
    void refetch();
  };
  const remove = (p: Policy) => confirm({
    title: `Delete the policy ${p.name}?`, action: "Delete policy", body: <p>What it forbade is allowed again at once.</p>,
    run: async () => { const { error, response } = await api.DELETE("/api/policies/{id}", { params: { path: { id: p.id } } }); setNotice(error ? messageOf(error, response) : `${p.name} deleted`); void refetch(); },
  });
  return (
    <>
      <div class="toolbar"><Show when={can("policies", "create")}><button type="button" class="primary" onClick={() => setEditing("new")}>New policy</button></Show></div>
      <Show when={notice()}><p class="notice" role="status">{notice()}</p></Show>
      <Show when={policies.error}><p class="error" role="alert">{String((policies.error as Error).message)}</p></Show>
      <Show when={editing()}>{(e) => <PolicyForm policy={e() === "new" ? null : (e() as Policy)} onClose={() => setEditing(null)} onSaved={(n) => { setEditing(null); setNotice(`${n} saved`); void refetch(); }} />}</Show>
      <Show when={(policies.latest ?? []).length > 0} fallback={<div class="empty"><p>No policies: every deploy, scale and model call is allowed (quotas still apply). Add one to limit deployment windows, replicas or approved models.</p></div>}>
        <table class="grid" data-testid="policies-table">
          <thead><tr><th>Name</th><th>Kind</th><th>Rule</th><th>State</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={policies.latest ?? []}>{(p) => (
              <tr>
                <td class="strong">{p.name}</td>
                <td>{p.kind.replaceAll("_", " ")}</td>
                <td class="details mono" title={JSON.stringify(p.rule)}>{JSON.stringify(p.rule)}</td>
                <td><StatusBadge status={p.enabled ? "enabled" : "disabled"} tone={p.enabled ? "ok" : "idle"} /></td>
                <td class="row-actions">
                  <Show when={can("policies", "update")}>
                    <button type="button" onClick={() => setEditing(p)}>Edit</button>
                    <button type="button" onClick={() => void toggle(p)}>{p.enabled ? "Disable" : "Enable"}</button>
                  </Show>
                  <Show when={can("policies", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(p)}>Delete</button></Show>
                </td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <DryRun />
      <ConfirmView />
    </>
  );
}

function PolicyForm(props: { policy: Policy | null; onClose: () => void; onSaved: (name: string) => void }) {
  const [kind, setKind] = createSignal<Kind>((props.policy?.kind as Kind | undefined) ?? "max_replicas");
  const [rule, setRule] = createSignal(JSON.stringify(props.policy?.rule ?? TEMPLATES[kind()], null, 2));
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    let parsed: Rule;
    try { parsed = JSON.parse(rule()) as Rule; } catch (err) { return setErrors({ fields: { rule: `not JSON: ${(err as Error).message}` } }); }
    const name = String(f.get("name") ?? "").trim();
    const enabled = f.get("enabled") === "on";
    const answer = props.policy
      ? await api.PATCH("/api/policies/{id}", { params: { path: { id: props.policy.id } }, body: { name, rule: parsed, enabled } })
      : await api.POST("/api/policies", { body: { name, kind: kind(), rule: parsed, enabled } });
    if (!answer.data) return setErrors(formErrors(answer.error, ["name", "kind", "rule", "enabled"]));
    props.onSaved(answer.data.name);
  };
  return (
    <form class="panel form" onSubmit={submit} novalidate aria-labelledby="policy-title">
      <h2 id="policy-title">{props.policy ? `Edit ${props.policy.name}` : "New policy"}</h2>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <label>Name<input name="name" value={props.policy?.name ?? ""} aria-invalid={!!errors().fields.name} /><FieldError id="err-policy-name" message={errors().fields.name} /></label>
        <label>Kind
          <select name="kind" disabled={!!props.policy} value={kind()} onChange={(e) => { const k = e.currentTarget.value as Kind; setKind(k); setRule(JSON.stringify(TEMPLATES[k], null, 2)); }}>
            <For each={KINDS}>{(k) => <option value={k}>{k.replaceAll("_", " ")}</option>}</For>
          </select>
        </label>
        <label class="check"><input type="checkbox" name="enabled" checked={props.policy?.enabled ?? true} /> enabled</label>
        <label class="wide">Rule (JSON)
          <textarea rows="6" spellcheck={false} value={rule()} onInput={(e) => setRule(e.currentTarget.value)} aria-invalid={!!errors().fields.rule} aria-describedby={errors().fields.rule ? "err-policy-rule" : undefined} />
          <FieldError id="err-policy-rule" message={errors().fields.rule} />
        </label>
      </div>
      <div class="actions"><button type="button" onClick={() => props.onClose()}>Cancel</button><button type="submit" class="primary">Save policy</button></div>
    </form>
  );
}

type Evaluate = ApiBody<"/api/policies/evaluate", "post">;

function DryRun() {
  const [instances] = createResource(async () => (await api.GET("/api/instances", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const [action, setAction] = createSignal<Evaluate["action"]>("deploy");
  const [result, setResult] = createSignal<components["schemas"]["PolicyDecision"] | null>(null);
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const instanceId = String(f.get("instanceId") ?? "");
    const body: Evaluate = action() === "deploy" ? { action: "deploy", instanceId }
      : action() === "scale" ? { action: "scale", instanceId, replicas: Number(f.get("replicas") ?? 1) }
      : { action: "model_call", model: String(f.get("model") ?? "").trim(), ...(String(f.get("provider") ?? "").trim() ? { provider: String(f.get("provider")).trim() } : {}), ...(instanceId ? { instanceId } : {}) };
    const { data, error } = await api.POST("/api/policies/evaluate", { body });
    if (!data) { setResult(null); return setErrors(formErrors(error, ["action", "instanceId", "replicas", "model", "provider"])); }
    setErrors({ fields: {} });
    setResult(data);
  };
  return (
    <section class="panel" aria-labelledby="dryrun-title">
      <h2 id="dryrun-title">Dry run</h2>
      <p class="muted small">Would this be allowed now? Nothing acts; the same policies and quotas as the real call decide.</p>
      <form class="form" onSubmit={submit} novalidate data-testid="policy-dry-run">
        <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
        <div class="form-grid">
          <label>Action<select name="action" value={action()} onChange={(e) => setAction(e.currentTarget.value as Evaluate["action"])}><option value="deploy">deploy</option><option value="scale">scale</option><option value="model_call">model call</option></select></label>
          <label>Instance<select name="instanceId" aria-invalid={!!errors().fields.instanceId}><Show when={action() === "model_call"}><option value="">any</option></Show><For each={instances.latest ?? []}>{(i) => <option value={i.id}>{i.name}</option>}</For></select><FieldError id="err-eval-instance" message={errors().fields.instanceId} /></label>
          <Show when={action() === "scale"}><label>Replicas<input name="replicas" type="number" min="0" value="1" aria-invalid={!!errors().fields.replicas} /><FieldError id="err-eval-replicas" message={errors().fields.replicas} /></label></Show>
          <Show when={action() === "model_call"}>
            <label>Model<input name="model" placeholder="gpt-4o-mini" aria-invalid={!!errors().fields.model} /><FieldError id="err-eval-model" message={errors().fields.model} /></label>
            <label>Provider<input name="provider" placeholder="openai" /></label>
          </Show>
        </div>
        <div class="actions"><button type="submit" class="primary">Evaluate</button></div>
      </form>
      <Show when={result()}>{(r) => (
        <p class={r().allowed ? "notice" : "failure"} role="status" data-testid="dry-run-result">
          <Show when={!r().allowed} fallback={<strong class="ok-text">Allowed.</strong>}>
            <strong class="bad-text">Denied</strong>{"policy" in r() ? ` by ${(r() as { policy: string }).policy}` : ""}{"code" in r() ? ` (${(r() as { code: string }).code})` : ""}: {"reason" in r() ? (r() as { reason: string }).reason : ""}
          </Show>
        </p>
      )}</Show>
    </section>
  );
}
