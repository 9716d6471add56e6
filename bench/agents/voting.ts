/**
 * A voting round's overhead over its slowest participant: three real
 * Node-RED instances created through the API (wrangler dev, bridge, process
 * driver, MQTT), each a coordination participant whose model answers after a
 * fixed delay (a delaying proxy in front of the model stand-in: 100, 200 and
 * 400 ms), and one of them also the coordinator. Each round is
 * POST /agents/voting (majority) timed at the client; the slowest
 * participant's share is its own model call (modelLatencyMs). Prints per
 * round p50/p95 of the round, of the slowest model call, the difference
 * (coordination's cost: MQTT there and back, the gate, the session store)
 * and their ratio.
 *
 * With --redis the coordinator keeps its sessions in Redis (an Upstash REST
 * relay in front of REDIS_URL, default redis://127.0.0.1:6379), as in production.
 *
 *   npx tsx bench/agents/voting.ts [--rounds 30] [--redis]
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startModelStandIn } from "../../dev/model-stand-in/index.ts";
import { freePort } from "../../dev/ports.ts";
import { startUpstashRelay } from "../../dev/upstash-relay.ts";
import { coordinationFlow } from "../../flows/primitives/coordination.mts";
import { eventually } from "../../test/harness/eventually.ts";
import { startFleetStack } from "../../test/harness/fleetStack.ts";
import { percentile as pct } from "../quantile.ts";

const rounds = Number(process.argv[process.argv.indexOf("--rounds") + 1]) || 30;
const DELAYS_MS = [100, 200, 400];

/** Forwards to `target` after `delayMs`: a model that takes that long to answer. */
function delayingProxy(target: string, delayMs: number): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => setTimeout(() => {
      void fetch(`${target}${req.url}`, { method: req.method, headers: { "content-type": "application/json" }, body: req.method === "GET" ? undefined : Buffer.concat(chunks) })
        .then(async (r) => { res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" }); res.end(Buffer.from(await r.arrayBuffer())); })
        .catch((err: Error) => { res.writeHead(502); res.end(err.message); });
    }, delayMs));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() })));
}

const fleet = await startFleetStack("bench-voting");
const model = await startModelStandIn();
const proxies = await Promise.all(DELAYS_MS.map((d) => delayingProxy(model.url, d)));
const relay = process.argv.includes("--redis")
  ? await startUpstashRelay({ port: await freePort(), redisUrl: process.env.REDIS_URL || "redis://127.0.0.1:6379", token: "bench-voting" })
  : undefined;
try {
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${fleet.stack.apiUrl}${p}`, { method, headers: { authorization: `Bearer ${fleet.token}`, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    return (await res.json()) as any;
  };
  const participant = coordinationFlow("coordination-participant");
  const env = (i: number) => ({ CHAT_API: "ollama", CHAT_URL: proxies[i]!.url, CHAT_MODEL: ["llama3.2", "mistral", "phi3"][i]! });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const flows = i === 0 ? [...participant, ...coordinationFlow("voting")] : participant;
    const store = i === 0 && relay ? { COORDINATION_REDIS_URL: relay.url, COORDINATION_REDIS_TOKEN: "bench-voting" } : {};
    ids.push((await call("POST", "/api/instances", { name: `bench-voter-${i}`, clusterId: fleet.clusterId, flows, env: { ...env(i), ...store } })).id);
  }
  const fronts = await Promise.all(ids.map((id) => eventually(async () => {
    const inst = await call("GET", `/api/instances/${id}`);
    return inst?.status === "running" && inst.endpoints?.front ? inst.endpoints.front as string : undefined;
  }, 180_000)));
  const ask = async () => {
    const t0 = performance.now();
    const res = await fetch(`${fronts[0]}/agents/voting`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ payload: { question: "What colour is the launch beacon?", context: ["The launch beacon is green."] }, metadata: { flowId: `bench-${crypto.randomUUID().slice(0, 8)}`, timestamp: new Date().toISOString() }, config: { participants: ids, rule: "majority", deadlineMs: 30_000 } }),
    });
    const body = (await res.json()) as any;
    return { status: res.status, ms: performance.now() - t0, body };
  };
  await eventually(async () => ((await ask()).status === 200 || undefined), 120_000); // warm: routes live, MQTT outputs connected
  const total: number[] = [];
  const slowest: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await ask();
    if (r.status !== 200) throw new Error(`round ${i}: ${r.status} ${JSON.stringify(r.body)}`);
    total.push(r.ms);
    slowest.push(Math.max(...r.body.payload.answers.map((a: any) => a.modelLatencyMs ?? 0)));
  }
  const over = total.map((t, i) => t - slowest[i]!);
  const ratio = total.map((t, i) => t / slowest[i]!);
  const row = (name: string, xs: number[], unit = "ms") => console.log(`${name.padEnd(34)} p50 ${pct(xs, 50).toFixed(unit === "ms" ? 0 : 2)}${unit}  p95 ${pct(xs, 95).toFixed(unit === "ms" ? 0 : 2)}${unit}`);
  console.log(`voting rounds: ${rounds}, 3 participants (model delays ${DELAYS_MS.join("/")} ms), rule majority, sessions ${relay ? "in Redis (Upstash REST relay)" : "in memory"}, load ${(await import("node:os")).loadavg()[0]!.toFixed(1)}`);
  row("round (client, POST /agents/voting)", total);
  row("slowest participant's model call", slowest);
  row("coordination overhead (difference)", over);
  row("ratio round / slowest model call", ratio, "x");
} finally {
  for (const p of proxies) p.close();
  await relay?.close();
  await model.close();
  await fleet.close();
}
