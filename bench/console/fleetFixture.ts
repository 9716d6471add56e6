/**
 * A fleet of N synthetic instances as the API answers it (paged by cursor), and
 * the static baseline page showing the same rows with no framework: what the
 * console's figures are compared against in the same run.
 */
import type { components } from "../../protocol/api/client.ts";

type InstanceSummary = components["schemas"]["InstanceSummary"];
type Cluster = components["schemas"]["ClusterState"];

export const CLUSTER: Cluster = {
  id: "00000000-0000-4000-8000-0000000000c1", name: "bench-cluster", driver: "simulated", labels: { region: "bench" },
  status: "connected", lastSeenAt: new Date().toISOString(), warnings: [], createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(),
  connected: true, bridgeVersion: "bench", connectedAt: new Date().toISOString(),
};

const STATUSES = ["running", "running", "running", "running", "stopped", "starting", "failed", "unknown"];

export function fleet(n: number): InstanceSummary[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    name: `agent-${String(i).padStart(4, "0")}`,
    clusterId: CLUSTER.id, team: `team-${i % 7}`,
    status: STATUSES[i % STATUSES.length]!, statusReason: i % 8 === 6 ? "exited 3 times within 5 s" : null,
    desiredState: i % 8 === 4 ? "stopped" : "running",
    resources: { cpu: "250m", memory: "256Mi" }, replicas: 1,
    endpoints: { admin: `http://10.0.${i >> 8}.${i & 255}:1880`, front: `http://10.0.${i >> 8}.${i & 255}:1881` },
    labels: { env: i % 3 === 0 ? "prod" : "staging" }, stack: "5.0", nodeRedVersion: "5.0.7",
    createdAt: new Date(now - i * 60_000).toISOString(), updatedAt: new Date(now - i * 1000).toISOString(),
  }));
}

/** GET /api/instances over the fixture: `limit` per page, the cursor is the next offset. */
export function instancesPage(all: InstanceSummary[], url: URL): { items: InstanceSummary[]; nextCursor: string | null } {
  const limit = Math.min(200, Number(url.searchParams.get("limit") ?? 50));
  const start = Number(url.searchParams.get("cursor") ?? 0);
  const items = all.slice(start, start + limit);
  return { items, nextCursor: start + limit < all.length ? String(start + limit) : null };
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The baseline: the same table rendered on the server, one small script applying /ws/fleet frames to it. */
export function baselineHtml(all: InstanceSummary[]): string {
  const rows = all.map((i) => `<tr data-instance="${esc(i.name)}" id="i-${i.id}"><td>${esc(i.name)}</td><td><span data-status="${i.status}">${i.status}</span></td><td>${i.desiredState}</td><td>${CLUSTER.name}</td><td>${i.team}</td><td>${i.nodeRedVersion}</td><td><a href="${i.endpoints.admin}">admin</a></td><td>${i.updatedAt}</td></tr>`).join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>baseline</title></head><body>
<h1>Fleet</h1><span data-testid="fleet-count">${all.length} instances</span>
<table data-testid="fleet-table"><thead><tr><th>Name</th><th>Status</th><th>Desired</th><th>Cluster</th><th>Team</th><th>Stack</th><th>Endpoints</th><th>Updated</th></tr></thead><tbody>
${rows}
</tbody></table><script src="/baseline.js"></script></body></html>`;
}

export const BASELINE_JS = `
const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws/fleet");
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.event !== "instance:status") return;
  const cell = document.querySelector("#i-" + m.data.instanceId + " [data-status]");
  if (cell) { cell.dataset.status = m.data.status; cell.textContent = m.data.status; }
};`;
