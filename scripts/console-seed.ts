/**
 * A realistic control plane for looking at the console: the local stack on free
 * ports, a cluster with its bridge (process driver, real Node-RED), an instance
 * with two deployed flow versions and health history, AI decisions with prices,
 * users, a custom role, an API key, a quota, a policy, a report and a schedule.
 * Used by the screenshots script (scripts/console-screenshots.ts) and the
 * governance browser suite.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startBridge, type RunningBridge } from "../bridge/main.ts";
import { lineLogger } from "../bridge/log.ts";
import type { ApiBody } from "../protocol/api/client.ts";
import { webhookHeaders } from "../protocol/webhooks.ts";
import { adminClient, type ApiClient } from "../test/harness/adminClient.ts";
import { startTestStack, type TestStack } from "../test/harness/testStack.ts";
import { zeroLossFlow } from "../test/harness/zeroLoss.ts";

export interface ConsoleWorld {
  stack: TestStack;
  bridge: RunningBridge;
  api: ApiClient;
  clusterId: string;
  webhookSecret: string;
  adminPassword: string;
  close(): Promise<void>;
}

export async function startConsoleWorld(clusterName = "edge-1"): Promise<ConsoleWorld> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-console-world-"));
  const stack = await startTestStack({ worker: "wrangler" });
  const { api } = await adminClient(stack);
  const cluster = (await api.POST("/api/clusters", { body: { name: clusterName, labels: { region: "eu-west", tier: "edge" } } })).data!;
  const bridge = await startBridge({
    clusterId: cluster.id, api: stack.apiUrl, secret: cluster.webhookSecret, driver: "process", mqttUrl: stack.mqttUrl,
    stateDir: path.join(tmp, "bridge"), log: lineLogger(process.env.STACK_LOG ? (l) => console.log(`[bridge] ${l}`) : () => {}),
  });
  return {
    stack, bridge, api, clusterId: cluster.id, webhookSecret: cluster.webhookSecret, adminPassword: stack.cfg.worker.adminPassword,
    async close() { await bridge.close(); await stack.stop(); await fs.rm(tmp, { recursive: true, force: true }); },
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

type Flows = ApiBody<"/api/instances", "post">["flows"];

/** An instance running real Node-RED, redeployed once (two flow versions), with a few health sweeps behind it. */
export async function seedInstance(w: ConsoleWorld, name = "support-agent"): Promise<string> {
  const u = new URL(w.stack.mqttUrl);
  const flows = (version: string) => zeroLossFlow({ version, entry: "gate", broker: { host: u.hostname, port: Number(u.port || 1883) } }) as Flows;
  const created = await w.api.POST("/api/instances", { body: {
    name, clusterId: w.clusterId, flows: flows("v1"), resources: { cpu: "500m", memory: "512Mi" },
    env: { LOG_LEVEL: "info" }, secrets: { OPENAI_API_KEY: "sk-demo-not-real", SUPPORT_DB_PASSWORD: "demo" },
  } });
  if (!created.data) throw new Error(`create ${name}: ${JSON.stringify(created.error)}`);
  const id = created.data.id;
  await until(`${name} running`, async () => {
    const i = (await w.api.GET("/api/instances/{id}", { params: { path: { id } } })).data;
    return i?.status === "running" && Object.keys(i.endpoints).length > 0;
  });
  await sweep(w);
  const v2 = flows("v2");
  (v2 as Record<string, unknown>[]).push({ id: "seed-debug", type: "debug", z: "zl-tab", name: "trace", x: 700, y: 200, active: true, wires: [] });
  const dep = await w.api.POST("/api/deployments", { body: { instanceId: id, flows: v2, holdDuring: "switch", analysisSeconds: 1, rollbackWindowSeconds: 0 } });
  if (!dep.data) throw new Error(`deploy ${name}: ${JSON.stringify(dep.error)}`);
  await until("the deployment to finish", async () => {
    const d = (await w.api.GET("/api/deployments/{id}", { params: { path: { id: dep.data!.id } } })).data;
    return d && ["completed", "failed", "rolled_back"].includes(d.status);
  }, 120_000);
  for (let n = 0; n < 3; n++) await sweep(w);
  return id;
}

