/** Scheduled compliance exports and per-table retention (GET/PUT /api/config), with the schedules QStash runs. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../../api/api.ts";
import { formErrors, type FormErrors } from "../../api/fieldErrors.ts";
import { can } from "../../api/me.ts";
import type { ApiBody } from "../../../../protocol/api/client.ts";
import { FieldError } from "../../ui/bits.tsx";

type Put = ApiBody<"/api/config", "put">;
type ReportsConfig = NonNullable<Put["reports"]>;
const KINDS = ["audit_trail", "ai_decisions", "access", "data_retention"] as const;
const TABLES = [
  { key: "audit_logs", label: "Audit log", note: "purged only behind a signed checkpoint" },
  { key: "ai_decision_logs", label: "AI decision records", note: "" },
  { key: "instance_health", label: "Instance health history", note: "the instance page's chart" },
] as const;

export function Schedules() {
  const [config, { refetch }] = createResource(async () => {
    const { data, error, response } = await api.GET("/api/config");
    if (!data) throw new Error(messageOf(error, response));
    return data;
  });
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [notice, setNotice] = createSignal<string | null>(null);
  const editable = () => can("config", "update");
  const err = (f: string) => errors().fields[f];

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const schedule = String(f.get("schedule") ?? "").trim();
    const framework = String(f.get("framework") ?? "");
    const days = (k: string) => { const raw = String(f.get(k) ?? "").trim(); return raw === "" ? null : Number(raw); };
    const body: Put = {
      reports: {
        schedule: schedule || null,
        kinds: KINDS.filter((k) => f.get(`kind-${k}`) === "on") as ReportsConfig["kinds"],
        framework: framework ? (framework as NonNullable<ReportsConfig["framework"]>) : null,
        format: String(f.get("format")) as NonNullable<ReportsConfig["format"]>,
        period: String(f.get("period")) as NonNullable<ReportsConfig["period"]>,
        includePrompts: f.get("includePrompts") === "on",
      },
      retention: { audit_logs: days("audit_logs"), ai_decision_logs: days("ai_decision_logs"), instance_health: days("instance_health") },
    };
    const { data, error } = await api.PUT("/api/config", { body });
    if (!data) return setErrors(formErrors(error, ["reports.schedule", "reports.kinds", "reports.framework", "reports.format", "reports.period", "retention.audit_logs", "retention.ai_decision_logs", "retention.instance_health"]));
    setErrors({ fields: {} });
    setNotice("Saved. The schedules below are what QStash now runs.");
    void refetch();
  };

  return (
    <Show when={config.latest} fallback={<Show when={config.error} fallback={<p class="muted">Loading…</p>}><p class="error" role="alert">{String((config.error as Error).message)}</p></Show>}>
      {(c) => (
        <form class="form" onSubmit={submit} novalidate data-testid="schedules-form">
          <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
          <Show when={notice()}><p class="notice" role="status">{notice()}</p></Show>
          <fieldset class="panel" disabled={!editable()}>
            <legend>Scheduled compliance export</legend>
            <div class="form-grid">
              <label>Schedule (cron, UTC) <span class="muted">empty: no scheduled export</span>
                <input name="schedule" value={c().reports.schedule ?? ""} placeholder="0 2 * * *" aria-invalid={!!err("reports.schedule")} aria-describedby={err("reports.schedule") ? "err-schedule" : undefined} />
                <FieldError id="err-schedule" message={err("reports.schedule")} />
              </label>
              <label>Period<select name="period" value={c().reports.period}><option value="day">the previous day</option><option value="week">the previous week</option><option value="month">the previous month</option></select></label>
              <label>Framework<select name="framework" value={c().reports.framework ?? ""}><option value="">plain</option><option value="hipaa">HIPAA</option><option value="soc2">SOC 2</option><option value="gdpr">GDPR</option></select></label>
              <label>Format<select name="format" value={c().reports.format}><option value="json">JSON</option><option value="ndjson">NDJSON</option><option value="csv">CSV</option></select></label>
              <label class="check"><input type="checkbox" name="includePrompts" checked={c().reports.includePrompts} /> include prompt text</label>
            </div>
            <div class="inline-form" role="group" aria-label="Report kinds">
              <span class="muted small">Kinds:</span>
              <For each={KINDS}>{(k) => <label class="check"><input type="checkbox" name={`kind-${k}`} checked={c().reports.kinds.includes(k)} /> {k.replaceAll("_", " ")}</label>}</For>
              <FieldError id="err-kinds" message={err("reports.kinds")} />
            </div>
          </fieldset>
          <fieldset class="panel" disabled={!editable()}>
            <legend>Retention (days; empty: keep for ever)</legend>
            <div class="form-grid">
              <For each={TABLES}>{(t) => (
                <label>{t.label} {t.note ? <span class="muted">{t.note}</span> : null}
                  <input name={t.key} type="number" min="1" value={c().retention[t.key] ?? ""} aria-invalid={!!err(`retention.${t.key}`)} />
                  <FieldError id={`err-${t.key}`} message={err(`retention.${t.key}`)} />
                </label>
              )}</For>
            </div>
          </fieldset>
          <div class="panel">
            <h2>What runs</h2>
            <p>Compliance export: <code>{c().schedules.complianceExport ?? "not scheduled"}</code> · Retention purge: <code>{c().schedules.retentionPurge ?? "not scheduled"}</code></p>
          </div>
          <Show when={editable()}><div class="actions"><button type="submit" class="primary">Save schedules and retention</button></div></Show>
        </form>
      )}
    </Show>
  );
}
