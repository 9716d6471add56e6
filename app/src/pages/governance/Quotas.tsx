/** Team quotas: each team's limits beside what it uses now, and (admins) setting or removing them. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { formErrors, type FormErrors } from "../../api/fieldErrors.ts";
import { caller, can } from "../../api/me.ts";
import type { components } from "../../../../protocol/api/client.ts";
import { FieldError, useConfirm } from "../../ui/bits.tsx";
import { usageOf } from "../../ui/format.ts";

type Usage = components["schemas"]["QuotaUsage"];
type Limits = components["schemas"]["QuotaLimits"];
const LIMITS = [
  { key: "maxInstances", used: "instances", label: "Instances" },
  { key: "maxCpuMillicores", used: "cpuMillicores", label: "CPU (millicores)" },
  { key: "maxMemoryMb", used: "memoryMb", label: "Memory (MB)" },
  { key: "maxDeploymentsPerDay", used: "deploymentsToday", label: "Deployments today" },
  { key: "maxLlmTokensPerDay", used: "llmTokensToday", label: "LLM tokens today" },
] as const satisfies readonly { key: keyof Limits; used: keyof Usage["usage"]; label: string }[];

export function Quotas() {
  const [usages, { refetch }] = createResource(async () => {
    const { data, error, response } = await api.GET("/api/quotas");
    if (!data) throw new Error(messageOf(error, response));
    const teams = [...new Set([caller()?.team ?? "default", ...data.items.map((q) => q.team)])];
    return Promise.all(teams.map(async (team) => (await api.GET("/api/quotas/{team}/usage", { params: { path: { team } } })).data ?? { team, limits: null, usage: { instances: 0, cpuMillicores: 0, memoryMb: 0, deploymentsToday: 0, llmTokensToday: 0 } }));
  });
  const [editing, setEditing] = createSignal<Usage | "new" | null>(null);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const remove = (team: string) => confirm({
    title: `Remove ${team}'s quota?`, action: "Remove quota", body: <p>The team is then limited by nothing until a quota is set again.</p>,
    run: async () => {
      const { error, response } = await api.DELETE("/api/quotas/{team}", { params: { path: { team } } });
      setNotice(error ? messageOf(error, response) : `${team}: quota removed`);
      void refetch();
    },
  });
  return (
    <>
      <div class="toolbar"><Show when={can("quotas", "update")}><button type="button" class="primary" onClick={() => setEditing("new")}>Set a team's quota</button></Show></div>
      <Show when={notice()}><p class="notice" role="status">{notice()}</p></Show>
      <Show when={usages.error}><p class="error" role="alert">{String((usages.error as Error).message)}</p></Show>
      <Show when={editing()}>{(e) => <QuotaForm usage={e() === "new" ? null : (e() as Usage)} onClose={() => setEditing(null)} onSaved={(team) => { setEditing(null); setNotice(`${team}: quota saved`); void refetch(); }} />}</Show>
      <table class="grid" data-testid="quotas-table">
        <thead><tr><th>Team</th><For each={LIMITS}>{(l) => <th>{l.label}</th>}</For><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          <For each={usages.latest ?? []}>{(u) => (
            <tr>
              <td class="strong">{u.team}</td>
              <For each={LIMITS}>{(l) => {
                const use = () => usageOf(u.usage[l.used], u.limits ? u.limits[l.key] : null);
                return <td><Show when={use().ratio !== null}><meter min="0" max="1" low={0.7} high={0.9} optimum={0} value={use().ratio ?? 0} aria-label={`${u.team} ${l.label}`} /> </Show><span class="small">{use().words}</span></td>;
              }}</For>
              <td class="row-actions">
                <Show when={can("quotas", "update")}><button type="button" onClick={() => setEditing(u)}>Edit</button></Show>
                <Show when={u.limits && can("quotas", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(u.team)}>Remove</button></Show>
              </td>
            </tr>
          )}</For>
        </tbody>
      </table>
      <ConfirmView />
    </>
  );
}

function QuotaForm(props: { usage: Usage | null; onClose: () => void; onSaved: (team: string) => void }) {
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const team = props.usage?.team ?? String(f.get("team") ?? "").trim();
    if (!team) return setErrors({ fields: { team: "name the team" } });
    const body = Object.fromEntries(LIMITS.map((l) => { const raw = String(f.get(l.key) ?? "").trim(); return [l.key, raw === "" ? null : Number(raw)]; }));
    const { data, error } = await api.PUT("/api/quotas/{team}", { params: { path: { team } }, body });
    if (!data) return setErrors(formErrors(error, ["team", ...LIMITS.map((l) => l.key)]));
    props.onSaved(team);
  };
  return (
    <form class="panel form" onSubmit={submit} novalidate aria-labelledby="quota-title">
      <h2 id="quota-title">{props.usage ? `Quota of ${props.usage.team}` : "Set a team's quota"}</h2>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <Show when={!props.usage}><label>Team<input name="team" aria-invalid={!!errors().fields.team} /><FieldError id="err-quota-team" message={errors().fields.team} /></label></Show>
        <For each={LIMITS}>{(l) => (
          <label>{l.label} <span class="muted">empty: no limit</span>
            <input name={l.key} type="number" min="0" value={props.usage?.limits?.[l.key] ?? ""} aria-invalid={!!errors().fields[l.key]} aria-describedby={errors().fields[l.key] ? `err-${l.key}` : undefined} />
            <FieldError id={`err-${l.key}`} message={errors().fields[l.key]} />
          </label>
        )}</For>
      </div>
      <div class="actions"><button type="button" onClick={() => props.onClose()}>Cancel</button><button type="submit" class="primary">Save quota</button></div>
    </form>
  );
}
