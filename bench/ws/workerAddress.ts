/**
 * The address of the Worker's own workerd under `wrangler dev`, so bench/ws
 * can connect its watchers there and not through wrangler's proxy.
 *
 * Why: `wrangler dev` (4.x) runs two workerd processes, its proxy worker on the
 * public port and the user Worker (Miniflare) on 127.0.0.1:<random>, and
 * forwards each connection from one to the other. workerd keeps every TCP
 * connection it holds under two descriptors (the same socket twice: lsof shows
 * both with one address pair; bench/ws/fdProbe.ts), so a watcher costs 4
 * descriptors in the proxy (client side + upstream) and 2 in the Worker's
 * workerd. With the container's hard limit of 20,000 descriptors per process
 * the proxy died at ~4,870 watchers; connecting to the Worker's workerd direct
 * doubles that ceiling. Miniflare's entry worker serves a direct request just
 * like a proxied one (no shared-secret header needed).
 */
import fs from "node:fs/promises";

async function children(root: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for (const e of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try { parent.set(Number(e), Number(/^PPid:\s+(\d+)/m.exec(await fs.readFile(`/proc/${e}/status`, "utf8"))?.[1])); } catch { /* gone */ }
  }
  const mine = (pid: number) => { for (let p: number | undefined = pid, h = 0; p !== undefined && h < 30; p = parent.get(p), h++) if (p === root) return true; return false; };
  return [...parent.keys()].filter((p) => p !== root && mine(p));
}

/** Listening TCP ports of a process (its socket inodes matched against /proc/net/tcp). */
async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const fd of await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const link = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]!);
  }
  const ports: number[] = [];
  for (const line of (await fs.readFile("/proc/net/tcp", "utf8")).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9]!)) continue; // 0A = LISTEN
    ports.push(parseInt(f[1]!.split(":")[1]!, 16));
  }
  return ports;
}

/** The workerd processes under this one: pid, the file descriptors each holds, whether it is wrangler's proxy (it listens on `publicPort`). */
export async function workerdProcesses(publicPort: number): Promise<{ pid: number; fds: number; proxy: boolean; rssBytes: number; ports: number[] }[]> {
  const out = [];
  for (const pid of await children(process.pid)) {
    const status = await fs.readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    if (!/^Name:\s+workerd/m.test(status)) continue;
    const ports = await listeningPorts(pid);
    const fds = (await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).length;
    out.push({ pid, fds, proxy: ports.includes(publicPort), rssBytes: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) * 1024, ports });
  }
  return out;
}

/** http://127.0.0.1:<port> of the Worker's own workerd: the non-proxy workerd's listening port that answers /api/health. */
export async function directWorkerUrl(publicUrl: string): Promise<string> {
  const publicPort = Number(new URL(publicUrl).port);
  for (const p of await workerdProcesses(publicPort)) {
    if (p.proxy) continue;
    for (const port of p.ports) {
      const url = `http://127.0.0.1:${port}`;
      const ok = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
      if (ok) return url;
    }
  }
  throw new Error("the Worker's own workerd was not found (is wrangler dev running under this process?)");
}
