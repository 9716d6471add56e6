/**
 * bench/ws/fdProbe: how many file descriptors one /ws/fleet watcher costs in
 * each process of the local stack (this process and its descendants), counted
 * from /proc/<pid>/fd at 0 and at BENCH_WS_PROBE watchers (default 500).
 *   npx tsx bench/ws/fdProbe.ts   (BENCH_WS_WORKER=wrangler|miniflare)
 */
import fs from "node:fs/promises";
import WebSocket from "ws";
import { adminClient } from "../../test/harness/adminClient.ts";
import { startTestStack } from "../../test/harness/testStack.ts";

const N = Number(process.env.BENCH_WS_PROBE ?? 500);

async function descendants(): Promise<Map<number, { name: string; cmd: string; fds: number; sockets: number; rssKiB: number }>> {
  const parent = new Map<number, number>();
  const out = new Map<number, { name: string; cmd: string; fds: number; sockets: number; rssKiB: number }>();
  const pids = (await fs.readdir("/proc")).filter((e) => /^\d+$/.test(e)).map(Number);
  for (const pid of pids) {
    try { parent.set(pid, Number(/^PPid:\s+(\d+)/m.exec(await fs.readFile(`/proc/${pid}/status`, "utf8"))?.[1])); } catch { /* gone */ }
  }
  const mine = (pid: number) => { for (let p: number | undefined = pid, h = 0; p !== undefined && h < 30; p = parent.get(p), h++) if (p === process.pid) return true; return false; };
  for (const pid of pids) {
    if (!mine(pid)) continue;
    try {
      const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
      const fds = await fs.readdir(`/proc/${pid}/fd`);
      let sockets = 0;
      for (const fd of fds) { try { if ((await fs.readlink(`/proc/${pid}/fd/${fd}`)).startsWith("socket:")) sockets++; } catch { /* */ } }
      const cmd = (await fs.readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ").slice(0, 140);
      out.set(pid, { name: /^Name:\s+(\S+)/m.exec(status)?.[1] ?? "?", cmd, fds: fds.length, sockets, rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) });
    } catch { /* gone */ }
  }
  return out;
}

async function main() {
  const stack = await startTestStack({ worker: (process.env.BENCH_WS_WORKER ?? "wrangler") as "wrangler" });
  try {
    const { token } = await adminClient(stack);
    const before = await descendants();
    const url = `${stack.apiUrl.replace(/^http/, "ws")}/ws/fleet?token=${encodeURIComponent(token)}`;
    const socks: WebSocket[] = [];
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, N - i) }, () => new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        ws.once("message", () => resolve());
        ws.once("error", reject);
        socks.push(ws);
      })));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const after = await descendants();
    console.log(`${N} /ws/fleet watchers; per process: fds before → after (sockets), per watcher`);
    for (const [pid, a] of after) {
      const b = before.get(pid);
      const self = pid === process.pid ? " (this client)" : "";
      console.log(`${pid} ${a.name}${self}: fds ${b?.fds ?? 0} → ${a.fds}, sockets ${b?.sockets ?? 0} → ${a.sockets}, ${((a.fds - (b?.fds ?? 0)) / N).toFixed(2)} fds/watcher; rss ${b?.rssKiB ?? 0} → ${a.rssKiB} KiB; ${a.cmd}`);
    }
    const hold = Number(process.env.BENCH_WS_PROBE_HOLD ?? 0);
    if (hold) { console.log(`holding ${hold} s`); await new Promise((r) => setTimeout(r, hold * 1000)); }
    for (const ws of socks) ws.terminate();
  } finally {
    await stack.stop();
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
