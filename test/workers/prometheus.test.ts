/** GET /metrics: who may scrape, what the exposition says, and counters that add up across parallel requests. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../functions/app.ts";
import { until } from "../harness/eventually.ts";
import { eq } from "drizzle-orm";
import { instances } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { callJob } from "./qstashJobs.ts";
import { api, createCluster, createInstance, createUser, expectErrorShape, unique, withDb } from "./helpers.ts";

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;

interface Parsed { type: Map<string, string>; samples: Array<{ name: string; labels: Record<string, string>; value: number }> }

/** A strict reader of the text format: every line is a comment we know or a well-formed sample. */
function parse(text: string): Parsed {
  const type = new Map<string, string>();
  const samples: Parsed["samples"] = [];
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ") || line === "# EOF") continue;
    if (line.startsWith("# TYPE ")) { const [, , name, t] = line.split(" "); type.set(name!, t!); continue; }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { type, samples };
}

const scrape = async (token: string, accept?: string) => {
  const res = await api("GET", "/metrics", { token, ...(accept ? { headers: { Accept: accept } } : {}) });
  expect(res.status, String(res.body)).toBe(200);
  return { res, parsed: parse(res.body as string) };
};

const value = (p: Parsed, name: string, labels: Record<string, string>) =>
  p.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

