/** Roles: the built-in three and custom roles, each custom one built with the permission picker. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { formErrors, type FormErrors } from "../../api/fieldErrors.ts";
import { can } from "../../api/me.ts";
import type { components } from "../../../../protocol/api/client.ts";
import { grantsOf, grantsText, tickedOf } from "../../governance/permissionTable.ts";
import { FieldError, useConfirm } from "../../ui/bits.tsx";
import { PermissionPicker } from "../../ui/PermissionPicker.tsx";

type Role = components["schemas"]["Role"];

export function Roles() {
  const [roles, { refetch }] = createResource(async () => {
    const { data, error, response } = await api.GET("/api/roles");
    if (!data) throw new Error(messageOf(error, response));
    return data.items;
  });
  const [editing, setEditing] = createSignal<Role | "new" | null>(null);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const remove = (r: Role) => confirm({
    title: `Delete the role ${r.name}?`, action: "Delete role", body: <p>Only a role nobody holds can go; the API says so otherwise.</p>,
    run: async () => {
      const { error, response } = await api.DELETE("/api/roles/{name}", { params: { path: { name: r.name } } });
      setNotice(error ? `${r.name}: ${messageOf(error, response)}` : `${r.name} deleted`);
      void refetch();
    },
  });

  return (
    <>
      <Show when={roles.error}><p class="error" role="alert">{String((roles.error as Error).message)}</p></Show>
      <div class="toolbar"><Show when={can("roles", "create")}><button type="button" class="primary" onClick={() => setEditing("new")}>New custom role</button></Show></div>
      <Show when={notice()}><p class="notice" role="status">{notice()}</p></Show>
      <Show when={editing()}>{(e) => <RoleForm role={e() === "new" ? null : (e() as Role)} onClose={() => setEditing(null)} onSaved={(name) => { setEditing(null); setNotice(`${name} saved`); void refetch(); }} />}</Show>
      <table class="grid" data-testid="roles-table">
        <thead><tr><th>Role</th><th>Kind</th><th>Permissions</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          <For each={roles.latest ?? []}>{(r) => (
            <tr>
              <td class="strong">{r.name}</td>
              <td class="muted">{r.builtin ? "built-in" : "custom"}</td>
              <td class="details" title={grantsText(r.permissions)}>{grantsText(r.permissions)}</td>
              <td class="row-actions">
                <Show when={!r.builtin && can("roles", "update")}><button type="button" onClick={() => setEditing(r)}>Edit</button></Show>
                <Show when={!r.builtin && can("roles", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(r)}>Delete</button></Show>
              </td>
            </tr>
          )}</For>
        </tbody>
      </table>
      <ConfirmView />
    </>
  );
}

function RoleForm(props: { role: Role | null; onClose: () => void; onSaved: (name: string) => void }) {
  const [ticked, setTicked] = createSignal(tickedOf(props.role?.permissions ?? []));
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const name = String(new FormData(e.currentTarget as HTMLFormElement).get("name") ?? "").trim();
    const permissions = grantsOf(ticked());
    const answer = props.role
      ? await api.PATCH("/api/roles/{name}", { params: { path: { name: props.role.name } }, body: { permissions } })
      : await api.POST("/api/roles", { body: { name, permissions } });
    if (!answer.data) return setErrors(formErrors(answer.error, ["name", "permissions"]));
    props.onSaved(answer.data.name);
  };
  return (
    <form class="panel form" onSubmit={submit} novalidate aria-labelledby="role-form-title">
      <h2 id="role-form-title">{props.role ? `Permissions of ${props.role.name}` : "New custom role"}</h2>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <Show when={!props.role}>
        <label>Name<input name="name" aria-invalid={!!errors().fields.name} aria-describedby={errors().fields.name ? "err-role-name" : undefined} /><FieldError id="err-role-name" message={errors().fields.name} /></label>
      </Show>
      <p class="muted small">A role can be no wider than yours. Click a resource's name to tick its whole row.</p>
      <PermissionPicker ticked={ticked()} onChange={setTicked} label="Permissions of the role" idPrefix="role" />
      <FieldError id="err-role-permissions" message={errors().fields.permissions} />
      <div class="actions"><button type="button" onClick={() => props.onClose()}>Cancel</button><button type="submit" class="primary">Save role</button></div>
    </form>
  );
}
