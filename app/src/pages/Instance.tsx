/** One instance: what it is, its health over time, its flows and their versions, its deployments, secrets and audit trail. */
import { A, useParams } from "@solidjs/router";
import { createEffect, createResource, createSignal, For, on, onCleanup, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import { isInstanceStatus } from "../fleet/fleetEvents.ts";
import { useClusters } from "../fleet/useClusters.ts";
import { useLive } from "../live/useLive.ts";
import { AuditTable } from "../ui/AuditTable.tsx";
import { ago, LiveBadge, StatusBadge, useNow } from "../ui/bits.tsx";
import { ActionButtons, useInstanceActions } from "../fleet/instanceActions.tsx";
import { useNavigate } from "@solidjs/router";
import { ListFooter } from "../ui/ListFooter.tsx";
import { DeploymentRows } from "./Deployments.tsx";
import { FlowVersions } from "./instance/FlowVersions.tsx";
import { HealthPanel } from "./instance/HealthPanel.tsx";

export function Instance() {
  const params = useParams<{ id: string }>();
  const { nameOf } = useClusters();
  const now = useNow(5000);
  const [notice, setNotice] = createSignal<string | null>(null);
  const [instance, { refetch }] = createResource(() => params.id, async (id) => {
    const { data, error, response } = await api.GET("/api/instances/{id}", { params: { path: { id } } });
    if (!data) throw new Error(messageOf(error, response));
    return data;
  });
  const [healthTick, setHealthTick] = createSignal(0);

  const deployments = useCursorList(async (cursor) => api.GET("/api/deployments", { params: { query: { instanceId: params.id, limit: 20, ...(cursor ? { cursor } : {}) } } }));
  const audit = useCursorList(async (cursor) => api.GET("/api/audit", { params: { query: { resourceType: "instance", resourceId: params.id, limit: 25, ...(cursor ? { cursor } : {}) } } }), { immediate: false });
  // Permissions arrive with /api/auth/me, which may answer after this page opened (a direct link or a reload).
  createEffect(on(() => can("audit", "read"), (allowed) => { if (allowed) void audit.reload(); }));

  const live = useLive("/ws/fleet", {
    onMessage: (m) => {
      if (!isInstanceStatus(m) || m.data.instanceId !== params.id) return;
      void refetch();
      setHealthTick((n) => n + 1);
      void deployments.reload();
    },
    onOpen: () => void refetch(),
  });
  // The health sweep runs every minute: read the series again at that pace.
  const poll = setInterval(() => setHealthTick((n) => n + 1), 60_000);
  onCleanup(() => clearInterval(poll));

  const navigate = useNavigate();
  const actions = useInstanceActions((_i, message, ok, what) => {
    setNotice(message);
    if (ok && what === "delete") navigate("/fleet");
    else void refetch();
  });

  return (
    <section class="page">
      <div class="page-head">
        <h1><A href="/fleet" class="muted">Fleet</A> / {instance.latest?.name ?? params.id.slice(0, 8)}</h1>
        <Show when={instance.latest}>{(i) => <StatusBadge status={i().status} title={i().statusReason} />}</Show>
        <LiveBadge state={live()} />
        <span class="spacer" />
        <Show when={instance.latest}>
          {(i) => <span class="row-actions"><ActionButtons instance={i()} canUpdate={can("instances", "update")} canDelete={can("instances", "delete")} onAct={(what) => actions.run(i(), what)} /></span>}
        </Show>
      </div>
      <Show when={notice()}><p class="notice" role="status">{notice()} <button class="link" type="button" onClick={() => setNotice(null)}>dismiss</button></p></Show>
      <Show when={instance.error}><p class="error" role="alert">{String((instance.error as Error).message)}</p></Show>
      <Show when={instance.latest}>
        {(i) => (
          <>
            <dl class="facts" data-testid="instance-facts">
              <div><dt>Desired</dt><dd class={i().desiredState !== i().status && i().status !== "deploying" ? "drift" : ""}>{i().desiredState}</dd></div>
              <div><dt>Cluster</dt><dd>{nameOf(i().clusterId)}</dd></div>
              <div><dt>Team</dt><dd>{i().team}</dd></div>
              <div><dt>Stack</dt><dd>{i().stack}{i().nodeRedVersion ? ` (Node-RED ${i().nodeRedVersion})` : ""}</dd></div>
              <div><dt>Replicas</dt><dd>{i().replicas}</dd></div>
              <div><dt>Resources</dt><dd>{Object.entries(i().resources).map(([k, v]) => `${k} ${v}`).join(", ") || "defaults"}</dd></div>
              <div><dt>Updated</dt><dd title={i().updatedAt}>{ago(i().updatedAt, now())}</dd></div>
              <div><dt>Endpoints</dt><dd>
                <Show when={Object.keys(i().endpoints).length > 0} fallback={<span class="muted">none yet (they come when the bridge starts it)</span>}>
                  <span class="endpoints"><For each={Object.entries(i().endpoints)}>{([name, url]) => <a href={url} target="_blank" rel="noopener noreferrer" title={url}>{name === "admin" ? "editor" : name} ↗</a>}</For></span>
                </Show>
              </dd></div>
            </dl>
            <Show when={i().statusReason}><p class="muted">Reason: {i().statusReason}</p></Show>

            <HealthPanel instanceId={params.id} tick={healthTick()} />

            <div class="two-col">
              <section class="panel" aria-labelledby="secrets-title">
                <h2 id="secrets-title">Secrets and environment</h2>
                <p class="muted small">Secret values are write-only: the API returns names only.</p>
                <Show when={i().secretNames.length > 0} fallback={<p class="muted">No secrets.</p>}>
                  <ul class="chips" data-testid="secret-names"><For each={i().secretNames}>{(s) => <li><code>{s}</code></li>}</For></ul>
                </Show>
                <Show when={Object.keys(i().env).length > 0}>
                  <h3>Environment</h3>
                  <ul class="chips"><For each={Object.keys(i().env)}>{(k) => <li><code>{k}</code></li>}</For></ul>
                </Show>
              </section>
              <FlowVersions instance={i()} onDeployed={() => void deployments.reload()} />
            </div>

            <section class="panel" aria-labelledby="inst-deployments-title">
              <h2 id="inst-deployments-title">Deployments</h2>
              <Show when={deployments.items().length > 0}><DeploymentRows items={deployments.items()} nameOf={() => i().name} hideInstance /></Show>
              <ListFooter list={deployments} empty={<p class="muted">No deployments yet. Start one from the Deployments page or redeploy a stored version above.</p>} />
            </section>

            <section class="panel" aria-labelledby="inst-audit-title">
              <h2 id="inst-audit-title">Audit trail</h2>
              <Show when={can("audit", "read")} fallback={<p class="muted">Your role cannot read the audit log.</p>}>
                <Show when={audit.items().length > 0}><AuditTable items={audit.items()} showResource={false} testId="instance-audit" /></Show>
                <ListFooter list={audit} empty={<p class="muted">No audit entries for this instance.</p>} />
              </Show>
            </section>
          </>
        )}
      </Show>
      <actions.View />
    </section>
  );
}
