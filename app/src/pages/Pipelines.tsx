/**
 * Pipelines (docs/ci.md): ordered stages, each a label selector with rollout
 * defaults and an optional four-eyes approval. The list, and a form that
 * builds the stages row by row (each selector previewed live).
 */
import { A, useNavigate } from "@solidjs/router";
import { createSignal, For, Show } from "solid-js";
import { api } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import type { ApiBody, ApiError } from "../../../protocol/api/client.ts";
import { parseWaves } from "../rollouts/rolloutView.ts";
import { ago, FieldError } from "../ui/bits.tsx";
import { ListFooter } from "../ui/ListFooter.tsx";
import { SelectorPreview } from "../ui/SelectorPreview.tsx";

export function Pipelines() {
  const [creating, setCreating] = createSignal(false);
  const list = useCursorList((cursor) => api.GET("/api/pipelines", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}) } } }));
  return (
    <section class="page">
      <div class="page-head">
        <h1>Pipelines</h1><span class="muted small">dev → staging → prod: each stage a group of instances, promoted by rollouts</span>
        <span class="spacer" />
        <Show when={can("deployments", "create")}><button type="button" class="primary" onClick={() => setCreating(true)} data-testid="new-pipeline">New pipeline</button></Show>
      </div>
      <Show when={creating()}><CreatePipeline onClose={() => setCreating(false)} /></Show>
      <Show when={list.items().length > 0}>
        <table class="grid" data-testid="pipelines-table">
          <thead><tr><th>Name</th><th>Stages</th><th>Team</th><th>Changed</th></tr></thead>
          <tbody>
            <For each={list.items()}>{(p) => (
              <tr data-pipeline={p.name}>
                <td class="strong"><A href={`/pipelines/${p.id}`}>{p.name}</A></td>
                <td>{p.stages.join(" → ")}</td>
                <td class="muted">{p.team ?? "—"}</td>
                <td class="muted" title={p.updatedAt}>{ago(p.updatedAt)}</td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={
        <div class="empty"><p><strong>No pipelines yet.</strong></p>
          <p>{can("deployments", "create") ? "Create one with New pipeline: a stage per environment, each picking its instances by label (env=dev, env=staging, env=prod); tick approval on the stages a second person must sign off." : "Someone who may deploy creates them."}</p></div>
      } />
    </section>
  );
}

/** A stage row as first shown; what the person types stays in its inputs (a removed row takes its own inputs with it). */
interface StageRow { key: number; name: string; selector: string; approval: boolean }
type Body = ApiBody<"/api/pipelines", "post">;
type Stage = Body["stages"][number];

/** The API's answer onto the form: zod paths (stages.1.selector) name rows; invalid_selector names its path in details. */
function pipelineErrors(error: ApiError | undefined, rows: number): FormErrors {
  const fields = ["name", "team", "stages", ...Array.from({ length: rows }, (_, i) => [`stages.${i}.name`, `stages.${i}.selector`, `stages.${i}.rollout`]).flat()];
  const out = formErrors(error, fields);
  const path = (error?.error.details as { path?: unknown } | undefined)?.path;
  if (error?.error.code === "invalid_selector" && typeof path === "string" && fields.includes(path)) {
    return { fields: { ...out.fields, [path]: error.error.message } };
  }
  return out;
}

function CreatePipeline(props: { onClose: () => void }) {
  const navigate = useNavigate();
  let next = 3;
  const [rows, setRows] = createSignal<StageRow[]>([
    { key: 0, name: "dev", selector: "env=dev", approval: false },
    { key: 1, name: "staging", selector: "env=staging", approval: false },
    { key: 2, name: "prod", selector: "env=prod", approval: true },
  ]);
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const err = (f: string) => errors().fields[f];

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const stages: Stage[] = [];
    const local: Record<string, string> = {};
    rows().forEach((_, i) => {
      const wavesText = String(f.get(`stage-${i}-waves`) ?? "").trim();
      const waves = wavesText ? parseWaves(wavesText) : null;
      if (waves && "error" in waves) local[`stages.${i}.rollout`] = waves.error;
      stages.push({
        name: String(f.get(`stage-${i}-name`) ?? "").trim(),
        selector: String(f.get(`stage-${i}-selector`) ?? ""),
        requiresApproval: f.get(`stage-${i}-approval`) === "on",
        ...(waves && "waves" in waves ? { rollout: { waves: waves.waves } } : {}),
      });
    });
    if (Object.keys(local).length > 0) return setErrors({ fields: local });
    const team = String(f.get("team") ?? "").trim();
    const body: Body = { name: String(f.get("name") ?? "").trim(), stages, ...(team ? { team } : {}) };
    setBusy(true);
    const { data, error } = await api.POST("/api/pipelines", { body });
    setBusy(false);
    if (!data) return setErrors(pipelineErrors(error, rows().length));
    navigate(`/pipelines/${data.id}`);
  };

  return (
    <form class="panel form" onSubmit={submit} novalidate data-testid="pipeline-form" aria-labelledby="pipeline-form-title">
      <h2 id="pipeline-form-title">New pipeline</h2>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <label>Name
          <input name="name" placeholder="web" aria-invalid={!!err("name")} aria-describedby={err("name") ? "err-name" : undefined} />
          <FieldError id="err-name" message={err("name")} />
        </label>
        <label>Team <span class="muted">optional</span>
          <input name="team" placeholder="default" />
        </label>
      </div>
      <h3>Stages, in order</h3>
      <FieldError id="err-stages" message={err("stages")} />
      <For each={rows()}>{(row, at) => {
        const i = at;
        return (
          <fieldset class="stage-row" data-testid="stage-row">
            <legend>Stage {i() + 1}</legend>
            <div class="form-grid">
              <label>Name
                <input name={`stage-${i()}-name`} value={row.name} aria-invalid={!!err(`stages.${i()}.name`)} />
                <FieldError id={`err-stages.${i()}.name`} message={err(`stages.${i()}.name`)} />
              </label>
              <SelectorPreview name={`stage-${i()}-selector`} label="Instances (label selector)" value={row.selector} error={err(`stages.${i()}.selector`)} />
              <label>Waves <span class="muted">optional, e.g. 1, 100%</span>
                <input name={`stage-${i()}-waves`} aria-invalid={!!err(`stages.${i()}.rollout`)} />
                <FieldError id={`err-stages.${i()}.rollout`} message={err(`stages.${i()}.rollout`)} />
              </label>
              <label class="check"><input type="checkbox" name={`stage-${i()}-approval`} checked={row.approval} /> a second person approves each promotion</label>
            </div>
            <Show when={rows().length > 1}>
              <button type="button" class="link" onClick={() => setRows(rows().filter((r) => r.key !== row.key))}>Remove stage {i() + 1}</button>
            </Show>
          </fieldset>
        );
      }}</For>
      <div class="actions">
        <button type="button" onClick={() => setRows([...rows(), { key: next++, name: "", selector: "", approval: false }])}>Add stage</button>
        <span class="spacer" />
        <button type="button" onClick={() => props.onClose()}>Cancel</button>
        <button type="submit" class="primary" disabled={busy()}>{busy() ? "Creating…" : "Create pipeline"}</button>
      </div>
    </form>
  );
}
