/**
 * The per-instance series (CPU seconds and message counters from health
 * reports, old bridges' reports still accepted) and the two histograms fed by
 * Durable Objects: a deployment's phase durations and a cluster's command
 * round trip, as GET /metrics exposes them.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { eq } from "drizzle-orm";
import { instances } from "../../db/schema.ts";
import { api, createCluster, createInstance, createUser, unique, withDb } from "./helpers.ts";

const WAIT = { timeout: 20_000, interval: 50 };

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Just enough of the text format for these assertions (prometheus.test.ts holds the strict reader). */
function samples(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) { const [, , n, t] = line.split(" "); types.set(n!, t!); continue; }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples: out, types };
}

async function scrape(token: string) {
  const res = await api("GET", "/metrics", { token });
  expect(res.status).toBe(200);
  return samples(res.body as string);
}

const find = (s: Sample[], name: string, labels: Record<string, string>) =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));

async function report(cluster: { id: string; webhookSecret: string }, body: unknown) {
  const text = JSON.stringify(body);
  const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

const health = (instanceId: string, extra: Record<string, unknown> = {}) => ({
  instanceId, state: "running", live: true, ready: true, rssBytes: 120e6, heapUsedBytes: 40e6, missingNodeTypes: [], checkedAt: new Date().toISOString(), ...extra,
});

describe("per-instance CPU and message series", () => {
  it("a health report's cpuSeconds and gate counters become counters per instance; a report without them (an older bridge) is still accepted", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const [withFigures, older] = await Promise.all([createInstance(admin.token, cluster.id), createInstance(admin.token, cluster.id)]);
    await report(cluster, {
      type: "health.report",
      instances: [
        health(withFigures.id, { cpuSeconds: 12.5, messages: { in: 40, out: 38, errors: 2 }, flows: [{ flowId: "tab1", in: 40, out: 38, errors: 2 }] }),
        health(older.id),
      ],
    });
    const { samples: s, types } = await scrape(admin.token);
    expect(types.get("redforge_instance_cpu_seconds_total")).toBe("counter");
    expect(types.get("redforge_instance_messages_total")).toBe("counter");
    expect(types.get("redforge_instance_message_errors_total")).toBe("counter");
    const mine = { instance: withFigures.name, cluster: cluster.name };
    expect(find(s, "redforge_instance_cpu_seconds_total", mine).map((x) => x.value)).toEqual([12.5]);
    expect(find(s, "redforge_instance_messages_total", { ...mine, direction: "in" }).map((x) => x.value)).toEqual([40]);
    expect(find(s, "redforge_instance_messages_total", { ...mine, direction: "out" }).map((x) => x.value)).toEqual([38]);
    expect(find(s, "redforge_instance_message_errors_total", mine).map((x) => x.value)).toEqual([2]);
    // The older bridge's instance: its memory series, no counters it never sent.
    expect(find(s, "redforge_instance_resident_memory_bytes", { instance: older.name })).toHaveLength(1);
    expect(find(s, "redforge_instance_cpu_seconds_total", { instance: older.name })).toHaveLength(0);
  });

  it("per-flow series name each flow by its tab's label, and show only an instance's 10 busiest flows", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const inst = await createInstance(admin.token, cluster.id);
    // Twelve tabs deployed; tab0 is the busiest, tab11 the quietest.
    const tabs = Array.from({ length: 12 }, (_, i) => ({ id: `tab${i}`, type: "tab", label: `Agent ${i}` }));
    await withDb((db) => db.update(instances).set({ flows: tabs }).where(eq(instances.id, inst.id)));
    const flows = tabs.map((t, i) => ({ flowId: t.id, in: 100 - i, out: 90 - i, errors: i === 0 ? 3 : 0 }));
    // A bridge's order is not trusted: reported quietest first.
    await report(cluster, { type: "health.report", instances: [health(inst.id, { messages: { in: 1, out: 1, errors: 3 }, flows: [...flows].reverse() })] });
    const { samples: s, types } = await scrape(admin.token);
    expect(types.get("redforge_flow_messages_total")).toBe("counter");
    expect(types.get("redforge_flow_message_errors_total")).toBe("counter");
    const mine = { instance: inst.name, cluster: cluster.name };
    const shown = find(s, "redforge_flow_messages_total", { ...mine, direction: "in" });
    expect(shown.map((x) => x.labels.flow).sort()).toEqual(tabs.slice(0, 10).map((t) => t.id).sort());
    expect(find(s, "redforge_flow_messages_total", { ...mine, flow: "tab0", direction: "in" }).map((x) => [x.labels.flow_name, x.value])).toEqual([["Agent 0", 100]]);
    expect(find(s, "redforge_flow_messages_total", { ...mine, flow: "tab9", direction: "out" }).map((x) => x.value)).toEqual([81]);
    expect(find(s, "redforge_flow_message_errors_total", { ...mine, flow: "tab0" }).map((x) => x.value)).toEqual([3]);
    // A flow the instance no longer has a tab for is named by its id.
    await withDb((db) => db.update(instances).set({ flows: [] }).where(eq(instances.id, inst.id)));
    const again = await scrape(admin.token);
    expect(find(again.samples, "redforge_flow_messages_total", { ...mine, flow: "tab0", direction: "in" }).map((x) => x.labels.flow_name)).toEqual(["tab0"]);
  });

  it("refuses malformed counters (negative, fractional messages) with 400, like any bad report", async () => {
    const admin = await createUser("admin");
    const cluster = await createCluster(admin.token);
    const inst = await createInstance(admin.token, cluster.id);
    for (const bad of [{ cpuSeconds: -1 }, { messages: { in: 1.5, out: 0, errors: 0 } }, { flows: [{ flowId: "x".repeat(65), in: 1, out: 1, errors: 0 }] }]) {
      const text = JSON.stringify({ type: "health.report", instances: [health(inst.id, bad)] });
      const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
  });
});

