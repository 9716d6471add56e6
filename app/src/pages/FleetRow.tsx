/** One instance in the fleet table, with the actions the signed-in person may take; and the table's empty state. */
import { A } from "@solidjs/router";
import { For, Show } from "solid-js";
import { can } from "../api/me.ts";
import type { InstanceSummary } from "../fleet/fleetEvents.ts";
import { ActionButtons, type QuickAction } from "../fleet/instanceActions.tsx";
import { ago, StatusBadge } from "../ui/bits.tsx";

export function FleetRow(props: {
  instance: InstanceSummary; clusterName: string; now: number;
  /** Its place in the whole list (aria-rowindex, and the virtualiser's measurement). */
  index?: number; measure?: (el: HTMLElement) => void;
  onAct: (what: QuickAction) => void;
}) {
  const i = () => props.instance;
  return (
    <tr data-instance={i().name} data-index={props.index} aria-rowindex={props.index === undefined ? undefined : props.index + 2} ref={(el) => queueMicrotask(() => props.measure?.(el))}>
      <td class="strong"><A href={`/instances/${i().id}`}>{i().name}</A></td>
      <td><StatusBadge status={i().status} title={i().statusReason} /><Show when={i().statusReason && i().status !== "running"}><span class="reason">{i().statusReason}</span></Show></td>
      <td class={i().desiredState !== i().status && i().status !== "deploying" ? "drift" : "muted"}>{i().desiredState}</td>
      <td>{props.clusterName}</td>
      <td class="muted">{i().team}</td>
      <td class="muted">{i().nodeRedVersion ?? i().stack}</td>
      <td><Endpoints endpoints={i().endpoints} /></td>
      <td class="muted" title={i().updatedAt}>{ago(i().updatedAt, props.now)}</td>
      <td class="row-actions">
        <ActionButtons instance={i()} canUpdate={can("instances", "update")} canDelete={can("instances", "delete")} onAct={(what) => props.onAct(what)} />
      </td>
    </tr>
  );
}

function Endpoints(props: { endpoints: Record<string, string> }) {
  const entries = () => Object.entries(props.endpoints);
  return (
    <Show when={entries().length > 0} fallback={<span class="muted">—</span>}>
      <span class="endpoints">
        <For each={entries()}>{([name, url]) => <a href={url} target="_blank" rel="noopener noreferrer" title={url}>{name}</a>}</For>
      </span>
    </Show>
  );
}

export function FleetEmpty(props: { filtered: boolean; hasClusters: boolean; canCreate: boolean }) {
  return (
    <div class="empty" data-testid="fleet-empty">
      <Show when={!props.filtered} fallback={<p>No instance matches these filters. Clear the search or pick another status or cluster.</p>}>
        <p><strong>No instances yet.</strong></p>
        <Show when={props.hasClusters} fallback={<p>First connect a cluster: register it (<code>POST /api/clusters</code>) and run its bridge (<code>npm run bridge</code>, see the Clusters page). <code>npm start</code> does this for a cluster named <code>local</code>.</p>}>
          <p>{props.canCreate ? "Create one with the Create instance button: its cluster's bridge starts a Node-RED for it within seconds." : "Ask an admin to create one; it will show up here live."}</p>
        </Show>
      </Show>
    </div>
  );
}
