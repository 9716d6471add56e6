/**
 * The create-instance form. The API is the validator: whatever it answers is
 * shown next to the field its `details` (or its code) names, see api/fieldErrors.ts.
 */
import { createSignal, For, Show } from "solid-js";
import { api } from "../api/api.ts";
import { formErrors, type FormErrors } from "../api/fieldErrors.ts";
import type { ApiBody } from "../../../protocol/api/client.ts";
import { parseKeyValues } from "../fleet/keyValues.ts";
import type { Cluster } from "../fleet/useClusters.ts";
import { FieldError } from "../ui/bits.tsx";

const FIELDS = ["name", "clusterId", "stack", "resources.cpu", "resources.memory", "env", "secrets"] as const;
type Field = (typeof FIELDS)[number];

export function CreateInstance(props: { clusters: Cluster[]; onClose: () => void; onCreated: (name: string) => void }) {
  const [errors, setErrors] = createSignal<FormErrors>({ fields: {} });
  const [busy, setBusy] = createSignal(false);
  const err = (f: Field) => errors().fields[f];
  const describedBy = (f: Field) => (err(f) ? `err-${f}` : undefined);

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim();
    const env = parseKeyValues(String(f.get("env") ?? ""));
    const secrets = parseKeyValues(String(f.get("secrets") ?? ""));
    if ("error" in env || "error" in secrets) {
      return setErrors({ fields: { ...("error" in env ? { env: env.error } : {}), ...("error" in secrets ? { secrets: secrets.error } : {}) } });
    }
    const resources = { ...(text("cpu") ? { cpu: text("cpu") } : {}), ...(text("memory") ? { memory: text("memory") } : {}) };
    const body: ApiBody<"/api/instances", "post"> = {
      name: text("name"),
      clusterId: text("clusterId"),
      ...(text("stack") ? { stack: text("stack") } : {}),
      ...(Object.keys(resources).length ? { resources } : {}),
      ...(Object.keys(env.values).length ? { env: env.values } : {}),
      ...(Object.keys(secrets.values).length ? { secrets: secrets.values } : {}),
    };
    setBusy(true);
    const { data, error } = await api.POST("/api/instances", { body });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, FIELDS));
    props.onCreated(data.name);
  };

  return (
    <form class="panel form" onSubmit={submit} aria-labelledby="create-title" data-testid="create-form" novalidate>
      <h2 id="create-title">Create instance</h2>
      <Show when={errors().form}><p class="error" role="alert">{errors().form}</p></Show>
      <div class="form-grid">
        <label>Name
          <input name="name" placeholder="support-agent" aria-invalid={!!err("name")} aria-describedby={describedBy("name")} />
          <FieldError id="err-name" message={err("name")} />
        </label>
        <label>Cluster
          <select name="clusterId" aria-invalid={!!err("clusterId")} aria-describedby={describedBy("clusterId")}>
            <For each={props.clusters}>{(c) => <option value={c.id}>{c.name} ({c.status})</option>}</For>
          </select>
          <FieldError id="err-clusterId" message={err("clusterId")} />
        </label>
        <label>Node-RED stack
          <input name="stack" placeholder="default (5.0)" aria-invalid={!!err("stack")} aria-describedby={describedBy("stack")} />
          <FieldError id="err-stack" message={err("stack")} />
        </label>
        <label>CPU
          <input name="cpu" placeholder="500m" aria-invalid={!!err("resources.cpu")} aria-describedby={describedBy("resources.cpu")} />
          <FieldError id="err-resources.cpu" message={err("resources.cpu")} />
        </label>
        <label>Memory
          <input name="memory" placeholder="512Mi" aria-invalid={!!err("resources.memory")} aria-describedby={describedBy("resources.memory")} />
          <FieldError id="err-resources.memory" message={err("resources.memory")} />
        </label>
        <label class="wide">Environment <span class="muted">KEY=value, one a line</span>
          <textarea name="env" rows="2" spellcheck={false} aria-invalid={!!err("env")} aria-describedby={describedBy("env")} />
          <FieldError id="err-env" message={err("env")} />
        </label>
        <label class="wide">Secrets <span class="muted">KEY=value, write-only: stored sealed, only names come back</span>
          <textarea name="secrets" rows="2" spellcheck={false} autocomplete="off" class="secret" aria-invalid={!!err("secrets")} aria-describedby={describedBy("secrets")} />
          <FieldError id="err-secrets" message={err("secrets")} />
        </label>
      </div>
      <div class="actions">
        <button type="button" onClick={() => props.onClose()}>Cancel</button>
        <button type="submit" class="primary" disabled={busy()}>{busy() ? "Creating…" : "Create"}</button>
      </div>
    </form>
  );
}
