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
      `    scheme: ${api.protocol.replace(":", "")}`, "    metrics_path: /metrics",
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
  });
});
