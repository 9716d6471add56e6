/**
 * A resource × action grid of checkboxes (custom roles, API key scopes); a row's header ticks the whole row. The
 * last column holds the actions only some resources have (deployments: approve).
 */
import { For, Show } from "solid-js";
import { ACTIONS, actionsOf, EXTRA_ACTIONS, RESOURCE_WORDS, RESOURCES } from "../governance/permissionTable.ts";

export function PermissionPicker(props: { ticked: Set<string>; onChange: (next: Set<string>) => void; label: string; idPrefix: string }) {
  const toggle = (key: string, on: boolean) => {
    const next = new Set(props.ticked);
    if (on) next.add(key); else next.delete(key);
    props.onChange(next);
  };
  const toggleRow = (r: string) => {
    // Only the four common actions: approving is a deliberate, separate tick.
    const all = ACTIONS.every((a) => props.ticked.has(`${r}:${a}`));
    const next = new Set(props.ticked);
    for (const a of ACTIONS) if (all) next.delete(`${r}:${a}`); else next.add(`${r}:${a}`);
    props.onChange(next);
  };
  return (
    <table class="perm-grid" aria-label={props.label}>
      <thead><tr><th scope="col">Resource</th><For each={ACTIONS}>{(a) => <th scope="col">{a}</th>}</For><th scope="col">other</th></tr></thead>
      <tbody>
        <For each={RESOURCES}>{(r) => (
          <tr>
            <th scope="row"><button type="button" class="link" title={`tick or clear every action on ${r}`} onClick={() => toggleRow(r)}>{r}</button> <span class="muted">{RESOURCE_WORDS[r]}</span></th>
            <For each={ACTIONS}>{(a) => (
              <td><input type="checkbox" id={`${props.idPrefix}-${r}-${a}`} aria-label={`${r} ${a}`} checked={props.ticked.has(`${r}:${a}`)} onChange={(e) => toggle(`${r}:${a}`, e.currentTarget.checked)} /></td>
            )}</For>
            <td>
              <Show when={EXTRA_ACTIONS[r]}>
                <For each={actionsOf(r).slice(ACTIONS.length)}>{(a) => (
                  <label class="small nowrap"><input type="checkbox" id={`${props.idPrefix}-${r}-${a}`} aria-label={`${r} ${a}`} checked={props.ticked.has(`${r}:${a}`)} onChange={(e) => toggle(`${r}:${a}`, e.currentTarget.checked)} /> {a}</label>
                )}</For>
              </Show>
            </td>
          </tr>
        )}</For>
      </tbody>
    </table>
  );
}
