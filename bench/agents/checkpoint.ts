/**
 * Checkpoint write cost per workflow step, on one real Node-RED (process
 * driver) with the cluster's MQTT bus (aedes): the same ten-step workflow run
 * one request at a time, with and without redforge-checkpoint begin/end nodes
 * around each step (two journal appends and two QoS 1 publishes per step).
 * A step is a change node, so the figure is the checkpoint's own cost, not the
 * step's. Prints p50/p99 per step of each and their ratio.
 *
 *   npx tsx bench/agents/checkpoint.ts [runs=400]
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { testBroker } from "../../test/harness/zeroLoss.ts";
import { percentile as pct } from "../quantile.ts";

const STEPS = 10;
const RUNS = Number(process.argv[2] ?? 400);

function flow(): unknown[] {
  const tab = "bench-tab";
  const nodes: unknown[] = [{ id: tab, type: "tab", label: "checkpoint bench" }];
  const chain = (prefix: string, url: string, checkpoint: boolean) => {
    nodes.push({ id: `${prefix}-in`, type: "http in", z: tab, url, method: "post", upload: false, wires: [[`${prefix}-id`]] });
    nodes.push({ id: `${prefix}-id`, type: "change", z: tab, rules: [{ t: "set", p: "workflow", pt: "msg", to: "{\"id\": payload.id}", tot: "jsonata" }], wires: [[`${prefix}-0`]] });
    for (let i = 0; i < STEPS; i++) {
      const next = i + 1 < STEPS ? `${prefix}-${i + 1}` : `${prefix}-out`;
      const step = { id: `${prefix}-step${i}`, type: "change", z: tab, rules: [{ t: "set", p: `payload.s${i}`, pt: "msg", to: String(i), tot: "num" }], wires: [[checkpoint ? `${prefix}-e${i}` : next]] };
      if (checkpoint) {
        nodes.push({ id: `${prefix}-${i}`, type: "redforge-checkpoint", z: tab, workflow: "bench", step: `s${i}`, mode: "begin", wires: [[`${prefix}-step${i}`]] });
        nodes.push(step);
        nodes.push({ id: `${prefix}-e${i}`, type: "redforge-checkpoint", z: tab, workflow: "bench", step: `s${i}`, mode: "end", final: i === STEPS - 1, wires: [[next]] });
      } else {
        nodes.push({ ...step, id: `${prefix}-${i}` });
        (step.wires as string[][])[0] = [next];
      }
    }
    nodes.push({ id: `${prefix}-out`, type: "http response", z: tab, statusCode: "200", headers: {}, wires: [] });
  };
  chain("plain", "/bench/plain", false);
  chain("ckpt", "/bench/ckpt", true);
  // The plain chain's step ids equal its numbered ids: wire each to the next number.
  for (const n of nodes as Array<{ id: string; wires?: string[][] }>) {
    const m = /^plain-(\d+)$/.exec(n.id);
    if (m) n.wires = [[Number(m[1]) + 1 < STEPS ? `plain-${Number(m[1]) + 1}` : "plain-out"]];
  }
  return nodes;
}

async function run(base: string, route: string, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const res = await fetch(`${base}${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: `${route}-${i}-${Date.now()}` }) });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`${route}: ${res.status}`);
    out.push(performance.now() - t0);
  }
  return out;
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-bench-ckpt-"));
  const broker = await testBroker();
  const driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [await packNodePackage(path.join(tmp, "pkg"))], mqttUrl: broker.url });
  try {
    const id = crypto.randomUUID();
    const { endpoints } = await driver.create({ id, name: "bench-ckpt", flows: flow(), resources: {}, env: {}, credentialSecret: "bench-checkpoint-credential-secret" });
    const base = endpoints.admin;
    for (let t = 0; t < 100; t++) {
      const r = await fetch(`${base}/bench/ckpt`, { method: "POST", headers: { "content-type": "application/json" }, body: "{\"id\":\"warm\"}" }).catch(() => undefined);
      await r?.arrayBuffer();
      if (r?.ok) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await run(base, "/bench/plain", 50);
    await run(base, "/bench/ckpt", 50);
    // Interleaved halves, so a load change on the machine hits both alike.
    const plain: number[] = [];
    const ckpt: number[] = [];
    for (let half = 0; half < 2; half++) {
      plain.push(...(await run(base, "/bench/plain", RUNS / 2)));
      ckpt.push(...(await run(base, "/bench/ckpt", RUNS / 2)));
    }
    const perStep = (xs: number[]) => xs.map((x) => x / STEPS);
    const [p50a, p99a, p50b, p99b] = [pct(perStep(plain), 50), pct(perStep(plain), 99), pct(perStep(ckpt), 50), pct(perStep(ckpt), 99)];
    const extra50 = p50b - p50a;
    console.log(`checkpoint write cost per step (${STEPS}-step workflow, ${RUNS} runs each, one at a time, load ${os.loadavg()[0]!.toFixed(1)})`);
    console.log(`  without checkpoints: p50 ${p50a.toFixed(3)} ms/step  p99 ${p99a.toFixed(3)} ms/step`);
    console.log(`  with checkpoints:    p50 ${p50b.toFixed(3)} ms/step  p99 ${p99b.toFixed(3)} ms/step`);
    console.log(`  ratio with/without:  p50 ${(p50b / p50a).toFixed(2)}x  p99 ${(p99b / p99a).toFixed(2)}x; checkpoint cost ≈ ${extra50.toFixed(3)} ms per step at p50 (begin + end: 2 journal appends, 2 QoS 1 publishes)`);
  } finally {
    await driver.close();
    await broker.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

await main();
