/**
 * `npm start` registers one cluster, "local", whose bridge runs Node-RED as
 * child processes on this machine. Its webhook secret is shown only once by
 * the API, so it is kept in the state dir (mode 600); if it was lost, the
 * secret is rotated rather than the cluster re-created.
 */
import fs from "node:fs/promises";
import path from "node:path";

export interface LocalCluster {
  clusterId: string;
  secret: string;
}

const NAME = "local";

async function api(apiUrl: string, method: string, p: string, token?: string, body?: unknown) {
  const res = await fetch(`${apiUrl}${p}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, any>;
  return { status: res.status, body: json };
}

export async function ensureLocalCluster(apiUrl: string, adminPassword: string, stateDir: string): Promise<LocalCluster> {
  const file = path.join(stateDir, "local-cluster.json");
  const login = await api(apiUrl, "POST", "/api/auth/login", undefined, { username: "admin", password: adminPassword });
  if (login.status !== 200) {
    throw new Error(`cannot register the local cluster: admin login failed (${login.body.error?.message ?? login.status}); was REDFORGE_ADMIN_PASSWORD changed after the first start?`);
  }
  const token = login.body.token as string;
  const saved = await fs.readFile(file, "utf8").then((t) => JSON.parse(t) as LocalCluster, () => undefined);
  if (saved && (await api(apiUrl, "GET", `/api/clusters/${saved.clusterId}`, token)).status === 200) return saved;

  const created = await api(apiUrl, "POST", "/api/clusters", token, { name: NAME, driver: "process", labels: { "managed-by": "npm-start" } });
  let cluster: LocalCluster;
  if (created.status === 201) {
    cluster = { clusterId: created.body.id, secret: created.body.webhookSecret };
  } else if (created.status === 409) {
    const list = await api(apiUrl, "GET", "/api/clusters?limit=200", token);
    const existing = (list.body.items as { id: string; name: string }[]).find((c) => c.name === NAME);
    if (!existing) throw new Error("cluster 'local' exists but could not be found");
    const rotated = await api(apiUrl, "POST", `/api/clusters/${existing.id}/rotate-secret`, token);
    cluster = { clusterId: existing.id, secret: rotated.body.webhookSecret };
  } else {
    throw new Error(`cannot register the local cluster: ${created.body.error?.message ?? created.status}`);
  }
  await fs.writeFile(file, JSON.stringify(cluster), { mode: 0o600 });
  return cluster;
}
