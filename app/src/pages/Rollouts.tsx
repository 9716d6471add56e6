/**
 * Rollouts: one flow version to every instance a label selector picks, in
 * waves with a failure budget (docs/rollouts.md). The list with a status
 * filter, and the start form: selector (with a live preview of what it picks),
 * flows or a stored version, waves, parallelism, pause, budget, on failure.
 */
import { A, useNavigate } from "@solidjs/router";
import { createSignal, For, Show } from "solid-js";
import { api } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import type { ApiBody } from "../../../protocol/api/client.ts";
import { parseWaves, ROLLOUT_TONE, type RolloutStatus } from "../rollouts/rolloutView.ts";
import { ago, FieldError, StatusBadge } from "../ui/bits.tsx";
import { ListFooter } from "../ui/ListFooter.tsx";
import { SelectorPreview } from "../ui/SelectorPreview.tsx";

const STATUSES: RolloutStatus[] = ["running", "awaiting_approval", "paused", "rolling_back", "completed", "failed", "aborted"];

export function Rollouts() {
  const [status, setStatus] = createSignal<RolloutStatus | "">("");
  const list = useCursorList((cursor) => api.GET("/api/rollouts", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}), ...(status() ? { status: status() as RolloutStatus } : {}) } } }));
  return (
    <section class="page">
      <div class="page-head"><h1>Rollouts</h1><span class="muted small">one flow version to a group of instances, wave by wave</span></div>
      <Show when={can("deployments", "create")}><StartRollout /></Show>
      <div class="toolbar">
        <select aria-label="Filter rollouts by status" value={status()} onChange={(e) => { setStatus(e.currentTarget.value as RolloutStatus | ""); void list.reload(); }}>
          <option value="">any status</option>
          <For each={STATUSES}>{(s) => <option value={s}>{s.replace("_", " ")}</option>}</For>
        </select>
      </div>
      <Show when={list.items().length > 0}>
        <table class="grid" data-testid="rollouts-table">
          <thead><tr><th>Rollout</th><th>Status</th><th>Selector</th><th>Waves</th><th>Instances</th><th>Failure</th><th>Started</th></tr></thead>
          <tbody>
            <For each={list.items()}>{(r) => (
              <tr data-rollout={r.id}>
                <td><A href={`/rollouts/${r.id}`}>{r.id.slice(0, 8)}</A><Show when={r.description}><span class="reason">{r.description}</span></Show></td>
                <td><StatusBadge status={r.status} tone={ROLLOUT_TONE[r.status] ?? "unknown"} /></td>
                <td><code>{r.selector}</code></td>
                <td class="muted">{r.currentWave === null ? "—" : `${Math.min(r.currentWave + 1, r.waveCount)} of ${r.waveCount}`}</td>
                <td class="muted">{r.summary.completed} done · {r.summary.failed} failed · {r.summary.pending} pending of {r.summary.total}</td>
                <td class="muted">{r.failure?.code ?? ""}</td>
                <td class="muted" title={r.createdAt}>{ago(r.createdAt)}</td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={
        <div class="empty"><p><strong>No rollouts{status() ? ` that are ${status().replace("_", " ")}` : " yet"}.</strong></p>
          <p>Label instances (<code>env=staging</code>) on create or with PATCH, then start one above: each instance changes blue-green, wave by wave. CI can start them too (the <A href="/ci-hooks">CI hooks</A> page, or <code>npx redforge rollout</code>).</p></div>
      } />
    </section>
  );
}

const FIELDS = ["selector", "flows", "versionId", "waves", "parallelism", "pause", "failureBudget", "onFailure", "deployment"] as const;

/** An optional number field: absent when empty (the API's default applies); what is not a number goes to the API to refuse. */
function num(f: FormData, name: string): number | undefined {
  const raw = String(f.get(name) ?? "").trim();
  return raw === "" ? undefined : Number(raw);
}

type Body = ApiBody<"/api/rollouts", "post">;

function StartRollout() {
  const navigate = useNavigate();
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const [pauseKind, setPauseKind] = createSignal<"timed" | "approval">("timed");
  const err = (f: string) => errors().fields[f];

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const waves = parseWaves(String(f.get("waves") ?? ""));
    if ("error" in waves) return setErrors({ fields: { waves: waves.error } });
    const versionId = String(f.get("versionId") ?? "").trim();
    let flows: unknown;
    const flowsText = String(f.get("flows") ?? "").trim();
    if (flowsText) {
      try { flows = JSON.parse(flowsText); } catch (ex) { return setErrors({ fields: { flows: `not JSON: ${(ex as Error).message}` } }); }
      if (!Array.isArray(flows)) return setErrors({ fields: { flows: "a Node-RED flow export is a JSON array of nodes" } });
    } else if (!versionId) return setErrors({ fields: { flows: "paste the flow JSON, or give a stored version id below" } });
    const maxFailedInstances = num(f, "maxFailedInstances");
    const maxFailedPercent = num(f, "maxFailedPercent");
    const description = String(f.get("description") ?? "").trim();
    // The generated type marks every defaulted field required; what is left out here takes the API's default.
    const body = {
      selector: String(f.get("selector") ?? ""),
      ...(flows !== undefined ? { flows: flows as NonNullable<Body["flows"]> } : { versionId }),
      waves: waves.waves,
      ...(num(f, "parallelism") !== undefined ? { parallelism: num(f, "parallelism")! } : {}),
      pause: pauseKind() === "approval" ? { kind: "approval" } : { kind: "timed", seconds: num(f, "pauseSeconds") ?? 0 },
      ...(maxFailedInstances !== undefined || maxFailedPercent !== undefined ? { failureBudget: {
        ...(maxFailedInstances !== undefined ? { maxFailedInstances } : {}), ...(maxFailedPercent !== undefined ? { maxFailedPercent } : {}),
      } } : {}),
      onFailure: f.get("onFailure") === "leave" ? "leave" : "rollback_wave",
      ...(num(f, "analysisSeconds") !== undefined || num(f, "rollbackWindowSeconds") !== undefined ? { deployment: {
        ...(num(f, "analysisSeconds") !== undefined ? { analysisSeconds: num(f, "analysisSeconds")! } : {}),
        ...(num(f, "rollbackWindowSeconds") !== undefined ? { rollbackWindowSeconds: num(f, "rollbackWindowSeconds")! } : {}),
      } } : {}),
      ...(description ? { description } : {}),
    } as Body;
    setBusy(true);
    const { data, error } = await api.POST("/api/rollouts", { body });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, FIELDS));
    navigate(`/rollouts/${data.id}`);
  };

  return (
    <details class="panel" data-testid="start-rollout">
      <summary>Start a rollout</summary>
      <form class="form" onSubmit={submit} novalidate>
        <Show when={errors().form}><p class="error" role="alert" data-testid="rollout-form-error">{errors().form}</p></Show>
        <div class="form-grid">
          <div class="wide"><SelectorPreview name="selector" label="Instances (label selector)" error={err("selector")} testid="rollout-selector" /></div>
          <label>Waves <span class="muted">cumulative: a count or a share</span>
            <input name="waves" value="1, 10%, 50%, 100%" aria-invalid={!!err("waves")} aria-describedby={err("waves") ? "err-waves" : undefined} />
            <FieldError id="err-waves" message={err("waves")} />
          </label>
          <label>At once inside a wave
            <input name="parallelism" type="number" min="1" max="100" placeholder="5" aria-invalid={!!err("parallelism")} />
            <FieldError id="err-parallelism" message={err("parallelism")} />
          </label>
          <label>Between waves
            <select name="pauseKind" value={pauseKind()} onChange={(e) => setPauseKind(e.currentTarget.value as "timed" | "approval")}>
              <option value="timed">wait (seconds below)</option>
              <option value="approval">wait for a person's approval</option>
            </select>
          </label>
          <Show when={pauseKind() === "timed"}>
            <label>Pause (s)
              <input name="pauseSeconds" type="number" min="0" placeholder="0" aria-invalid={!!err("pause")} />
              <FieldError id="err-pause" message={err("pause")} />
            </label>
          </Show>
          <label>Failure budget: failed instances per wave
            <input name="maxFailedInstances" type="number" min="0" placeholder="0" aria-invalid={!!err("failureBudget")} />
            <FieldError id="err-failureBudget" message={err("failureBudget")} />
          </label>
          <label>…or failed share of a wave (%)
            <input name="maxFailedPercent" type="number" min="0" max="100" placeholder="—" />
          </label>
          <label>When a wave is over budget
            <select name="onFailure">
              <option value="rollback_wave">roll the wave back</option>
              <option value="leave">leave it (stop only)</option>
            </select>
          </label>
          <label>Analysis after each switch (s)
            <input name="analysisSeconds" type="number" min="0" placeholder="5" aria-invalid={!!err("deployment")} />
            <FieldError id="err-deployment" message={err("deployment")} />
          </label>
          <label>Rollback window (s)
            <input name="rollbackWindowSeconds" type="number" min="0" placeholder="60" />
          </label>
          <label>Description
            <input name="description" maxLength={500} placeholder="what and why (audit log)" />
          </label>
          <label class="wide">Flow JSON <span class="muted">the whole flow export (an array of nodes), the same for every instance</span>
            <textarea name="flows" rows="5" spellcheck={false} placeholder='[{"id": "…", "type": "tab", …}]' aria-invalid={!!err("flows")} aria-describedby={err("flows") ? "err-flows" : undefined} />
            <FieldError id="err-flows" message={err("flows")} />
          </label>
          <label>…or a stored version id
            <input name="versionId" placeholder="from an instance's versions" aria-invalid={!!err("versionId")} />
            <FieldError id="err-versionId" message={err("versionId")} />
          </label>
        </div>
        <div class="actions"><button type="submit" class="primary" disabled={busy()}>{busy() ? "Starting…" : "Start rollout"}</button></div>
      </form>
    </details>
  );
}
