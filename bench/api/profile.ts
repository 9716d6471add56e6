/**
 * A CPU profile of the Worker (workerd's V8, through wrangler dev's inspector)
 * while instance creations run: where a creation's workerd CPU goes, by
 * function and by module, self time. Prints the top entries and writes the
 * raw .cpuprofile (open it in Chrome DevTools) to PROFILE_OUT.
 *   npx tsx bench/api/profile.ts   (N=300 creations, C=16 clients, ROUTE=create|patch|me)
 * Frames are named by function and by the source module they were bundled from
 * (the bundle's `// path` marks, read through the inspector after the profile):
 * the top 25 by self time, the top 15 by total time (TOP_SELF, TOP_TOTAL), and
 * with FOCUS=<regexp> the self time of everything under the matching frames
 * (e.g. FOCUS='^batch  drizzle' for the Neon HTTP transaction). PROFILE_IN=<file>
 * summarises a profile written before (PROFILE_OUT, with its .sources.json).
 * Last, the workerd processes' CPU per op by thread (/proc), which the sampler
 * cannot see (wrangler's proxy, the runtime's other threads); PROFILE=0 prints
 * only that, without the sampler's own cost.
 * The sampling profiler sees only JavaScript in the Worker's isolate (and the
 * Durable Objects': same isolate under wrangler dev); workerd's own C++ (HTTP,
 * sockets, KV) shows as "(program)" / native frames.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
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

/** This bench's workerd processes (descendants of this process), with the one serving the inspector we attach to. */
function ownWorkerds(): number[] {
  const mine = (pid: number) => {
    for (let p = pid, hops = 0; p > 1 && hops < 20; hops++) {
      if (p === process.pid) return true;
      try { p = Number(readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ")[1]); } catch { return false; }
    }
    return false;
  };
  return readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd" && mine(pid); } catch { return false; }
  });
}

/**
 * CPU seconds by thread of the given processes, keyed "pid thread-name" (threads of one name summed):
 * the sampling profiler sees only the Worker's JavaScript; this says what the rest of workerd costs
 * (wrangler's proxy process, the runtime's other threads).
 */
function threadCpu(pids: number[]): Map<string, number> {
  const cpu = new Map<string, number>();
  for (const pid of pids) {
    let tids: string[] = [];
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const key = `${pid} ${name}`;
        cpu.set(key, (cpu.get(key) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
      } catch { /* the thread ended */ }
    }
  }
  return cpu;
}

function cdp(url: string) {
  const ws = new WebSocket(url);
  let id = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const events: { method: string; params: Record<string, unknown> }[] = [];
  ws.on("message", (d) => {
    const m = JSON.parse(String(d)) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: unknown };
    if (process.env.DEBUG) console.log("cdp <", String(d).slice(0, 200));
    if (m.id === undefined) { if (m.method) events.push({ method: m.method, params: m.params ?? {} }); return; }
    const w = waiting.get(m.id);
    if (m.error) w?.reject(new Error(JSON.stringify(m.error))); else w?.resolve(m.result);
  });
  const ready = new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
  if (process.env.DEBUG) { ws.on("close", (c, why) => console.log("cdp closed", c, String(why))); ws.on("error", (e) => console.log("cdp error", e)); ws.on("open", () => console.log("cdp open")); }
  return {
    ready,
    events,
    send: <T>(method: string, params: Record<string, unknown> = {}) => new Promise<T>((resolve, reject) => {
      const n = ++id;
      waiting.set(n, { resolve: resolve as (v: unknown) => void, reject });
      if (process.env.DEBUG) console.log("cdp >", method, n);
      ws.send(JSON.stringify({ id: n, method, params }));
    }),
    close: () => ws.close(),
  };
}

/**
 * The Worker runs as one esbuild bundle (bundle/index.js): a frame's file is the module whose
 * `// path/to/module.ts` comment (esbuild marks where each bundled module starts) comes last
 * before the frame's line. Unknown (a native frame, no source fetched): the frame's own URL.
 */
