/**
 * CI hooks (docs/ci.md): a URL a CI job or a forge posts a flow file to, signed
 * with the hook's own secret (Standard Webhooks or GitHub's
 * X-Hub-Signature-256), each with one fixed action: a rollout to a selector or
 * a promotion to a pipeline stage. Create (the secret is shown once, with how
 * to sign a delivery), rotate the secret (shown once), delete.
 */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import type { ApiBody, components } from "../../../protocol/api/client.ts";
import { parseWaves } from "../rollouts/rolloutView.ts";
import { ago, FieldError, useConfirm } from "../ui/bits.tsx";
import { ListFooter } from "../ui/ListFooter.tsx";
import { SelectorPreview } from "../ui/SelectorPreview.tsx";

type Hook = components["schemas"]["CiHook"];
interface Issued { name: string; url: string; secret: string; rotated: boolean }

export function CiHooks() {
  const [creating, setCreating] = createSignal(false);
  const [issued, setIssued] = createSignal<Issued | null>(null);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [confirm, ConfirmView] = useConfirm();
  const list = useCursorList((cursor) => api.GET("/api/webhooks/ci", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}) } } }));
  const [pipelines] = createResource(async () => (await api.GET("/api/pipelines", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const pipelineName = (id: string) => pipelines.latest?.find((p) => p.id === id)?.name ?? id.slice(0, 8);
  const absolute = (url: string) => new URL(url, location.origin).toString();

  const rotate = (h: Hook) => confirm({
    title: `Rotate ${h.name}'s secret?`, action: "Rotate secret",
    body: <p>The current secret stops working at once: put the new one in the CI job's (or the forge's) webhook settings.</p>,
    run: async () => {
      const { data, error, response } = await api.POST("/api/webhooks/ci/{id}/rotate", { params: { path: { id: h.id } } });
      if (!data) return void setNotice(`${h.name}: ${messageOf(error, response)}`);
      setIssued({ name: data.name, url: absolute(data.url), secret: data.secret, rotated: true });
    },
  });
  const remove = (h: Hook) => confirm({
    title: `Delete the CI hook ${h.name}?`, action: "Delete hook",
    body: <p>Deliveries to its URL are refused from now on; rollouts it started stay.</p>,
    run: async () => {
      const { error, response } = await api.DELETE("/api/webhooks/ci/{id}", { params: { path: { id: h.id } } });
      setNotice(error ? `${h.name}: ${messageOf(error, response)}` : `${h.name} deleted`);
      void list.reload();
    },
  });

  return (
    <section class="page">
      <div class="page-head">
        <h1>CI hooks</h1><span class="muted small">signed URLs a CI job posts a flow file to</span>
        <span class="spacer" />
        <Show when={can("deployments", "create")}><button type="button" class="primary" onClick={() => { setCreating(true); setIssued(null); }} data-testid="new-hook">New CI hook</button></Show>
      </div>
      <Show when={creating()}>
        <CreateHook pipelines={pipelines.latest ?? []} onClose={() => setCreating(false)} onCreated={(h) => { setCreating(false); setIssued({ name: h.name, url: absolute(h.url), secret: h.secret, rotated: false }); void list.reload(); }} />
      </Show>
      <Show when={issued()}>{(i) => <HookSecretOnce issued={i()} onDone={() => setIssued(null)} />}</Show>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <Show when={list.items().length > 0}>
        <table class="grid" data-testid="hooks-table">
          <thead><tr><th>Name</th><th>Action</th><th>URL</th><th>Team</th><th>Last delivery</th><th>Created</th><th class="actions-col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            <For each={list.items()}>{(h) => (
              <tr data-hook={h.name}>
                <td class="strong">{h.name}</td>
                <td>{h.action.kind === "rollout" ? <>rollout to <code>{h.action.selector}</code></> : <>promote to <strong>{pipelineName(h.action.pipelineId)}</strong> / {h.action.stage}</>}</td>
                <td class="mono small">{h.url}</td>
                <td class="muted">{h.team ?? "—"}</td>
                <td class="muted" title={h.lastDeliveryAt ?? ""}>{ago(h.lastDeliveryAt)}</td>
                <td class="muted" title={h.createdAt}>{ago(h.createdAt)}</td>
                <td class="row-actions">
                  <Show when={can("deployments", "update")}><button type="button" onClick={() => rotate(h)}>Rotate secret</button></Show>
                  <Show when={can("deployments", "delete")}><button type="button" class="danger-quiet" onClick={() => remove(h)}>Delete</button></Show>
                </td>
              </tr>
            )}</For>
          </tbody>
        </table>
      </Show>
      <ListFooter list={list} empty={
        <div class="empty"><p><strong>No CI hooks yet.</strong></p>
          <p>A hook gives a CI job (GitHub Actions, GitLab CI, Gitea) a URL to post its flow file to, signed with the hook's secret, with no API key in the job. Each hook does one thing: a rollout to a label selector, or a promotion to a pipeline stage (docs/ci.md).</p></div>
      } />
      <ConfirmView />
    </section>
  );
}

type Body = ApiBody<"/api/webhooks/ci", "post">;
const FIELDS = ["name", "team", "action", "action.selector", "action.rollout", "action.pipelineId", "action.stage"] as const;

