/** Audit entries as a dense table: when, who, what, on which resource, the answer's status, and the row's hash. */
import { For, Show } from "solid-js";
import type { components } from "../../../protocol/api/client.ts";
import { formatInstant } from "./format.ts";

export type AuditEntry = components["schemas"]["AuditEntry"];

function detailsText(d: unknown): string {
  if (d === null || d === undefined) return "";
  const s = JSON.stringify(d);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}

export function AuditTable(props: { items: AuditEntry[]; userName?: (id: string | null) => string; showResource?: boolean; testId?: string }) {
  const who = (id: string | null) => (props.userName ? props.userName(id) : id ?? "system");
  return (
    <table class="grid" data-testid={props.testId}>
      <thead><tr><th>#</th><th>Time</th><th>Who</th><th>Action</th><Show when={props.showResource !== false}><th>Resource</th></Show><th>Status</th><th>Details</th><th>Hash</th></tr></thead>
      <tbody>
        <For each={props.items}>{(e) => (
          <tr data-audit={e.action}>
            <td class="muted num">{e.id}</td>
            <td class="muted nowrap">{formatInstant(e.timestamp)}</td>
            <td>{who(e.userId)}</td>
            <td><code>{e.action}</code></td>
            <Show when={props.showResource !== false}><td class="muted">{e.resourceType ?? ""}{e.resourceId ? ` ${e.resourceId.slice(0, 8)}` : ""}</td></Show>
            <td class="muted num">{e.statusCode ?? ""}</td>
            <td class="muted details" title={detailsText(e.details)}>{detailsText(e.details)}</td>
            <td class="muted mono" title={e.hash}>{e.hash.slice(0, 10)}</td>
          </tr>
        )}</For>
      </tbody>
    </table>
  );
}
