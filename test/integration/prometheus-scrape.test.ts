/**
 * A real Prometheus (Debian's `prometheus` package, which also brings
 * promtool) scrapes `wrangler dev`'s /metrics with the scrape config that
 * docs/observability.md documents. Without the binaries the file says so in
 * one line and skips; CI installs them (.ci/run) and fails if they are missing.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { startBridge } from "../../bridge/main.ts";
import { SimulatedDriver } from "../../bridge/drivers/simulated.ts";
import { lineLogger } from "../../bridge/log.ts";
import { scriptedBridge } from "../../bench/fleet-rollout/scriptedBridge.ts";
import { adminClient } from "../harness/adminClient.ts";
import { until } from "../harness/eventually.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

const have = (bin: string) => spawnSync(bin, ["--version"], { stdio: "ignore" }).status === 0;
const available = have("promtool") && have("prometheus");
if (!available) {
  if (process.env.CI) throw new Error("promtool/prometheus are not installed; .ci/run installs Debian's prometheus package");
  console.warn("prometheus-scrape: skipped, `prometheus` and `promtool` are not installed (apt-get install prometheus)");
}

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)); }).on("error", reject);
});

describe.runIf(available)("the Prometheus rule file (docs/observability/prometheus-rules.yml)", () => {
  it("is valid and its alerts fire exactly on the series of test/prometheus/rules.test.yml", () => {
    const root = path.resolve(import.meta.dirname, "../..");
    for (const args of [["check", "rules", "docs/observability/prometheus-rules.yml"], ["test", "rules", "test/prometheus/rules.test.yml"]]) {
      const run = spawnSync("promtool", args, { cwd: root, encoding: "utf8" });
      expect(run.status, `${args.join(" ")}:\n${run.stdout}${run.stderr}`).toBe(0);
    }
  });
});

describe.runIf(available)("Prometheus scrapes /metrics", () => {
  let stack: TestStack;
  let token: string;
  let prometheus: ChildProcess | undefined;
  let closeBridge: (() => Promise<void>) | undefined;
  let dir: string;
  /** Set by the server test: instant queries against the running Prometheus, the whole answer. */
  let queryRaw: ((q: string) => Promise<{ status: string; errorType?: string; error?: string; data?: { resultType: string; result: unknown[] } }>) | undefined;

  beforeAll(async () => {
    stack = await startTestStack({ worker: "wrangler" });
    ({ token } = await adminClient(stack));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-prometheus-"));
  }, 180_000);

  afterAll(async () => {
    prometheus?.kill("SIGKILL");
    await closeBridge?.().catch(() => {});
    await stack?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("promtool accepts the exposition, in both formats", async () => {
    for (const accept of ["text/plain", "application/openmetrics-text; version=1.0.0"]) {
      const res = await fetch(`${stack.apiUrl}/metrics`, { headers: { Authorization: `Bearer ${token}`, Accept: accept } });
      expect(res.status).toBe(200);
      const text = await res.text();
      const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      // promtool's linter also names style problems on stdout; any output is a finding.
      expect({ status: check.status, out: `${check.stdout}${check.stderr}`.trim() }, accept).toEqual({ status: 0, out: "" });
    }
  });

  // Prometheus's scrape_timeout defaults to the interval: at 1 s a loaded machine's /metrics answer came too
  // late and `up` stayed 0 (CI, load 24). 5 s leaves room; the waits below are long for the same reason.
  it("a Prometheus server with the documented scrape config sees the fleet", { timeout: 240_000 }, async () => {
    const api = new URL(stack.apiUrl);
    const port = await freePort();
    // The scrape config of docs/observability.md, with this stack's address and an admin's token as the credential.
    await fs.writeFile(path.join(dir, "token"), token);
    await fs.writeFile(path.join(dir, "prometheus.yml"), [
      "global:", "  scrape_interval: 5s", "  scrape_timeout: 5s", "scrape_configs:", "  - job_name: redforge",
      `    scheme: ${api.protocol.replace(":", "")}`, "    metrics_path: /metrics", "    honor_labels: true",
      "    authorization:", `      credentials_file: ${path.join(dir, "token")}`,
      "    static_configs:", `      - targets: ["${api.host}"]`, "",
    ].join("\n"));
    prometheus = spawn("prometheus", [
      `--config.file=${path.join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn",
    ], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    prometheus.stderr!.on("data", (b: Buffer) => { log += b.toString(); });
    const query = async (q: string) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      return body.data.result;
    };
    queryRaw = async (q) => (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`)).json() as never;
    // An instance with a health report carrying CPU and message counters, so the per-instance panels have data.
    closeBridge = await reportInstanceHealth(stack, token, dir);
    await until("Prometheus scraped the stack successfully", async () => (await query('up{job="redforge"} == 1')).length === 1, {
      timeoutMs: 90_000, intervalMs: 500, explain: () => log.slice(-2000),
    });
    // Every source up in one scrape (a source that failed one scrape is up again in the next).
    const sourcesUp = await until("the scrape's sources are up", async () => {
      const r = await query('redforge_metrics_source_up{job="redforge"}');
      return r.length === 3 && r.every((s) => s.value[1] === "1") ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, explain: () => log.slice(-2000) });
    expect(sourcesUp.map((s) => s.value[1])).toEqual(["1", "1", "1"]);
    // /metrics is outside /api: scrapes are not in the API histogram, this call is.
    await fetch(`${stack.apiUrl}/api/auth/me`, { headers: { Authorization: `Bearer ${token}` } });
    await until("API requests in the latency histogram", async () =>
      (await query('sum(redforge_http_request_duration_seconds_count{route="/api/auth/me"}) > 0')).length === 1, { timeoutMs: 60_000, intervalMs: 500 });
    // honor_labels keeps the series' own `instance` label (the instance's name), not the scrape target's address.
    const ready = await until("the reported instance's series", async () => {
      const r = await query('redforge_instance_cpu_seconds_total{job="redforge"}');
      return r.length ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(ready[0]!.metric.instance).toMatch(/^prom-/);
    // rate() needs two samples in its window: wait until Prometheus holds them for the series the panels read.
    for (const q of ['redforge_flow_messages_total{flow="sim-agent"}', 'redforge_deployment_phase_duration_seconds_count{outcome="completed"}', "redforge_qstash_deliveries_total"]) {
      await until(`two samples of ${q}`, async () => (await query(`count_over_time(${q}[1m]) >= 2`)).length > 0, { timeoutMs: 90_000, intervalMs: 1000 });
    }
  });

  it("every Grafana dashboard panel's PromQL parses, runs and has data on that Prometheus", { timeout: 240_000 }, async () => {
    expect(queryRaw, "the server test ran first").toBeDefined();
    const grafanaDir = path.resolve(import.meta.dirname, "../../docs/observability/grafana");
    const files = (await fs.readdir(grafanaDir)).filter((f) => f.endsWith(".json"));
    expect(files.sort()).toEqual(["agents.json", "ai-cost.json", "api.json", "deployments.json", "fleet.json"]);
    const empty: Array<{ name: string; expr: string }> = [];
    let checked = 0;
    for (const file of files) {
      const dashboard = JSON.parse(await fs.readFile(path.join(grafanaDir, file), "utf8")) as GrafanaDashboard;
      // Importable: a uid, the data source a variable that every panel and query uses.
      expect(dashboard.uid, file).toMatch(/^redforge-/);
      expect(dashboard.templating.list.find((v) => v.name === "datasource")?.type, file).toBe("datasource");
      for (const panel of dashboard.panels) {
        expect(panel.datasource?.uid, `${file} ${panel.title}`).toBe("${datasource}");
        for (const target of panel.targets) {
          const expr = asGrafanaWould(target.expr);
          const answer = await queryRaw!(expr);
          expect({ status: answer.status, error: answer.error }, `${file} "${panel.title}": ${expr}`).toEqual({ status: "success", error: undefined });
          expect(["vector", "matrix", "scalar"], expr).toContain(answer.data!.resultType);
          if (!answer.data!.result.length) empty.push({ name: `${file} "${panel.title}"`, expr });
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
    // The fixture put data behind every panel; a query is empty only while the latest scrape failed (a loaded
    // machine's /metrics past the timeout marks the target's series stale), so ask the empty ones again for a while.
    let still = empty;
    for (const deadline = Date.now() + 150_000; still.length && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 2_000));
      const next: typeof still = [];
      for (const q of still) if (!(await queryRaw!(q.expr)).data?.result.length) next.push(q);
      still = next;
    }
    if (empty.length) console.info(`dashboards: ${checked} queries ran; ${empty.length} had no data at first, ${still.length} at the end`);
    expect(still.map((q) => q.name), "panels without data").toEqual([]);
  });
});

interface GrafanaDashboard {
  uid: string;
  templating: { list: Array<{ name: string; type: string }> };
  panels: Array<{ title: string; datasource?: { uid?: string }; targets: Array<{ expr: string }> }>;
}

/** What Grafana sends for a query: "All" of a multi-value variable is its allValue, $__rate_interval a few scrape intervals. */
function asGrafanaWould(expr: string): string {
  return expr.replace(/\$__rate_interval/g, "1m").replace(/\$(cluster|team)\b/g, ".*");
}

/**
 * A fleet with something in every series the dashboards read: a real bridge program (the SimulatedDriver)
 * connected on its link, an instance it runs, a deployment to it, a health sweep through QStash's schedule,
 * a health report with CPU and per-flow counters, AI decisions with tokens and cost, and a forged webhook.
 */
async function reportInstanceHealth(stack: TestStack, token: string, dir: string): Promise<() => Promise<void>> {
  const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const post = async (p: string, body: unknown) => {
    const res = await fetch(`${stack.apiUrl}${p}`, { method: "POST", headers, body: JSON.stringify(body) });
    const json = (await res.json()) as Record<string, string>;
    expect(res.status, `${p}: ${JSON.stringify(json)}`).toBeLessThan(300);
    return json;
  };
  const cluster = await post("/api/clusters", { name: `prom-${Date.now()}` });
  const bridge = await startBridge({ clusterId: cluster.id!, api: stack.apiUrl, secret: cluster.webhookSecret!, driver: new SimulatedDriver(), stateDir: path.join(dir, "bridge"), log: lineLogger(() => {}) });
  const instance = await post("/api/instances", { name: `prom-${Date.now()}`, clusterId: cluster.id });
  await until("the bridge runs the instance", async () => {
    const res = await fetch(`${stack.apiUrl}/api/instances/${instance.id}`, { headers });
    return ((await res.json()) as { status: string }).status === "running";
  }, { timeoutMs: 90_000, intervalMs: 500 });
  const send = async (p: string, body: unknown, secret = cluster.webhookSecret!) => {
    const text = JSON.stringify(body);
    return fetch(`${stack.apiUrl}/api/webhooks/clusters/${cluster.id}${p}`, { method: "POST", body: text, headers: { ...(await webhookHeaders(secret, text)), "Content-Type": "application/json" } });
  };
  const ai = await send("/ai-decisions", { batchId: crypto.randomUUID(), records: [{ instanceId: instance.id, provider: "openai", model: "gpt-4o-mini", flowName: "support", inputTokens: 1_000, outputTokens: 200 }] });
  expect(ai.status).toBe(202);
  expect((await send("", { type: "health.report", instances: [] }, "whsec_" + btoa("not the cluster's secret at all"))).status).toBe(401);
  // Deployments: on the SimulatedDriver (it has no blue-green runtime) one fails at its first phase; on a second
  // cluster whose bridge answers every command at once (bench/fleet-rollout's scripted bridge) one completes.
  const status = async (id: string) => ((await (await fetch(`${stack.apiUrl}/api/deployments/${id}`, { headers })).json()) as { status: string }).status;
  const flows = [{ id: "sim-agent", type: "tab", label: "Support agent" }];
  const failing = await post("/api/deployments", { instanceId: instance.id, flows, analysisSeconds: 0, rollbackWindowSeconds: 0 });
  const scriptedCluster = await post("/api/clusters", { name: `prom-scripted-${Date.now()}` });
  const scripted = await scriptedBridge(stack.apiUrl, scriptedCluster.id!, scriptedCluster.webhookSecret!);
  const scriptedInstance = await post("/api/instances", { name: `prom-scripted-${Date.now()}`, clusterId: scriptedCluster.id });
  await until("the scripted cluster's instance runs", async () =>
    ((await (await fetch(`${stack.apiUrl}/api/instances/${scriptedInstance.id}`, { headers })).json()) as { status: string }).status === "running", { timeoutMs: 90_000, intervalMs: 500 });
  const completing = await post("/api/deployments", { instanceId: scriptedInstance.id, flows, analysisSeconds: 0, rollbackWindowSeconds: 0 });
  let seen = "";
  await until("both deployments ended", async () => {
    const [a, b] = [await status(failing.id!), await status(completing.id!)];
    seen = `failing: ${a}, completing: ${b}`;
    return ["failed", "rolled_back"].includes(a) && b === "completed";
  }, { timeoutMs: 180_000, intervalMs: 500, explain: () => seen });
  // A health sweep through QStash's schedule: the bridge reports the instance's CPU and per-flow counters (the SimulatedDriver's).
  stack.qstash.fireSchedule("redforge-health-sweep");
  await stack.qstash.tick();
  return async () => { scripted.close(); await bridge.close(); };
}
