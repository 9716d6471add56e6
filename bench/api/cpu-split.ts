/**
 * Where a write's workerd CPU goes: CPU per request, at 16 clients, of routes
 * that each do a part of what an instance creation does (an authenticated
 * request, one HTTP query, a transaction with its audit row, a transaction
 * plus a ClusterLink call, the creation itself), two rounds each.
 *   npx tsx bench/api/cpu-split.ts   (N=150 requests per route and round)
 */
import os from "node:os";
import { adminClient } from "../../test/harness/adminClient.ts";
import { adminCall } from "./adminCall.ts";
import { startTestStack } from "../../test/harness/testStack.ts";
import { cpuOfOwn } from "../fleet-scale/procCpu.ts";

const N = Number(process.env.N ?? 200), C = 16;
const stack = await startTestStack({ worker: "wrangler" });
try {
  const { token } = await adminClient(stack);
  const call = adminCall(stack.apiUrl, token);
  const cluster = await call("POST", "/api/clusters", { name: "h4" });
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push((await call("POST", "/api/instances", { name: `s-${i}`, clusterId: cluster.id })).id);
  const phases: [string, (i: number) => Promise<unknown>][] = [
    ["GET /api/auth/me", () => call("GET", "/api/auth/me")],
    ["GET /api/instances/:id (1 HTTP select)", (i) => call("GET", `/api/instances/${ids[i % 20]}`)],
    ["PATCH env (tx: update + audit)", (i) => call("PATCH", `/api/instances/${ids[i % 20]}`, { env: { X: String(i) } })],
    ["POST /:id/restart (tx + ClusterLink enqueue)", (i) => call("POST", `/api/instances/${ids[i % 20]}/restart`)],
    ["POST /api/instances (create)", (i) => call("POST", "/api/instances", { name: `c-${i}-${Date.now()}`, clusterId: cluster.id })],
  ];
  for (let round = 0; round < 2; round++) for (const [name, f] of phases) {
    for (let i = 0; i < 5; i++) await f(i);
    const w0 = await cpuOfOwn(/workerd/);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: C }, async () => { while (next < N) await f(next++); }));
    const s = (performance.now() - t0) / 1000;
    const w1 = await cpuOfOwn(/workerd/);
    console.log(`${name.padEnd(46)} ${(N / s).toFixed(1)}/s  workerd ${((1000 * (w1 - w0)) / N).toFixed(1)} ms CPU each (load ${os.loadavg()[0]!.toFixed(1)})`);
  }
} finally {
  await stack.stop();
}
process.exit(0);