function CreateHook(props: { pipelines: components["schemas"]["PipelineSummary"][]; onClose: () => void; onCreated: (h: components["schemas"]["CiHookWithSecret"]) => void }) {
  const [kind, setKind] = createSignal<"rollout" | "promote">("rollout");
  const [pipelineId, setPipelineId] = createSignal(props.pipelines[0]?.id ?? "");
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const err = (f: string) => errors().fields[f];
  const stages = () => props.pipelines.find((p) => p.id === pipelineId())?.stages ?? [];

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    let action: Body["action"];
    if (kind() === "rollout") {
      const wavesText = String(f.get("waves") ?? "").trim();
      const waves = wavesText ? parseWaves(wavesText) : null;
      if (waves && "error" in waves) return setErrors({ fields: { "action.rollout": waves.error } });
      action = { kind: "rollout", selector: String(f.get("selector") ?? ""), ...(waves && "waves" in waves ? { rollout: { waves: waves.waves } } : {}) };
    } else action = { kind: "promote", pipelineId: pipelineId(), stage: String(f.get("stage") ?? "") };
    const team = String(f.get("team") ?? "").trim();
    setBusy(true);
    const { data, error } = await api.POST("/api/webhooks/ci", { body: { name: String(f.get("name") ?? "").trim(), action, ...(team ? { team } : {}) } });
    setBusy(false);
    if (!data) {
      const out = formErrors(error, FIELDS);
      // The API names a bad selector or stage by code; here they are the action's fields.
      const moved: Record<string, string> = { ...out.fields };
      if (moved.selector) { moved["action.selector"] = moved.selector; delete moved.selector; }
      if (moved.stage) { moved["action.stage"] = moved.stage; delete moved.stage; }
      if (moved.pipelineId) { moved["action.pipelineId"] = moved.pipelineId; delete moved.pipelineId; }
      return setErrors({ ...out, fields: moved });
    }
    props.onCreated(data);
  };

  return (
    <form class="panel form" onSubmit={submit} novalidate data-testid="hook-form" aria-labelledby="hook-form-title">
      <h2 id="hook-form-title">New CI hook</h2>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <label>Name
          <input name="name" placeholder="web-main" aria-invalid={!!err("name")} aria-describedby={err("name") ? "err-name" : undefined} />
          <FieldError id="err-name" message={err("name")} />
        </label>
        <label>Team <span class="muted">optional</span><input name="team" /></label>
        <label>What a delivery does
          <select name="kind" value={kind()} onChange={(e) => setKind(e.currentTarget.value as "rollout" | "promote")}>
            <option value="rollout">a rollout to a label selector</option>
            <option value="promote" disabled={props.pipelines.length === 0}>a promotion to a pipeline stage{props.pipelines.length === 0 ? " (no pipeline yet)" : ""}</option>
          </select>
        </label>
        <Show when={kind() === "rollout"}>
          <div class="wide"><SelectorPreview name="selector" label="Instances (label selector)" error={err("action.selector")} testid="hook-selector" /></div>
          <label>Waves <span class="muted">optional, e.g. 1, 100%</span>
            <input name="waves" aria-invalid={!!err("action.rollout")} />
            <FieldError id="err-action.rollout" message={err("action.rollout")} />
          </label>
        </Show>
        <Show when={kind() === "promote"}>
          <label>Pipeline
            <select name="pipelineId" value={pipelineId()} onChange={(e) => setPipelineId(e.currentTarget.value)} aria-invalid={!!err("action.pipelineId")}>
              <For each={props.pipelines}>{(p) => <option value={p.id}>{p.name}</option>}</For>
            </select>
            <FieldError id="err-action.pipelineId" message={err("action.pipelineId")} />
          </label>
          <label>Stage
            <select name="stage" aria-invalid={!!err("action.stage")}>
              <For each={stages()}>{(s) => <option value={s}>{s}</option>}</For>
            </select>
            <FieldError id="err-action.stage" message={err("action.stage")} />
          </label>
        </Show>
      </div>
      <p class="muted small">The hook acts as you: its deliveries are audited as you and need your role to allow deployments:create when they arrive.</p>
      <div class="actions">
        <button type="button" onClick={() => props.onClose()}>Cancel</button>
        <button type="submit" class="primary" disabled={busy()}>{busy() ? "Creating…" : "Create hook"}</button>
      </div>
    </form>
  );
}

/** The secret, once, with what CI needs: the URL and a signed delivery (Standard Webhooks, bash + openssl). */
function HookSecretOnce(props: { issued: Issued; onDone: () => void }) {
  const i = () => props.issued;
  const command = () => [
    `REDFORGE_HOOK_URL=${i().url}`,
    `REDFORGE_HOOK_SECRET=…   # the secret above, from the CI's secret store`,
    `body=$(jq -c '{flows: .}' flows.json)`,
    `id="msg_$(uuidgen)"; ts=$(date +%s)`,
    `key=$(printf %s "\${REDFORGE_HOOK_SECRET#whsec_}" | base64 -d | xxd -p -c 256)`,
    `sig=$(printf %s "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)`,
    `curl -fsS -X POST "$REDFORGE_HOOK_URL" -H 'Content-Type: application/json' \\`,
    `  -H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" --data "$body"`,
  ].join("\n");
  return (
    <div class="secret-once" role="status" data-testid="hook-secret">
      <p><strong>{i().name}: {i().rotated ? "the new secret" : "the hook's secret"}. It is shown only now; the old one {i().rotated ? "no longer works" : "does not exist"}.</strong></p>
      <label class="small">Secret <input readonly value={i().secret} data-testid="hook-secret-value" aria-label="CI hook secret" /></label>
      <p class="small">Deliver to <code data-testid="hook-url">{i().url}</code> with a Standard Webhooks signature (below), or paste the URL and the whole secret into a GitHub / Gitea webhook (X-Hub-Signature-256); the body is <code>{"{\"flows\": [...]}"}</code> or <code>{"{\"versionId\": \"…\"}"}</code>.</p>
      <pre class="command" data-testid="hook-command">{command()}</pre>
      <div class="actions start"><button type="button" class="primary" onClick={() => props.onDone()}>I have saved it</button></div>
    </div>
  );
}