describe("histograms fed by Durable Objects", () => {
  it("a command's receipt lands in the cluster's round-trip histogram; a failed phase in the phase-duration histogram", async () => {
    const admin = await createUser("admin");
    const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("obs") } })).body;
    const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("obs"), clusterId: cluster.id } })).body;
    await report(cluster, { type: "instance.status", instanceId: inst.id, state: "running" });
    const before = await scrape(admin.token);
    const phaseCount = (s: Sample[]) => find(s, "redforge_deployment_phase_duration_seconds_count", { outcome: "failed" }).reduce((a, x) => a + x.value, 0);
    const failedBefore = phaseCount(before.samples);
    expect(before.types.get("redforge_deployment_phase_duration_seconds")).toBe("histogram");
    expect(before.types.get("redforge_cluster_command_round_trip_seconds")).toBe("histogram");

    const tokenBody = JSON.stringify({ bridgeVersion: "test" });
    const token = (await api("POST", `/api/clusters/${cluster.id}/token`, { raw: tokenBody, headers: { ...(await webhookHeaders(cluster.webhookSecret, tokenBody)), "Content-Type": "application/json" } })).body.token;
    const link = await SELF.fetch(`http://redforge.test/api/clusters/${cluster.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` } });
    const ws = link.webSocket!;
    const commands: any[] = [];
    ws.addEventListener("message", (e) => {
      const f = JSON.parse(e.data as string);
      if (f.kind !== "command") return;
      commands.push(f.command);
      ws.send(JSON.stringify({ kind: "received", commandId: f.command.id }));
    });
    ws.accept();
    const created = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: inst.id, flows: [{ id: "t1", type: "tab" }] } });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const prepare = await vi.waitFor(() => {
      const c = commands.find((x) => x.type === "deployment.prepare");
      expect(c).toBeDefined();
      return c;
    }, WAIT);
    await report(cluster, { type: "command.result", commandId: prepare.id, status: "error", error: { code: "not_implemented", message: "no blue-green here" } });

    await vi.waitFor(async () => {
      const { samples: s } = await scrape(admin.token);
      const rtt = find(s, "redforge_cluster_command_round_trip_seconds_count", { cluster: cluster.name });
      expect(rtt.reduce((a, x) => a + x.value, 0)).toBeGreaterThanOrEqual(1);
      // Labelled with the cluster's name, never its id.
      expect(find(s, "redforge_cluster_command_round_trip_seconds_bucket", { cluster: cluster.id })).toHaveLength(0);
      expect(phaseCount(s)).toBeGreaterThan(failedBefore);
    }, WAIT);
    ws.close();
  });
});
