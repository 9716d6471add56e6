/** The signed-in person's API keys: create one with a role and scopes (the key is shown once), revoke. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { formErrors, type FormErrors } from "../../api/fieldErrors.ts";
import { can } from "../../api/me.ts";
import { grantsOf, grantsText } from "../../governance/permissionTable.ts";
import { ago, FieldError, StatusBadge, useConfirm } from "../../ui/bits.tsx";
import { formatInstant } from "../../ui/format.ts";
import { PermissionPicker } from "../../ui/PermissionPicker.tsx";
import { useRoleNames } from "./Users.tsx";

export function ApiKeys() {
  const [keys, { refetch }] = createResource(async () => {
    const { data, error, response } = await api.GET("/api/api-keys");
    if (!data) throw new Error(messageOf(error, response));
    return data.items;
  });
  const [created, setCreated] = createSignal<{ name: string; key: string } | null>(null);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const revoke = (k: { id: string; name: string }) => confirm({
    title: `Revoke ${k.name}?`, action: "Revoke key", body: <p>Anything using this key gets 401 from its next call. This cannot be undone.</p>,
    run: async () => {
      const { error, response } = await api.DELETE("/api/api-keys/{id}", { params: { path: { id: k.id } } });
      setNotice(error ? `${k.name}: ${messageOf(error, response)}` : `${k.name} revoked`);
      void refetch();
    },
  });

  return (
    <>
      <Show when={can("apikeys", "create")}><CreateKey onCreated={(k) => { setCreated(k); void refetch(); }} /></Show>
      <Show when={created()}>{(k) => (
        <div class="secret-once" role="status" data-testid="new-key">
          <p><strong>{k().name}</strong>: copy this key now. It is shown only this once; the API keeps only its hash.</p>
          <p><code data-testid="new-key-value">{k().key}</code> <button type="button" onClick={() => void navigator.clipboard?.writeText(k().key)}>Copy</button> <button type="button" class="link" onClick={() => setCreated(null)}>I have stored it</button></p>
        </div>
      )}</Show>
      <Show when={notice()}><p class="notice" role="status">{notice()}</p></Show>
      <Show when={keys.error}><p class="error" role="alert">{String((keys.error as Error).message)}</p></Show>
      <Show when={(keys.latest ?? []).length > 0} fallback={<div class="empty"><p>You have no API keys. Create one for a script or CI job; give it only the scopes it needs.</p></div>}>
        <table class="grid" data-testid="keys-table">
          <thead><tr><th>Name</th><th>Prefix</th><th>Role</th><th>Scopes</th><th>State</th><th>Expires</th><th>Last used</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={keys.latest ?? []}>{(k) => (
              <tr data-key={k.name}>
                <td class="strong">{k.name}</td>
                <td class="mono muted">{k.prefix}…</td>
                <td>{k.role}</td>
                <td class="details" title={grantsText(k.scopes)}>{k.scopes ? grantsText(k.scopes) : <span class="muted">all of the role</span>}</td>
                <td><StatusBadge status={k.revokedAt ? "revoked" : "active"} tone={k.revokedAt ? "idle" : "ok"} /></td>
                <td class="muted">{k.expiresAt ? formatInstant(k.expiresAt) : "never"}</td>
                <td class="muted">{ago(k.lastUsedAt)}</td>
                <td class="row-actions"><Show when={!k.revokedAt && can("apikeys", "delete")}><button type="button" class="danger-quiet" onClick={() => revoke(k)}>Revoke</button></Show></td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ConfirmView />
    </>
  );
}

function CreateKey(props: { onCreated: (k: { name: string; key: string }) => void }) {
  const roleNames = useRoleNames();
  const [ticked, setTicked] = createSignal(new Set<string>());
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const err = (f: string) => errors().fields[f];
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const role = String(f.get("role") ?? "");
    const days = String(f.get("expiresInDays") ?? "").trim();
    const scopes = grantsOf(ticked());
    const { data, error } = await api.POST("/api/api-keys", { body: {
      name: String(f.get("name") ?? "").trim(),
      ...(role ? { role } : {}),
      ...(scopes.length > 0 ? { scopes } : {}),
      ...(days ? { expiresInDays: Number(days) } : {}),
    } });
    if (!data) return setErrors(formErrors(error, ["name", "role", "scopes", "expiresInDays"]));
    setErrors({ fields: {} });
    form.reset();
    setTicked(new Set<string>());
    props.onCreated({ name: data.name, key: data.key });
  };
  return (
    <details class="panel">
      <summary>Create an API key</summary>
      <form class="form" onSubmit={submit} novalidate data-testid="create-key">
        <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
        <div class="form-grid">
          <label>Name<input name="name" placeholder="ci-deployer" aria-invalid={!!err("name")} aria-describedby={err("name") ? "err-key-name" : undefined} /><FieldError id="err-key-name" message={err("name")} /></label>
          <label>Role <span class="muted">no wider than yours</span>
            <select name="role" aria-invalid={!!err("role")}><option value="">my role</option><For each={roleNames()}>{(r) => <option value={r}>{r}</option>}</For></select>
            <FieldError id="err-key-role" message={err("role")} />
          </label>
          <label>Expires after (days)<input name="expiresInDays" type="number" min="1" placeholder="never" aria-invalid={!!err("expiresInDays")} /><FieldError id="err-key-expires" message={err("expiresInDays")} /></label>
        </div>
        <p class="muted small">Scopes narrow the role further; none ticked means everything the role allows.</p>
        <PermissionPicker ticked={ticked()} onChange={setTicked} label="Scopes of the key" idPrefix="scope" />
        <FieldError id="err-key-scopes" message={err("scopes")} />
        <div class="actions"><button type="submit" class="primary">Create key</button></div>
      </form>
    </details>
  );
}