/** One health sweep now (the QStash schedule fired by hand), and a moment for the bridge's report. */
export async function sweep(w: ConsoleWorld): Promise<void> {
  w.stack.qstash.fireSchedule("redforge-health-sweep");
  await w.stack.qstash.tick();
  await new Promise((r) => setTimeout(r, 2500));
}

/** AI decision records as the bridge sends them (one signed batch), and prices for two of the models. */
export async function seedAiDecisions(w: ConsoleWorld, instanceId: string, count = 60): Promise<void> {
  const models = [["openai", "gpt-4o-mini"], ["anthropic", "claude-haiku"], ["local", "llama-3-8b"]] as const;
  const flows = ["triage", "answer", "summarise"];
  const now = Date.now();
  const records = Array.from({ length: count }, (_, n) => {
    const [provider, model] = models[n % models.length]!;
    return {
      instanceId, provider, model, flowName: flows[n % flows.length]!, timestamp: new Date(now - (count - n) * 60_000).toISOString(),
      prompt: `Customer ${n} asks about order ${1000 + n}`, response: `Order ${1000 + n} ships tomorrow.`,
      inputTokens: 200 + ((n * 37) % 400), outputTokens: 40 + ((n * 53) % 160), latencyMs: 300 + ((n * 71) % 900), finishReason: "stop",
    };
  });
  // Prices first: a call is priced when it arrives.
  await w.api.PUT("/api/ai/prices", { body: { provider: "openai", model: "gpt-4o-mini", inputUsdPerMtok: 0.15, outputUsdPerMtok: 0.6 } });
  await w.api.PUT("/api/ai/prices", { body: { provider: "anthropic", model: "claude-haiku", inputUsdPerMtok: 0.8, outputUsdPerMtok: 4 } });
  const body = JSON.stringify({ batchId: `seed${now}`, records });
  const res = await fetch(`${w.stack.apiUrl}/api/webhooks/clusters/${w.clusterId}/ai-decisions`, {
    method: "POST", body, headers: { "content-type": "application/json", ...(await webhookHeaders(w.webhookSecret, body)) },
  });
  if (!res.ok) throw new Error(`AI decisions: ${res.status} ${await res.text()}`);
}

/** People, a custom role, a key, a quota, a policy, a report and a schedule: governance with something in it. */
export async function seedGovernance(w: ConsoleWorld): Promise<void> {
  const must = (what: string, a: { error?: unknown; response: Response }) => { if (!a.response.ok) throw new Error(`${what}: ${a.response.status} ${JSON.stringify(a.error)}`); };
  must("user", await w.api.POST("/api/users", { body: { username: "dana.ops", email: "dana@example.com", password: "operator-password-1", role: "operator" } }));
  must("user", await w.api.POST("/api/users", { body: { username: "sam.audit", email: "sam@example.com", password: "auditor-password-1", role: "viewer" } }));
  must("role", await w.api.POST("/api/roles", { body: { name: "release-manager", permissions: [{ resource: "deployments", action: "*" }, { resource: "instances", action: "read" }, { resource: "audit", action: "read" }] } }));
  must("key", await w.api.POST("/api/api-keys", { body: { name: "grafana-reader", role: "viewer", scopes: [{ resource: "metrics", action: "read" }] } }));
  must("quota", await w.api.PUT("/api/quotas/{team}", { params: { path: { team: "default" } }, body: { maxInstances: 20, maxCpuMillicores: 8000, maxMemoryMb: 16384, maxDeploymentsPerDay: 50, maxLlmTokensPerDay: 200000 } }));
  must("policy", await w.api.POST("/api/policies", { body: { name: "edge-replicas", kind: "max_replicas", rule: { max: 2, selector: {} } } }));
  must("policy", await w.api.POST("/api/policies", { body: { name: "approved-models", kind: "approved_models", rule: { models: ["gpt-4o-mini", "claude-haiku"] }, enabled: false } }));
  must("config", await w.api.PUT("/api/config", { body: { reports: { schedule: "0 2 * * *", kinds: ["audit_trail", "access"], framework: "soc2", format: "csv", period: "day" }, retention: { audit_logs: 365, ai_decision_logs: 90, instance_health: 14 } } }));
  const now = new Date();
  must("report", await w.api.POST("/api/reports", { body: { kind: "audit_trail", framework: "soc2", format: "csv", from: new Date(now.getTime() - 86_400_000).toISOString(), to: now.toISOString() } }));
}
