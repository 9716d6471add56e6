/**
 * One pipeline: what each stage runs, its open promotion, promote to a stage
 * (what the stage before runs, a stored version, or a flow file), and the
 * promotions with approve / reject (four-eyes: only for people with
 * deployments:approve, never for the one who asked). Re-read every few
 * seconds while a promotion is open: a promotion follows its rollout when read.
 */
import { A, useParams } from "@solidjs/router";
import { createResource, createSignal, For, onCleanup, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { caller, can } from "../api/me.ts";
import type { ApiBody, components } from "../../../protocol/api/client.ts";
import { ago, FieldError, StatusBadge } from "../ui/bits.tsx";

type Pipeline = components["schemas"]["Pipeline"];
type Promotion = Pipeline["promotions"][number];

export const PROMOTION_TONE: Record<string, string> = { awaiting_approval: "busy", rolling_out: "busy", completed: "ok", failed: "bad", rejected: "bad" };
const OPEN = new Set(["awaiting_approval", "rolling_out"]);

/** A problem the API answered, with its code: a 403 says plainly that the server refused, and why. */
interface Refusal { status: number; code: string; message: string }

export function PipelineDetail() {
  const params = useParams<{ id: string }>();
  const [p, setP] = createSignal<Pipeline | null>(null);
  const [error, setError] = createSignal<string | null>(null);
  const [refusal, setRefusal] = createSignal<Refusal | null>(null);
  const [notice, setNotice] = createSignal<string | null>(null);
  // Names for requesters and approvers, for those who may list users (others see ids, and "you").
  const [users] = createResource(() => can("users", "read") || null, async () => (await api.GET("/api/users", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const who = (id: string | null) => (id ? users.latest?.find((u) => u.id === id)?.username ?? (id === caller()?.id ? caller()!.username : id.slice(0, 8)) : "—");

  const load = async () => {
    const { data, error: err, response } = await api.GET("/api/pipelines/{id}", { params: { path: { id: params.id } } });
    if (!data) return setError(messageOf(err, response));
    setError(null);
    setP(data);
  };
  void load();
  const poll = setInterval(() => { if (p()?.promotions.some((x) => OPEN.has(x.status))) void load(); }, 3000);
  onCleanup(() => clearInterval(poll));

  const decide = async (promotion: Promotion, approve: boolean, reason?: string) => {
    setRefusal(null);
    const answer = approve
      ? await api.POST("/api/pipelines/promotions/{id}/approve", { params: { path: { id: promotion.id } } })
      : await api.POST("/api/pipelines/promotions/{id}/reject", { params: { path: { id: promotion.id } }, body: reason ? { reason } : {} });
    if (!answer.data) {
      const e = answer.error?.error;
      setRefusal({ status: answer.response.status, code: e?.code ?? String(answer.response.status), message: messageOf(answer.error, answer.response) });
    } else setNotice(`${promotion.stage}: promotion ${approve ? "approved, its rollout starts" : "rejected"}`);
    void load();
  };

  return (
    <section class="page">
      <div class="page-head"><h1><A href="/pipelines" class="muted">Pipelines</A> / {p()?.name ?? params.id.slice(0, 8)}</h1></div>
      <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <Show when={refusal()}>{(r) => (
        <div class="failure" role="alert" data-testid="promotion-refusal">
          <p><strong>{r().status === 403 ? "The control plane refused: you may not do this." : "The control plane did not accept this."}</strong></p>
          <p><code>{r().status} {r().code}</code> {r().message}</p>
        </div>
      )}</Show>
      <Show when={p()}>{(pl) => (
        <>
          <Stages pipeline={pl()} who={who} />
          <Show when={can("deployments", "create")}><Promote pipeline={pl()} onPromoted={(m) => { setNotice(m); void load(); }} /></Show>
          <Promotions pipeline={pl()} who={who} decide={decide} />
        </>
      )}</Show>
    </section>
  );
}

function Stages(props: { pipeline: Pipeline; who: (id: string | null) => string }) {
  return (
    <table class="grid" data-testid="stages-table">
      <thead><tr><th>Stage</th><th>Instances</th><th>Runs now</th><th>Open promotion</th><th>Approval</th></tr></thead>
      <tbody>
        <For each={props.pipeline.stages}>{(s) => (
          <tr data-stage={s.name}>
            <td class="strong">{s.name}</td>
            <td><code>{s.selector}</code></td>
            <td data-testid="stage-current">
              <Show when={s.current} fallback={<span class="muted">nothing promoted yet</span>}>{(c) => (
                <span title={c().digest ?? ""}>{c().versionId ? <>version <code>{c().versionId!.slice(0, 8)}</code></> : <>flows <code>{(c().digest ?? "").slice(0, 12)}</code></>} <span class="muted">since {ago(c().completedAt)}</span></span>
              )}</Show>
            </td>
            <td><Show when={s.pending} fallback={<span class="muted">—</span>}>{(o) => <StatusBadge status={o().status} tone={PROMOTION_TONE[o().status] ?? "unknown"} />}</Show></td>
            <td>{s.requiresApproval ? "second person" : <span class="muted">none</span>}</td>
          </tr>
        )}</For>
      </tbody>
    </table>
  );
}

type PromoteBody = ApiBody<"/api/pipelines/{id}/stages/{stage}/promote", "post">;
const PROMOTE_FIELDS = ["stage", "versionId", "flows", "fromStage", "rollout", "description"] as const;

function Promote(props: { pipeline: Pipeline; onPromoted: (message: string) => void }) {
  const stages = () => props.pipeline.stages.map((s) => s.name);
  const [stage, setStage] = createSignal(stages()[1] ?? stages()[0] ?? "");
  const [source, setSource] = createSignal<"fromStage" | "versionId" | "flows">(stages().length > 1 ? "fromStage" : "flows");
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const err = (f: string) => errors().fields[f];
  const before = () => { const i = stages().indexOf(stage()); return i > 0 ? stages()[i - 1]! : stages().find((s) => s !== stage()) ?? ""; };

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const description = String(f.get("description") ?? "").trim();
    let body: PromoteBody;
    if (source() === "flows") {
      let flows: unknown;
      try { flows = JSON.parse(String(f.get("flows") ?? "")); } catch (ex) { return setErrors({ fields: { flows: `not JSON: ${(ex as Error).message}` } }); }
      if (!Array.isArray(flows)) return setErrors({ fields: { flows: "a Node-RED flow export is a JSON array of nodes" } });
      body = { flows: flows as NonNullable<PromoteBody["flows"]> };
    } else if (source() === "versionId") body = { versionId: String(f.get("versionId") ?? "").trim() };
    else body = { fromStage: String(f.get("fromStage") ?? "") };
    if (description) body.description = description;
    setBusy(true);
    const { data, error } = await api.POST("/api/pipelines/{id}/stages/{stage}/promote", { params: { path: { id: props.pipeline.id, stage: stage() } }, body });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, PROMOTE_FIELDS));
    setErrors({ fields: {} });
    props.onPromoted(data.status === "awaiting_approval"
      ? `${stage()}: promotion requested; it waits for a second person with deployments:approve`
      : `${stage()}: promotion ${data.status.replace("_", " ")}`);
  };

  return (
    <details class="panel" data-testid="promote">
      <summary>Promote to a stage</summary>
      <form class="form" onSubmit={submit} novalidate>
        <Show when={errors().form}><p class="error" role="alert" data-testid="promote-error">{errors().form}</p></Show>
        <div class="form-grid">
          <label>Stage
            <select name="stage" value={stage()} onChange={(e) => setStage(e.currentTarget.value)} aria-invalid={!!err("stage")}>
              <For each={stages()}>{(s) => <option value={s}>{s}</option>}</For>
            </select>
            <FieldError id="err-stage" message={err("stage")} />
          </label>
          <label>Version to promote
            <select name="source" value={source()} onChange={(e) => setSource(e.currentTarget.value as "fromStage" | "versionId" | "flows")}>
              <Show when={stages().length > 1}><option value="fromStage">what another stage runs</option></Show>
              <option value="versionId">a stored version</option>
              <option value="flows">a flow file (JSON)</option>
            </select>
          </label>
          <Show when={source() === "fromStage"}>
            <label>From stage
              <select name="fromStage" value={before()} aria-invalid={!!err("fromStage")} aria-describedby={err("fromStage") ? "err-fromStage" : undefined}>
                <For each={stages().filter((s) => s !== stage())}>{(s) => <option value={s}>{s}</option>}</For>
              </select>
              <FieldError id="err-fromStage" message={err("fromStage")} />
            </label>
          </Show>
          <Show when={source() === "versionId"}>
            <label>Stored version id
              <input name="versionId" aria-invalid={!!err("versionId")} />
              <FieldError id="err-versionId" message={err("versionId")} />
            </label>
          </Show>
          <label>Description <input name="description" maxLength={500} placeholder="what and why" /></label>
          <Show when={source() === "flows"}>
            <label class="wide">Flow JSON
              <textarea name="flows" rows="5" spellcheck={false} aria-invalid={!!err("flows")} />
              <FieldError id="err-flows" message={err("flows")} />
            </label>
          </Show>
        </div>
        <div class="actions"><button type="submit" class="primary" disabled={busy()} data-testid="promote-submit">{busy() ? "Promoting…" : "Promote"}</button></div>
      </form>
    </details>
  );
}

function Promotions(props: { pipeline: Pipeline; who: (id: string | null) => string; decide: (p: Promotion, approve: boolean, reason?: string) => Promise<void> }) {
  const mayApprove = () => can("deployments", "approve");
  return (
    <section class="panel" aria-labelledby="promotions-title" data-testid="promotions">
      <div class="panel-head"><h2 id="promotions-title">Promotions</h2><span class="muted small">newest first; approving or rejecting takes deployments:approve, and never the requester's own</span></div>
      <Show when={props.pipeline.promotions.length > 0} fallback={<p class="muted">No promotion yet. Promote a version to the first stage above; later stages take what the stage before runs.</p>}>
        <table class="grid">
          <thead><tr><th>Stage</th><th>Status</th><th>Version</th><th>Requested by</th><th>Decided by</th><th>Rollout</th><th>Why</th><th>When</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={props.pipeline.promotions}>{(x) => {
              const mine = () => x.requestedBy !== null && x.requestedBy === caller()?.id;
              return (
                <tr data-promotion={x.id} data-stage={x.stage} data-status={x.status}>
                  <td class="strong">{x.stage}</td>
                  <td><StatusBadge status={x.status} tone={PROMOTION_TONE[x.status] ?? "unknown"} /></td>
                  <td class="mono small">{x.source.kind === "stage" ? `from ${x.source.fromStage}` : x.versionId ? x.versionId.slice(0, 8) : (x.digest ?? "").slice(0, 12)}</td>
                  <td>{props.who(x.requestedBy)}</td>
                  <td>{props.who(x.decidedBy)}</td>
                  <td><Show when={x.rolloutId} fallback={<span class="muted">—</span>}>{(id) => <A href={`/rollouts/${id()}`}>{id().slice(0, 8)}</A>}</Show></td>
                  <td class="muted small">{x.failure ? <><code>{x.failure.code}</code> {x.failure.message}</> : x.reason ?? ""}</td>
                  <td class="muted" title={x.createdAt}>{ago(x.createdAt)}</td>
                  <td class="row-actions">
                    <Show when={x.status === "awaiting_approval"}>
                      <Show when={mayApprove()} fallback={<span class="muted small" data-testid="needs-approver">waits for an approver</span>}>
                        <Show when={!mine()} fallback={<span class="muted small" data-testid="own-promotion">you asked: a second person approves</span>}>
                          <button type="button" class="primary" onClick={() => void props.decide(x, true)} data-testid="approve-promotion">Approve</button>
                          <button type="button" class="danger-quiet" onClick={() => void props.decide(x, false, "rejected in the console")} data-testid="reject-promotion">Reject</button>
                        </Show>
                      </Show>
                    </Show>
                  </td>
                </tr>
              );
            }}</For>
          </tbody>
        </table>
      </Show>
    </section>
  );
}