type FileOf = (scriptId: string, url: string, line: number) => string;
function moduleMap(sources: Map<string, string>): FileOf {
  const starts = new Map<string, { line: number; file: string }[]>();
  for (const [scriptId, text] of sources) {
    const marks: { line: number; file: string }[] = [];
    text.split("\n").forEach((l, i) => {
      const m = /^\/\/ ((?:[\w@.-]+\/)*[\w@.-]+\.(?:ts|js|mjs|cjs))$/.exec(l);
      // A package by its path inside node_modules, wherever that is (a copy of the tree may link it).
      if (m) marks.push({ line: i, file: m[1]!.replace(/^.*node_modules\//, "") });
    });
    starts.set(scriptId, marks);
  }
  return (scriptId, url, line) => {
    const marks = starts.get(scriptId);
    if (!marks?.length) return url ? url.split("/").slice(-2).join("/") : "";
    let lo = 0, hi = marks.length - 1, at = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (marks[mid]!.line <= line) { at = mid; lo = mid + 1; } else hi = mid - 1; }
    return at < 0 ? "(bundle prelude)" : marks[at]!.file;
  };
}

type Frame = ProfileNode["callFrame"] & { scriptId?: string };
const OUR_FOLDERS = /^(functions|core|db|durable|protocol|queues|bridge|shared|lib|\.wrangler)\//;

function summarise(p: Profile, fileOf: FileOf) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // workerd's sampler is irregular on a loaded machine (most of the time in gaps of > 3 ms, each put on
  // the one sample after it), so next to the time each entry shows its share of the samples (hits).
  const self = new Map<number, number>(), hits = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
    hits.set(p.samples[i]!, (hits.get(p.samples[i]!) ?? 0) + 1);
  }
  const isIdle = (nid: number) => byId.get(nid)!.callFrame.functionName === "(idle)";
  const busyHits = [...hits].reduce((a, [nid, h]) => a + (isIdle(nid) ? 0 : h), 0);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].reduce((a, [nid, us]) => a + (byId.get(nid)!.callFrame.functionName === "(idle)" ? us : 0), 0);
  const fileOfFrame = (f: Frame) => fileOf(String(f.scriptId ?? ""), f.url, f.lineNumber);
  // Function + file (not line: a bundled function's line says nothing); a native frame is named by itself.
  const keyOf = (f: Frame) => `${f.functionName || "(anon)"}  ${fileOfFrame(f) || "(native)"}`;
  const fn = new Map<string, number>(), mod = new Map<string, number>();
  const hitsOf = new Map<string, number>();
  const count = (key: string, nid: number) => hitsOf.set(key, (hitsOf.get(key) ?? 0) + (hits.get(nid) ?? 0));
  for (const [nid, us] of self) {
    const f = byId.get(nid)!.callFrame as Frame;
    fn.set(keyOf(f), (fn.get(keyOf(f)) ?? 0) + us);
    count(`fn ${keyOf(f)}`, nid);
    // A package by its name (drizzle-orm, hono, zod), a module of ours by its path, a native frame by itself.
    const file = fileOfFrame(f);
    const m = OUR_FOLDERS.test(file) ? file : (file.match(/^((?:@[^/]+\/)?[^/]+)\//)?.[1] ?? (file || f.functionName));
    mod.set(m, (mod.get(m) ?? 0) + us);
    count(`mod ${m}`, nid);
  }
  const busy = total - idle;
  const top = (m: Map<string, number>, k: number, kind: string) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, us]) => `${(us / 1000 / N).toFixed(2).padStart(7)} ms/op ${((100 * us) / busy).toFixed(1).padStart(5)}% ${((100 * (hitsOf.get(`${kind} ${name}`) ?? 0)) / busyHits).toFixed(1).padStart(5)}%  ${name}`).join("\n");
  console.log(`sampled ${(total / 1000).toFixed(0)} ms over ${N} ops = ${(total / 1000 / N).toFixed(2)} ms per op; not idle ${(busy / 1000 / N).toFixed(2)} ms per op` +
    " (wall time of the JS thread: on a loaded machine it includes time the thread was descheduled; read the shares, % of not idle)");
  console.log(`${p.samples.length} samples, ${busyHits} not idle; columns: time per op, % of not-idle time, % of not-idle samples`);
  console.log("\nby module or package (self):\n" + top(mod, 25, "mod"));
  console.log("\nby function + file (self), top 25:\n" + top(fn, Number(process.env.TOP_SELF ?? 25), "fn"));
  // Inclusive: each sample counts once per distinct function on its stack (recursion counted once).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [nid, us] of self) {
    const seen = new Set<string>();
    for (let x: number | undefined = nid; x !== undefined; x = parent.get(x)) {
      const key = keyOf(byId.get(x)!.callFrame as Frame);
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
      count(`incl ${key}`, nid);
    }
  }
  // The frames every request passes through (the root, the facade, hono's dispatch) top any
  // inclusive list; TOP_TOTAL_SKIP drops the first few of them to show where it branches.
  const skip = new RegExp(process.env.TOP_TOTAL_SKIP ?? "^\\((root|idle|program)\\)");
  const inclShown = new Map([...incl].filter(([k]) => !skip.test(k)));
  console.log("\nby function + file (total, callees included), top 15:\n" + top(inclShown, Number(process.env.TOP_TOTAL ?? 15), "incl"));
  // FOCUS=<regexp of a function + file key>: what the time under it is spent in (self time of its callees).
  if (process.env.FOCUS) {
    const focus = new RegExp(process.env.FOCUS);
    const under = new Map<string, number>();
    for (const [nid, us] of self) {
      let hit = false;
      for (let x: number | undefined = parent.get(nid); x !== undefined && !hit; x = parent.get(x)) hit = focus.test(keyOf(byId.get(x)!.callFrame as Frame));
      if (hit || focus.test(keyOf(byId.get(nid)!.callFrame as Frame))) {
        const k = keyOf(byId.get(nid)!.callFrame as Frame);
        under.set(k, (under.get(k) ?? 0) + us);
        count(`under ${k}`, nid);
      }
    }
    console.log(`\nself time under /${process.env.FOCUS}/:\n` + top(under, 30, "under"));
  }
}

