/**
 * A label-selector field with a live preview of the instances it picks now
 * (GET /api/instances?selector=, the first page), or the API's message with
 * the position of the mistake. The preview is what a rollout would select if
 * it started now; the API takes the selection again at start.
 */
import { createSignal, For, onCleanup, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import type { components } from "../../../protocol/api/client.ts";
import { FieldError, StatusBadge } from "./bits.tsx";

type Instance = components["schemas"]["InstanceSummary"];
const PREVIEW = 50;

interface Preview { items: Instance[]; more: boolean; error: string | null; position: number | null }

export function SelectorPreview(props: {
  name: string; label: string; value?: string; error?: string | undefined; placeholder?: string;
  onInput?: (value: string) => void; testid?: string;
}) {
  const [preview, setPreview] = createSignal<Preview | null>(null);
  const [busy, setBusy] = createSignal(false);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let asked = 0;
  onCleanup(() => clearTimeout(timer));

  const look = async (selector: string) => {
    const mine = ++asked;
    if (!selector.trim()) { setPreview(null); setBusy(false); return; }
    setBusy(true);
    const { data, error, response } = await api.GET("/api/instances", { params: { query: { selector, limit: PREVIEW } } });
    if (mine !== asked) return; // the person typed on: only the newest answer shows
    setBusy(false);
    if (!data) {
      const position = (error?.error.details as { position?: unknown } | undefined)?.position;
      setPreview({ items: [], more: false, error: messageOf(error, response), position: typeof position === "number" ? position : null });
      return;
    }
    setPreview({ items: data.items, more: !!data.nextCursor, error: null, position: null });
  };
  const onInput = (value: string) => {
    props.onInput?.(value);
    clearTimeout(timer);
    timer = setTimeout(() => void look(value), 300);
  };
  if (props.value) void look(props.value);

  const id = `sel-${props.name}`;
  const live = () => {
    const p = preview();
    if (!p) return "";
    if (p.error) return `not a valid selector: ${p.error}`;
    const n = p.items.length;
    return n === 0 ? "no live instance matches it now" : `${n}${p.more ? "+" : ""} instance${n === 1 ? " matches" : "s match"} now`;
  };
  return (
    <div class="selector-field">
      <label>{props.label}
        <input name={props.name} value={props.value ?? ""} placeholder={props.placeholder ?? "env=staging,region in (eu,us)"} autocomplete="off" spellcheck={false}
          aria-invalid={!!props.error || !!preview()?.error} aria-describedby={props.error ? `err-${props.name} ${id}-preview` : `${id}-preview`} data-testid={props.testid}
          onInput={(e) => onInput(e.currentTarget.value)} />
      </label>
      <FieldError id={`err-${props.name}`} message={props.error} />
      <div id={`${id}-preview`} class="selector-preview" data-testid={props.testid ? `${props.testid}-preview` : undefined}>
        <span class={preview()?.error ? "field-error" : "muted small"} role="status" data-testid={props.testid ? `${props.testid}-count` : undefined}>
          {busy() ? "looking…" : live()}
          <Show when={preview()?.position !== null && preview()?.position !== undefined}> (at character {(preview()?.position ?? 0) + 1})</Show>
        </span>
        <Show when={(preview()?.items.length ?? 0) > 0}>
          <ul class="chips" aria-label="Instances the selector picks now">
            <For each={preview()!.items}>{(i) => (
              <li class="chip" data-match={i.name}>{i.name} <StatusBadge status={i.status} /></li>
            )}</For>
          </ul>
        </Show>
      </div>
    </div>
  );
}
