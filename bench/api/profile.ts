/**
 * A CPU profile of the Worker (workerd's V8, through wrangler dev's inspector)
 * while instance creations run: where a creation's workerd CPU goes, by
 * function and by module, self time. Prints the top entries and writes the
 * raw .cpuprofile (open it in Chrome DevTools) to PROFILE_OUT.
 *   npx tsx bench/api/profile.ts   (N=300 creations, C=16 clients, ROUTE=create|patch|me)
 * The sampling profiler sees only JavaScript in the Worker's isolate (and the
 * Durable Objects': same isolate under wrangler dev); workerd's own C++ (HTTP,
 * sockets, KV) shows as "(program)" / native frames.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import WebSocket from "ws";
import { adminClient } from "../../test/harness/adminClient.ts";
import { adminCall } from "./adminCall.ts";
import { startTestStack } from "../../test/harness/testStack.ts";

const N = Number(process.env.N ?? 300), C = Number(process.env.C ?? 16);
const ROUTE = process.env.ROUTE ?? "create";
const OUT = process.env.PROFILE_OUT ?? "/tmp/workerd-create.cpuprofile";

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[]; hitCount?: number }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** workerd's inspector (wrangler passes it --inspector-addr): one of the ports a workerd listens on answers /json. */
async function inspectorTargets(): Promise<{ webSocketDebuggerUrl: string; title?: string; url?: string }[]> {
  const ss = execFileSync("ss", ["-ltnpH"], { encoding: "utf8" });
  // Only this bench's workerd (other stacks may run on the machine): a descendant of this process.
  const mine = (pid: number) => {
    for (let p = pid, hops = 0; p > 1 && hops < 20; hops++) {
      if (p === process.pid) return true;
      try { p = Number(readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ")[1]); } catch { return false; }
    }
    return false;
  };
  const ports = [...ss.matchAll(/127\.0\.0\.1:(\d+)\s.*users:\(\("workerd",pid=(\d+)/g)].filter((m) => mine(Number(m[2]))).map((m) => Number(m[1]));
  for (const port of ports) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(1_000) });
      const list = (await r.json()) as { webSocketDebuggerUrl: string; id?: string }[];
      // wrangler's inspector proxy (the port of --inspector-port, served by its proxy workerd) lists
      // one target, "Cloudflare Worker", and forwards to the Worker's isolate. Connecting to the
      // runtime's own inspector (targets "core:user:<name>") instead gets closed by wrangler's session.
      const app = Array.isArray(list) ? list.filter((t) => (t as { title?: string }).title === "Cloudflare Worker") : [];
      if (app.length) return app;
    } catch { /* not it */ }
  }
  throw new Error(`no inspector among ${ports.join(", ")}`);
}

function cdp(url: string) {
  const ws = new WebSocket(url);
  let id = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.on("message", (d) => {
    const m = JSON.parse(String(d)) as { id?: number; result?: unknown; error?: unknown };
    if (process.env.DEBUG) console.log("cdp <", String(d).slice(0, 200));
    if (m.id !== undefined) waiting.get(m.id)?.(m.error ? Promise.reject(new Error(JSON.stringify(m.error))) : m.result);
  });
  const ready = new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
  if (process.env.DEBUG) { ws.on("close", (c, why) => console.log("cdp closed", c, String(why))); ws.on("error", (e) => console.log("cdp error", e)); ws.on("open", () => console.log("cdp open")); }
  return {
    ready,
    send: <T>(method: string, params: Record<string, unknown> = {}) => new Promise<T>((resolve) => {
      const n = ++id;
      waiting.set(n, resolve as (v: unknown) => void);
      if (process.env.DEBUG) console.log("cdp >", method, n);
      ws.send(JSON.stringify({ id: n, method, params }));
    }),
    close: () => ws.close(),
  };
}

function summarise(p: Profile) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map<string, number>(), mod = new Map<string, number>();
  for (const [nid, us] of self) {
    const n = byId.get(nid)!;
    const file = n.callFrame.url.replace(/^.*\/(node_modules\/)?/, (m) => (m.includes("node_modules") ? "nm/" : ""));
    const key = `${n.callFrame.functionName || "(anon)"} ${file}:${n.callFrame.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const m = n.callFrame.url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ?? (n.callFrame.url ? n.callFrame.url.split("/").slice(-2).join("/") : n.callFrame.functionName);
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, us]) => `${(us / 1000 / N).toFixed(2).padStart(7)} ms/op ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`).join("\n");
  console.log(`sampled ${(total / 1000).toFixed(0)} ms over ${N} ops = ${(total / 1000 / N).toFixed(2)} ms per op (wall of the sampled span, idle included)`);
  console.log("\nby module (self):\n" + top(mod, 25));
  console.log("\nby function (self):\n" + top(fn, 40));
  // Inclusive time for a few interesting frames (counted once per sample even when recursive).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [nid, us] of self) {
    const seen = new Set<string>();
    for (let x: number | undefined = nid; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame;
      const key = `${f.functionName || "(anon)"} ${f.url.split("/").slice(-2).join("/")}`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
    }
  }
  console.log("\nby function (inclusive):\n" + top(incl, 60));
}

const stack = await startTestStack({ worker: "wrangler" });
try {
  const { token } = await adminClient(stack);
  const call = adminCall(stack.apiUrl, token);
  const cluster = await call("POST", "/api/clusters", { name: "prof" });
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push((await call("POST", "/api/instances", { name: `w-${i}`, clusterId: cluster.id })).id);
  const op = (i: number) => ROUTE === "patch" ? call("PATCH", `/api/instances/${ids[i % 10]}`, { env: { X: String(i) } })
    : ROUTE === "me" ? call("GET", "/api/auth/me")
    : call("POST", "/api/instances", { name: `p-${i}-${Date.now()}`, clusterId: cluster.id });
  for (let i = 0; i < 20; i++) await op(i);
  const targets = await inspectorTargets();
  console.log("targets:", targets.map((t) => `${t.title ?? t.url} ${t.webSocketDebuggerUrl}`).join(", "));
  const s = cdp(targets[0]!.webSocketDebuggerUrl);
  await s.ready;
  // workerd reads inspector messages only when the isolate runs (a request arrives), so no answer
  // comes while the Worker is idle: each command is sent, then the Worker poked until it answers.
  const poked = async <T>(method: string): Promise<T> => {
    let answered = false;
    const answer = s.send<T>(method).finally(() => { answered = true; });
    while (!answered) await fetch(`${stack.apiUrl}/api/health/live`).then((r) => r.arrayBuffer(), () => {});
    return answer;
  };
  await poked("Profiler.enable");
  await poked("Profiler.start");
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => { while (next < N) await op(next++); }));
  const secs = (performance.now() - t0) / 1000;
  const { profile } = await poked<{ profile: Profile }>("Profiler.stop");
  s.close();
  console.log(`${ROUTE}: ${N} in ${secs.toFixed(1)} s = ${(N / secs).toFixed(1)}/s at ${C} clients`);
  await fs.writeFile(OUT, JSON.stringify(profile));
  summarise(profile);
} finally {
  await stack.stop();
}
process.exit(0);