if (process.env.PROFILE_IN) {
  // Summarise a profile written before (its bundle's text beside it) without a stack: another FOCUS, say.
  const saved = JSON.parse(await fs.readFile(process.env.PROFILE_IN, "utf8")) as Profile;
  const sources = new Map(Object.entries(JSON.parse(await fs.readFile(`${process.env.PROFILE_IN}.sources.json`, "utf8").catch(() => "{}")) as Record<string, string>));
  summarise(saved, moduleMap(sources));
  process.exit(0);
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
  const poked = async <T>(method: string, params: Record<string, unknown> = {}): Promise<T> => {
    let answered = false;
    const answer = s.send<T>(method, params).finally(() => { answered = true; });
    while (!answered) await fetch(`${stack.apiUrl}/api/health/live`).then((r) => r.arrayBuffer(), () => {});
    return answer;
  };
  // PROFILE=0: only the per-thread CPU below, without the sampler's own cost on the Worker's thread.
  const profiling = process.env.PROFILE !== "0";
  if (profiling) {
    await poked("Profiler.enable");
    await poked("Profiler.start");
  }
  const workerds = ownWorkerds();
  const cpu0 = threadCpu(workerds);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => { while (next < N) await op(next++); }));
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = threadCpu(workerds);
  console.log(`${ROUTE}: ${N} in ${secs.toFixed(1)} s = ${(N / secs).toFixed(1)}/s at ${C} clients`);
  if (profiling) {
    const { profile } = await poked<{ profile: Profile }>("Profiler.stop");
    await fs.writeFile(OUT, JSON.stringify(profile));
    // The bundle's text, to name each frame's module: only after the profile (the debugger is not on while it runs).
    const sources = new Map<string, string>();
    await poked("Debugger.enable");
    for (const id of new Set(profile.nodes.map((n) => String((n.callFrame as Frame).scriptId ?? "")).filter((id) => id && id !== "0"))) {
      try { sources.set(id, (await poked<{ scriptSource: string }>("Debugger.getScriptSource", { scriptId: id })).scriptSource); } catch { /* a native or gone script */ }
    }
    await poked("Debugger.disable");
    await fs.writeFile(`${OUT}.sources.json`, JSON.stringify(Object.fromEntries(sources)));
    summarise(profile, moduleMap(sources));
  }
  s.close();
  // The inspector we attached to is served by wrangler's proxy workerd: the one whose port answered.
  const proxyPid = Number(execFileSync("ss", ["-ltnpH"], { encoding: "utf8" }).match(new RegExp(`127\\.0\\.0\\.1:${new URL(targets[0]!.webSocketDebuggerUrl).port}\\s.*pid=(\\d+)`))?.[1]);
  const perOp = [...cpu1].map(([k, v]) => [k, v - (cpu0.get(k) ?? 0)] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  const byPid = new Map<string, number>();
  for (const [k, v] of perOp) byPid.set(k.split(" ")[0]!, (byPid.get(k.split(" ")[0]!) ?? 0) + v);
  console.log(`\nworkerd CPU by process and thread (user + system, /proc, 10 ms ticks), per op, profiler ${profiling ? "on" : "off"}:`);
  for (const [pid, v] of byPid) console.log(`  ${((1000 * v) / N).toFixed(2).padStart(6)} ms/op  pid ${pid}${Number(pid) === proxyPid ? " (wrangler's proxy: HTTP in, the inspector)" : " (the runtime: the Worker and its objects)"}`);
  for (const [k, v] of perOp.slice(0, 12)) console.log(`  ${((1000 * v) / N).toFixed(2).padStart(6)} ms/op    ${k}`);
} finally {
  await stack.stop();
}
process.exit(0);
