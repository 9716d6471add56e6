/**
 * bench/observability, alert latency: from `kill -9` of an instance's Node-RED
 * (the process driver, real Node-RED) to the signed `alert.fired` notification
 * arriving at a webhook receiver on loopback, through the whole path: the
 * driver notices the exit and reports the restart, the report asks QStash for
 * an evaluation at once (core/alerts/trigger.ts), the evaluation fires
 * instance_down and publishes the notification, QStash delivers it to the
 * delivery job, which posts it signed. Beside it, in the same run, how long
 * the instance was down (kill → running again), the outage the alert is about.
 * The target: within one sweep interval (60 s, the scheduled
 * evaluation's cron) plus 5 s.
 *   npm run bench:alert-latency        (BENCH_ROUNDS=3)
 */
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { startBridge } from "../../bridge/main.ts";
import { lineLogger } from "../../bridge/log.ts";
import { adminClient } from "../../test/harness/adminClient.ts";
import { startTestStack } from "../../test/harness/testStack.ts";
import { percentile as pct } from "../quantile.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SWEEP_S = 60;

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

async function main() {
  const arrived = new Map<string, number>();
  const receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => { body += c.toString(); });
    req.on("end", () => {
      const at = performance.now();
      try {
        const p = JSON.parse(body) as { type: string; alert: { subject: string } };
        if (p.type === "alert.fired" && !arrived.has(p.alert.subject)) arrived.set(p.alert.subject, at);
      } catch { /* not ours */ }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-bench-alerts-"));
  const stack = await startTestStack({ worker: "wrangler" });
  const { api, token } = await adminClient(stack);
  const cluster = (await api.POST("/api/clusters", { body: { name: "alert-latency" } })).data!;
  const stateDir = path.join(tmp, "bridge");
  const bridge = await startBridge({
    clusterId: cluster.id, api: stack.apiUrl, secret: cluster.webhookSecret, driver: "process", mqttUrl: stack.mqttUrl,
    stateDir, log: lineLogger(() => {}),
  });
  const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const status = async (id: string) => ((await (await fetch(`${stack.apiUrl}/api/instances/${id}`, { headers })).json()) as { status: string }).status;
  try {
    const ids: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const { data, error } = await api.POST("/api/instances", { body: { name: `alerting-${i}`, clusterId: cluster.id } });
      if (!data) throw new Error(`create: ${JSON.stringify(error)}`);
      ids.push(data.id);
    }
    // Running, and its Node-RED answering /healthz 200 (the node package installed, flows started): killed before that,
    // the create command itself fails and the outage measured is a failed create, not a crash.
    for (const id of ids) {
      const admin = await waitFor(`${id} running`, async () => {
        const inst = (await (await fetch(`${stack.apiUrl}/api/instances/${id}`, { headers })).json()) as { status: string; endpoints: { admin?: string } };
        return inst.status === "running" && inst.endpoints.admin ? inst.endpoints.admin : undefined;
      }, 240_000);
      await waitFor(`${id} healthy`, async () => ((await fetch(new URL("healthz", admin.endsWith("/") ? admin : `${admin}/`))).status === 200 ? true : undefined), 120_000);
    }
    const team = ((await (await fetch(`${stack.apiUrl}/api/instances/${ids[0]}`, { headers })).json()) as { team: string }).team;
    const port = (receiver.address() as AddressInfo).port;
    for (const [p, body] of [
      ["/api/alerts/channels", { team, name: "bench-receiver", kind: "webhook", url: `http://127.0.0.1:${port}/alerts` }],
      ["/api/alerts/rules", { team, name: "instance-down", kind: "instance_down", severity: "critical" }],
    ] as const) {
      const res = await fetch(`${stack.apiUrl}${p}`, { method: "POST", headers, body: JSON.stringify(body) });
      if (res.status !== 201) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    }

    const alertMs: number[] = [];
    const downMs: number[] = [];
    for (const id of ids) {
      const record = JSON.parse(await fs.readFile(path.join(stateDir, "process", id, "runtime.json"), "utf8")) as { pid: number };
      const t0 = performance.now();
      process.kill(record.pid, "SIGKILL");
      const [alertAt, backAt] = await Promise.all([
        waitFor("the alert notification", async () => arrived.get(id), (SWEEP_S + 120) * 1000),
        (async () => {
          await waitFor("the instance seen down", async () => ((await status(id)) !== "running" ? true : undefined), 60_000);
          return waitFor("the instance running again", async () => ((await status(id)) === "running" ? performance.now() : undefined), 120_000);
        })(),
      ]);
      alertMs.push(alertAt - t0);
      downMs.push(backAt - t0);
      console.log(`  round ${alertMs.length}: alert after ${(alertAt - t0).toFixed(0)} ms, instance back after ${(backAt - t0).toFixed(0)} ms`);
    }
    const target = (SWEEP_S + 5) * 1000;
    console.log(`\nbench/observability alert latency (${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}, ${new Date().toISOString()}, ${ROUNDS} rounds)`);
    console.log(`  kill -9 → alert.fired received: p50 ${pct(alertMs, 50).toFixed(0)} ms, max ${Math.max(...alertMs).toFixed(0)} ms (target ≤ ${target} ms: ${Math.max(...alertMs) <= target ? "met" : "MISSED"})`);
    console.log(`  kill -9 → instance running again: p50 ${pct(downMs, 50).toFixed(0)} ms, max ${Math.max(...downMs).toFixed(0)} ms`);
    console.log(`  alert latency / outage: ×${(pct(alertMs, 50) / pct(downMs, 50)).toFixed(2)} (below 1: the team hears of it while the instance is still down)`);
    console.log(`  alert latency / sweep interval: ×${(pct(alertMs, 50) / (SWEEP_S * 1000)).toFixed(3)} (a scheduled-only evaluation waits up to ×1)`);
  } finally {
    await bridge.close().catch(() => {});
    await stack.stop();
    receiver.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