describe("GET /metrics", () => {
  // Several logins, keys and scrapes: on a machine at load 25 this took over the pool's 30 s default.
  it("needs a credential with metrics:read, or the configured scrape token", { timeout: 120_000 }, async () => {
    const none = await api("GET", "/metrics");
    expect(none.status).toBe(401);
    expectErrorShape(none.body, "unauthenticated");
    const owner = await createUser("operator");
    const key = await api("POST", "/api/api-keys", { token: owner.token, body: { name: "no-metrics", scopes: [{ resource: "instances", action: "read" }] } });
    expect(key.status).toBe(201);
    const denied = await api("GET", "/metrics", { token: key.body.key });
    expect(denied.status).toBe(403);
    expectErrorShape(denied.body, "forbidden");
    const viewer = await createUser("viewer");
    expect((await api("GET", "/metrics", { token: viewer.token })).status).toBe(200);

    const app = createApp();
    const token = "t".repeat(40);
    const withToken = (bearer: string, configured: string) =>
      app.request("http://redforge.test/metrics", { headers: { Authorization: `Bearer ${bearer}` } }, { ...env, REDFORGE_METRICS_TOKEN: configured });
    expect((await withToken(token, token)).status).toBe(200);
    expect((await withToken(`${token}x`, token)).status).toBe(401);
    // A short configured token is ignored rather than trusted.
    expect((await withToken("short", "short")).status).toBe(401);
  });

  it("speaks the Prometheus text format, and OpenMetrics when asked", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    await createInstance(admin.token, cluster.id);
    const { res, parsed } = await scrape(admin.token);
    expect(res.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(value(parsed, "redforge_instances", { cluster: cluster.name })).toBeGreaterThanOrEqual(1);
    expect(value(parsed, "redforge_metrics_source_up", { source: "database" })).toBe(1);
    expect(value(parsed, "redforge_metrics_source_up", { source: "cluster_links" })).toBe(1);
    // No bridge has connected: the cluster is listed as disconnected, not left out.
    expect(parsed.samples.find((s) => s.name === "redforge_cluster_connected" && s.labels.cluster === cluster.name)?.value).toBe(0);
    expect(parsed.type.get("redforge_http_request_duration_seconds")).toBe("histogram");
    expect(parsed.type.get("redforge_ai_tokens_total")).toBe("counter");

    const om = await scrape(admin.token, "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5");
    expect(om.res.headers.get("Content-Type")).toContain("application/openmetrics-text");
    expect((om.res.body as string).trimEnd().endsWith("# EOF")).toBe(true);
    // OpenMetrics names a counter family without its _total suffix.
    expect(om.parsed.type.get("redforge_ai_tokens")).toBe("counter");
  });

  it("counts every one of 40 parallel requests once, with cumulative buckets", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const route = { route: "/api/clusters/:id", method: "GET", status_class: "2xx" };
    const before = value((await scrape(admin.token)).parsed, "redforge_http_request_duration_seconds_count", route);
    const answers = await Promise.all(Array.from({ length: 40 }, () => api("GET", `/api/clusters/${cluster.id}`, { token: admin.token })));
    expect(answers.map((a) => a.status).filter((s) => s !== 200), JSON.stringify(answers.find((a) => a.status !== 200)?.body)).toEqual([]);
    // Counted off the response path (waitUntil): wait until all 40 have landed, then check nothing more did.
    const after = await until("40 requests counted", async () => {
      const p = (await scrape(admin.token)).parsed;
      return value(p, "redforge_http_request_duration_seconds_count", route) >= before + 40 ? p : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(value(after, "redforge_http_request_duration_seconds_count", route)).toBe(before + 40);
    const buckets = after.samples.filter((s) => s.name === "redforge_http_request_duration_seconds_bucket" && s.labels.route === route.route && s.labels.status_class === "2xx" && s.labels.method === "GET");
    const counts = buckets.map((b) => b.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(buckets.at(-1)!.labels.le).toBe("+Inf");
    expect(buckets.at(-1)!.value).toBe(before + 40);
    // Route templates, never raw paths: no label holds the cluster's id.
    expect(after.samples.some((s) => Object.values(s.labels).some((v) => v.includes(cluster.id)))).toBe(false);
  });

  it("labels a request no route matched as unmatched", async () => {
    const admin = await createUser("admin");
    await api("GET", `/api/nowhere-${crypto.randomUUID()}`, { token: admin.token });
    const p = await until("the 404 counted", async () => {
      const parsed = (await scrape(admin.token)).parsed;
      return value(parsed, "redforge_http_request_duration_seconds_count", { route: "unmatched", status_class: "4xx" }) >= 1 ? parsed : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(value(p, "redforge_http_request_duration_seconds_count", { route: "unmatched", status_class: "4xx" })).toBeGreaterThanOrEqual(1);
  });

  it("counts AI tokens and cost per model and team at ingest, and refused webhooks by reason", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const instance = await createInstance(admin.token, cluster.id);
    const team = unique("team");
    await withDb((db) => db.update(instances).set({ team }).where(eq(instances.id, instance.id)));
    const model = unique("model");
    expect((await api("PUT", "/api/ai/prices", { token: admin.token, body: { provider: "openai", model, inputUsdPerMtok: 1, outputUsdPerMtok: 2 } })).status).toBe(200);
    const before = (await scrape(admin.token)).parsed;
    const forgedBefore = value(before, "redforge_webhook_verification_failures_total", { reason: "invalid_signature" });

    const text = JSON.stringify({ batchId: crypto.randomUUID(), records: [1, 2].map(() => ({
      instanceId: instance.id, provider: "openai", model, flowName: "support", inputTokens: 1_000_000, outputTokens: 500_000,
    })) });
    const sent = await api("POST", `/api/webhooks/clusters/${cluster.id}/ai-decisions`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    expect(sent.body).not.toHaveProperty("usage");
    const forged = await api("POST", `/api/webhooks/clusters/${cluster.id}/ai-decisions`, { raw: text, headers: { ...(await webhookHeaders("whsec_" + btoa("not the secret, not at all"), text)), "Content-Type": "application/json" } });
    expect(forged.status).toBe(401);

    const after = await until("usage and the refusal counted", async () => {
      const p = (await scrape(admin.token)).parsed;
      return value(p, "redforge_ai_tokens_total", { model, team }) > 0 && value(p, "redforge_webhook_verification_failures_total", { reason: "invalid_signature" }) > forgedBefore ? p : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(value(after, "redforge_ai_tokens_total", { model, team })).toBe(3_000_000);
    // 2 × (1 M input at $1 + 0.5 M output at $2).
    expect(value(after, "redforge_ai_cost_usd_total", { model, team })).toBeCloseTo(4, 6);
    expect(value(after, "redforge_webhook_verification_failures_total", { reason: "invalid_signature" })).toBe(forgedBefore + 1);
  });

  it("counts QStash deliveries per job and outcome", async () => {
    const admin = await createUser("admin");
    const labels = { job: "retention-purge", outcome: "ok" };
    const before = value((await scrape(admin.token)).parsed, "redforge_qstash_deliveries_total", labels);
    const res = await callJob("/api/jobs/retention-purge", { at: new Date(0).toISOString(), batchSize: 1, maxBatches: 1 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const refused = await callJob("/api/jobs/retention-purge", { batchSize: "many" });
    expect(refused.status).toBe(400);
    const after = await until("the deliveries counted", async () => {
      const p = (await scrape(admin.token)).parsed;
      return value(p, "redforge_qstash_deliveries_total", labels) > before && value(p, "redforge_qstash_deliveries_total", { job: "retention-purge", outcome: "refused" }) > 0 ? p : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(value(after, "redforge_qstash_deliveries_total", labels)).toBe(before + 1);
  });
});
