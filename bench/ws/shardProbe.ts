/**
 * bench/ws/shardProbe: does spreading watchers over several Durable Objects
 * shorten fan-out in one workerd process? A bare Miniflare Worker (not the
 * control plane): `shards` hub objects, each holding its share of N
 * Hibernation-API sockets; one publish reaches every hub in parallel and each
 * sends one frame to its sockets. Fan-out = watcher receipt − publish start
 * (same clock), over 4 client processes (bench/ws/watcherPool.ts). Locally all
 * objects share workerd's one JS thread, so sharding can only help if the
 * bound is one object's serial loop rather than the thread's CPU: measured,
 * shards 1 vs 4 vs 16 in the same run, plus the workerd CPU per publish.
 *   npx tsx bench/ws/shardProbe.ts   (BENCH_WS_PROBE_SIZES=1000,5000,9000 BENCH_WS_PROBE_SHARDS=1,4,16)
 */
import fs from "node:fs/promises";
import os from "node:os";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { Pools } from "./pools.ts";
import { quantile as q } from "../quantile.ts";

const SIZES = (process.env.BENCH_WS_PROBE_SIZES ?? "1000,5000,9000").split(",").map(Number);
const SHARDS = (process.env.BENCH_WS_PROBE_SHARDS ?? "1,4,16").split(",").map(Number);
const EVENTS = Number(process.env.BENCH_WS_EVENTS ?? 5);

const script = `
import { DurableObject } from "cloudflare:workers";
export class Hub extends DurableObject {
  async fetch(req) {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    pair[1].send(JSON.stringify({ event: "hello" }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }
  publish(text) {
    let n = 0;
    for (const ws of this.ctx.getWebSockets()) { try { ws.send(text); n++; } catch {} }
    return n;
  }
}
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname === "/publish") {
      const shards = Number(url.searchParams.get("shards"));
      const text = JSON.stringify({ event: "tick", data: { id: url.searchParams.get("id"), timestamp: new Date().toISOString() } });
      const sent = await Promise.all(Array.from({ length: shards }, (_, k) => env.HUB.get(env.HUB.idFromName("hub:" + shards + ":" + k)).publish(text)));
      return Response.json({ sent: sent.reduce((a, b) => a + b, 0) });
    }
    return env.HUB.get(env.HUB.idFromName(url.searchParams.get("hub"))).fetch(req);
  },
};`;

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");

async function workerdPid(): Promise<number | undefined> {
  for (const e of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const st = await fs.readFile(`/proc/${e}/status`, "utf8").catch(() => "");
    if (/^Name:\s+workerd/m.test(st) && Number(/^PPid:\s+(\d+)/m.exec(st)?.[1]) === process.pid) return Number(e);
  }
  return undefined;
}
async function cpuMs(pid: number | undefined): Promise<number> {
  const stat = pid === undefined ? "" : await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

async function main() {
  const mf = new Miniflare(convertV4MiniflareOptions({
    port: 0, modules: true, script, compatibilityDate: "2025-01-01", durableObjects: { HUB: { className: "Hub", useSQLite: true } },
  }));
  const base = (await mf.ready).href.replace(/\/$/, "");
  let pid = await workerdPid();
  const fds = async () => (await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).length;
  const idleFds = await fds();
  console.log(`shardProbe: ${os.cpus().length} cores, ${new Date().toISOString()}, ${EVENTS} publishes per case, load ${load()}`);
  console.log("| watchers | shards | fan-out p50 / p99 / last | workerd CPU per publish | per watcher | load |");
  console.log("|---|---|---|---|---|---|");
  try {
    for (const n of SIZES) {
      for (const shards of SHARDS) {
        const pools = new Pools(4, 100, 60_000);
        try {
          // The previous case's sockets must be gone from workerd first: two cases' worth of sockets would not fit in its 20,000 descriptors.
          for (let i = 0; i < 120 && (await fds()) > idleFds + 200; i++) await new Promise((r) => setTimeout(r, 500));
          pid = await workerdPid();
          const loadBefore = load();
          // Watchers spread round-robin over the shards, `per` at a time.
          for (let k = 0; k < shards; k++) {
            const count = Math.floor(n / shards) + (k < n % shards ? 1 : 0);
            await pools.connect(`${base.replace(/^http/, "ws")}/ws?hub=${encodeURIComponent(`hub:${shards}:${k}`)}`, count);
          }
          await new Promise((r) => setTimeout(r, 1000));
          const fan: number[] = [];
          let cpu = 0;
          for (let e = 0; e < EVENTS; e++) {
            await pools.all({ op: "mark" });
            const id = `e${Date.now()}-${e}`;
            const c0 = await cpuMs(pid);
            const res = await fetch(`${base}/publish?shards=${shards}&id=${id}`);
            await res.arrayBuffer();
            const got = await pools.collect([id]);
            cpu += (await cpuMs(pid)) - c0;
            for (const frames of got.watchers) { const hit = frames.find((f) => f[2]); if (hit && hit[1] !== null) fan.push(hit[0] - hit[1]); }
            await new Promise((r) => setTimeout(r, 300));
          }
          fan.sort((a, b) => a - b);
          const perPublish = cpu / EVENTS;
          console.log(`| ${n} | ${shards} | ${q(fan, 0.5)} / ${q(fan, 0.99)} / ${fan.at(-1)} ms (${fan.length} receipts) | ${perPublish.toFixed(0)} ms | ${((perPublish * 1000) / n).toFixed(1)} µs | ${loadBefore} → ${load()} |`);
        } finally {
          await pools.all({ op: "terminate" }).catch(() => {});
          pools.close();
          await new Promise((r) => setTimeout(r, 1500));
        }
      }
    }
  } finally {
    await mf.dispose();
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
