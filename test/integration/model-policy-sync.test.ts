/**
 * The bridge's approved-model lists expire (bridge/modelPolicySync.ts) against
 * the in-process MQTT broker and a scripted control plane (signatures checked
 * with the production verifier): each retained list carries expiresAt =
 * fetch + maxAgeSeconds; while the control plane answers, an unchanged list
 * is published again before it runs out; while it does not, nothing renews
 * the list, which runs out (the instance's check then refuses, as
 * modelPolicy.js staleness() says); once it answers again a fresh list comes.
 */
import http from "node:http";
import { createRequire } from "node:module";
import { afterEach, describe, expect, it, vi } from "vitest";
import mqtt from "mqtt";
import { ModelPolicySync } from "../../bridge/modelPolicySync.ts";
import type { Logger } from "../../bridge/log.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort, listen } from "../../dev/ports.ts";
import { modelPolicyTopic } from "../../protocol/modelPolicies.ts";
import { verifyWebhook } from "../../protocol/webhooks.ts";

const require = createRequire(import.meta.url);
const { staleness } = require("../../flows/node-package/lib/modelPolicy.js") as { staleness: (current: unknown, now: number) => string | undefined };

const SECRET = `whsec_${Buffer.from("model-policy-sync-secret-32bytes").toString("base64")}`;
const CLUSTER = "7e3f5c2e-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
const INSTANCE = "44444444-2222-4333-8444-555555555555";

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => { for (const c of closers.splice(0).reverse()) await c(); });
const silent: Logger = { info: () => {}, warn: () => {}, error: () => {} };

describe("approved-model lists published by the bridge expire", () => {
  it("carry expiresAt, are renewed while the control plane answers, run out while it does not, and come back fresh", async () => {
    const broker = await startMqttBroker({ port: await freePort(), host: "127.0.0.1" });
    closers.push(() => broker.close());
    const state = { down: false };
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", async () => {
        const check = await verifyWebhook([SECRET], { get: (n) => (req.headers[n] as string | undefined) ?? null }, body);
        if (!check.ok || req.url !== `/api/webhooks/clusters/${CLUSTER}/model-policies`) return void res.writeHead(401).end();
        if (state.down) return void res.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "database_unavailable", message: "down" } }));
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
          instances: { [INSTANCE]: [{ name: "approved", models: ["llama3.2"] }] }, ttlSeconds: 1, maxAgeSeconds: 3,
        }));
      });
    });
    await listen(server, 0, "127.0.0.1");
    closers.push(() => new Promise((r) => server.close(r)));

    const seen: { fetchedAt: string; expiresAt: string; policies: unknown[] }[] = [];
    const sub = await mqtt.connectAsync(broker.url!, { protocolVersion: 4 });
    closers.push(() => sub.endAsync());
    sub.on("message", (_t, p) => { if (p.length) seen.push(JSON.parse(p.toString("utf8"))); });
    await sub.subscribeAsync(modelPolicyTopic(INSTANCE), { qos: 1 });

    const sync = new ModelPolicySync({ api: `http://127.0.0.1:${(server.address() as { port: number }).port}`, clusterId: CLUSTER, secret: SECRET, mqttUrl: broker.url!, log: silent, refreshMs: 200 });
    sync.start();
    closers.push(() => sync.close());

    await vi.waitFor(() => expect(seen.length).toBeGreaterThan(0), { timeout: 15_000, interval: 50 });
    expect(Date.parse(seen[0]!.expiresAt) - Date.parse(seen[0]!.fetchedAt)).toBe(3_000);
    expect(seen[0]!.policies).toEqual([{ name: "approved", models: ["llama3.2"] }]);
    // Renewed before it runs out, while refreshes work: never a moment without a valid list.
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(3), { timeout: 15_000, interval: 50 });
    for (let i = 1; i < seen.length; i++) expect(Date.parse(seen[i]!.fetchedAt)).toBeLessThan(Date.parse(seen[i - 1]!.expiresAt));

    // The control plane goes away: nothing renews the list, and it runs out.
    state.down = true;
    await new Promise((r) => setTimeout(r, 300));
    const last = seen.length;
    const lastList = seen[last - 1]!;
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(Date.parse(lastList.expiresAt) + 200), { timeout: 15_000, interval: 100 });
    expect(seen.length - last, "no renewal while the control plane is away").toBeLessThanOrEqual(1);
    const retained = seen[seen.length - 1]!;
    expect(staleness(retained, Date.now())).toContain("expired");

    // Back: a fresh list at the next refresh.
    state.down = false;
    await vi.waitFor(() => expect(Date.parse(seen[seen.length - 1]!.expiresAt)).toBeGreaterThan(Date.now()), { timeout: 15_000, interval: 50 });
    expect(staleness(seen[seen.length - 1], Date.now())).toBeUndefined();
  }, 60_000);
});
