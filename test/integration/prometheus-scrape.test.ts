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
    await reportInstanceHealth(stack, token);
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
  });

  it("every Grafana dashboard panel's PromQL parses and runs on that Prometheus", { timeout: 120_000 }, async () => {
    expect(queryRaw, "the server test ran first").toBeDefined();
    const grafanaDir = path.resolve(import.meta.dirname, "../../docs/observability/grafana");
    const files = (await fs.readdir(grafanaDir)).filter((f) => f.endsWith(".json"));
    expect(files.sort()).toEqual(["ai-cost.json", "api.json", "deployments.json", "fleet.json"]);
    const empty: string[] = [];
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
          if (!answer.data!.result.length) empty.push(`${file} "${panel.title}"`);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(40);
    // With one scrape's history, rate() over a short window and never-observed histograms can be empty; say which.
    if (empty.length) console.info(`dashboards: ${checked} queries ran, ${empty.length} without data yet: ${empty.join("; ")}`);
    expect(empty.length, empty.join("\n")).toBeLessThan(checked / 2);
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

/** A cluster and an instance whose bridge reported health with CPU and message counters (a signed webhook, as a bridge sends it). */
async function reportInstanceHealth(stack: TestStack, token: string): Promise<void> {
  const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const post = async (p: string, body: unknown) => (await fetch(`${stack.apiUrl}${p}`, { method: "POST", headers, body: JSON.stringify(body) })).json() as Promise<Record<string, string>>;
  const cluster = await post("/api/clusters", { name: `prom-${Date.now()}` });
  const instance = await post("/api/instances", { name: `prom-${Date.now()}`, clusterId: cluster.id });
  for (const [cpuSeconds, n] of [[1.5, 10], [2.5, 30]] as const) {
    const text = JSON.stringify({ type: "health.report", instances: [{
      instanceId: instance.id, state: "running", live: true, ready: true, rssBytes: 1.2e8, heapUsedBytes: 4e7, missingNodeTypes: [],
      checkedAt: new Date().toISOString(), cpuSeconds, messages: { in: n, out: n - 1, errors: 1 },
    }] });
    const res = await fetch(`${stack.apiUrl}/api/webhooks/clusters/${cluster.id}`, { method: "POST", body: text, headers: { ...(await webhookHeaders(cluster.webhookSecret!, text)), "Content-Type": "application/json" } });
    expect(res.status).toBe(202);
  }
}
