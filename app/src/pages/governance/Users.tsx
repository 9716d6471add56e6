/** Users: create, change role, disable or enable, reset a password, delete. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { formErrors, type FormErrors } from "../../api/fieldErrors.ts";
import { caller, can } from "../../api/me.ts";
import { useCursorList } from "../../api/useCursorList.ts";
import type { components } from "../../../../protocol/api/client.ts";
import { ago, FieldError, StatusBadge, useConfirm } from "../../ui/bits.tsx";
import { ListFooter } from "../../ui/ListFooter.tsx";

type User = components["schemas"]["User"];
const FIELDS = ["username", "email", "password", "role"] as const;

export function useRoleNames() {
  const [roles] = createResource(async () => (await api.GET("/api/roles")).data?.items.map((r) => r.name) ?? ["admin", "operator", "viewer"]);
  return () => roles.latest ?? [];
}

export function Users() {
  const [role, setRole] = createSignal("");
  const list = useCursorList((cursor) => api.GET("/api/users", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}), ...(role() ? { role: role() } : {}) } } }));
  const roleNames = useRoleNames();
  const [notice, setNotice] = createSignal<string | null>(null);
  const [resetFor, setResetFor] = createSignal<User | null>(null);
  const [confirm, ConfirmView] = useConfirm();

  const patch = async (u: User, body: { role?: string; disabled?: boolean; password?: string }, what: string): Promise<string | null> => {
    const { data, error, response } = await api.PATCH("/api/users/{id}", { params: { path: { id: u.id } }, body });
    if (!data) { const m = messageOf(error, response); setNotice(`${u.username}: ${m}`); return m; }
    list.update((items) => items.map((x) => (x.id === u.id ? data : x)));
    setNotice(`${u.username}: ${what}`);
    return null;
  };
  const remove = (u: User) => confirm({
    title: `Delete ${u.username}?`, action: "Delete user",
    body: <p>Their API keys go too. Their audit entries stay. This cannot be undone.</p>,
    run: async () => {
      const { error, response } = await api.DELETE("/api/users/{id}", { params: { path: { id: u.id } } });
      setNotice(error ? `${u.username}: ${messageOf(error, response)}` : `${u.username} deleted`);
      void list.reload();
    },
  });

  return (
    <>
      <Show when={can("users", "create")}><CreateUser roles={roleNames()} onCreated={(u) => { setNotice(`${u.username} created as ${u.role}`); void list.reload(); }} /></Show>
      <div class="toolbar">
        <select aria-label="Filter by role" value={role()} onChange={(e) => { setRole(e.currentTarget.value); void list.reload(); }}>
          <option value="">any role</option>
          <For each={roleNames()}>{(r) => <option value={r}>{r}</option>}</For>
        </select>
      </div>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <Show when={list.items().length > 0}>
        <table class="grid" data-testid="users-table">
          <thead><tr><th>User</th><th>Email</th><th>Role</th><th>Team</th><th>State</th><th>Last login</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={list.items()}>{(u) => {
              const self = () => caller()?.id === u.id;
              return (
                <tr data-user={u.username}>
                  <td class="strong">{u.username}{self() ? <span class="muted"> (you)</span> : null}</td>
                  <td class="muted">{u.email}</td>
                  <td>
                    <Show when={can("users", "update") && !self()} fallback={u.role}>
                      <select aria-label={`Role of ${u.username}`} value={u.role} onChange={(e) => { const r = e.currentTarget.value; void patch(u, { role: r }, `role is now ${r}`).then((m) => { if (m) e.currentTarget.value = u.role; }); }}>
                        <For each={roleNames().includes(u.role) ? roleNames() : [u.role, ...roleNames()]}>{(r) => <option value={r}>{r}</option>}</For>
                      </select>
                    </Show>
                  </td>
                  <td class="muted">{u.team}</td>
                  <td><StatusBadge status={u.disabled ? "disabled" : "active"} tone={u.disabled ? "idle" : "ok"} /></td>
                  <td class="muted" title={u.lastLogin ?? ""}>{ago(u.lastLogin)}</td>
                  <td class="row-actions">
                    <Show when={can("users", "update")}>
                      <button type="button" onClick={() => setResetFor(u)}>Reset password</button>
                      <Show when={!self()}>
                        <button type="button" onClick={() => void patch(u, { disabled: !u.disabled }, u.disabled ? "enabled" : "disabled: signed out of every session")}>{u.disabled ? "Enable" : "Disable"}</button>
                      </Show>
                    </Show>
                    <Show when={can("users", "delete") && !self()}><button type="button" class="danger-quiet" onClick={() => remove(u)}>Delete</button></Show>
                  </td>
                </tr>
              );
            }}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={<div class="empty"><p>No users{role() ? ` with the role ${role()}` : ""}.</p></div>} />
      <Show when={resetFor()}>{(u) => <ResetPassword user={u()} onClose={() => setResetFor(null)} onDone={() => { setNotice(`${u().username}: password reset`); setResetFor(null); }} />}</Show>
      <ConfirmView />
    </>
  );
}

function CreateUser(props: { roles: string[]; onCreated: (u: User) => void }) {
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const err = (f: string) => errors().fields[f];
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const text = (k: string) => String(f.get(k) ?? "").trim();
    setBusy(true);
    const { data, error } = await api.POST("/api/users", { body: { username: text("username"), email: text("email"), password: String(f.get("password") ?? ""), role: text("role") } });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, FIELDS));
    setErrors({ fields: {} });
    form.reset();
    props.onCreated(data);
  };
  return (
    <details class="panel">
      <summary>Create a user</summary>
      <form class="form" onSubmit={submit} novalidate data-testid="create-user">
        <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
        <div class="form-grid">
          <label>Username<input name="username" autocomplete="off" aria-invalid={!!err("username")} aria-describedby={err("username") ? "err-username" : undefined} /><FieldError id="err-username" message={err("username")} /></label>
          <label>Email<input name="email" type="email" autocomplete="off" aria-invalid={!!err("email")} aria-describedby={err("email") ? "err-email" : undefined} /><FieldError id="err-email" message={err("email")} /></label>
          <label>Initial password <span class="muted">at least 12 characters</span><input name="password" type="password" autocomplete="new-password" aria-invalid={!!err("password")} aria-describedby={err("password") ? "err-password" : undefined} /><FieldError id="err-password" message={err("password")} /></label>
          <label>Role
            <select name="role" aria-invalid={!!err("role")}><For each={props.roles}>{(r) => <option value={r} selected={r === "viewer"}>{r}</option>}</For></select>
            <FieldError id="err-role" message={err("role")} />
          </label>
        </div>
        <div class="actions"><button type="submit" class="primary" disabled={busy()}>{busy() ? "Creating…" : "Create user"}</button></div>
      </form>
    </details>
  );
}

function ResetPassword(props: { user: User; onClose: () => void; onDone: () => void }) {
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  let dialog!: HTMLDialogElement;
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const password = String(new FormData(e.currentTarget as HTMLFormElement).get("password") ?? "");
    const { data, error } = await api.PATCH("/api/users/{id}", { params: { path: { id: props.user.id } }, body: { password } });
    if (!data) return setErrors(formErrors(error, ["password"]));
    dialog.close();
    props.onDone();
  };
  return (
    <dialog ref={(el) => { dialog = el; queueMicrotask(() => el.showModal()); }} class="dialog" aria-labelledby="reset-title" onClose={() => props.onClose()}>
      <form class="form" onSubmit={submit} novalidate>
        <h2 id="reset-title">New password for {props.user.username}</h2>
        <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
        <label>New password <span class="muted">at least 12 characters; tell them through a safe channel</span>
          <input name="password" type="password" autocomplete="new-password" aria-invalid={!!errors().fields.password} aria-describedby={errors().fields.password ? "err-reset" : undefined} />
          <FieldError id="err-reset" message={errors().fields.password} />
        </label>
        <div class="actions"><button type="button" onClick={() => dialog.close()}>Cancel</button><button type="submit" class="primary">Set password</button></div>
      </form>
    </dialog>
  );
}
