/**
 * An alert end to end: the built Worker under `wrangler dev`, the QStash
 * emulator firing the evaluation schedule, the evaluation publishing the
 * notification, QStash delivering it to the delivery job, and the job posting
 * it, signed, to a webhook receiver on loopback, which verifies it with the
 * `standardwebhooks` package (the reference implementation, not our own code).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@upstash/qstash";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { eventually } from "../harness/eventually.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";

interface Received { headers: Record<string, string>; body: string }

let stack: TestStack;
let token: string;
let receiver: http.Server;
const received: Received[] = [];

async function call(method: string, p: string, body?: unknown) {
  const res = await fetch(`${stack.apiUrl}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  stack = await startTestStack({ worker: "wrangler" });
  const login = await fetch(`${stack.apiUrl}/api/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: stack.cfg.worker.adminPassword }),
  });
  token = ((await login.json()) as { token: string }).token;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe("alert notifications (wrangler dev + QStash emulator + a webhook receiver)", () => {
  it("a failed instance is notified once, signed with Standard Webhooks, and shows on the alert history", async () => {
    const cluster = (await call("POST", "/api/clusters", { name: `alerts-${Date.now()}` })).body;
    const inst = await call("POST", "/api/instances", { name: `alerting-${Date.now()}`, clusterId: cluster.id });
    expect(inst.status, JSON.stringify(inst.body)).toBe(201);
    const team: string = inst.body.team;

    const port = (receiver.address() as AddressInfo).port;
    const channel = await call("POST", "/api/alerts/channels", { team, name: "receiver", kind: "webhook", url: `http://127.0.0.1:${port}/hooks/redforge` });
    expect(channel.status, JSON.stringify(channel.body)).toBe(201);
    const rule = await call("POST", "/api/alerts/rules", { team, name: "down", kind: "instance_down", severity: "critical" });
    expect(rule.status, JSON.stringify(rule.body)).toBe(201);

    // The bridge's report, signed with the cluster's secret, as a crashed Node-RED would cause.
    const report = JSON.stringify({ type: "instance.status", instanceId: inst.body.id, state: "failed", reason: "killed by hand" });
    const signed = await fetch(`${stack.apiUrl}/api/webhooks/clusters/${cluster.id}`, {
      method: "POST", body: report, headers: { ...(await webhookHeaders(cluster.webhookSecret, report)), "content-type": "application/json" },
    });
    expect(signed.status).toBeLessThan(300);

    stack.qstash.fireSchedule("redforge-alerts-evaluate");
    const got = await eventually(async () => {
      await stack.qstash.tick();
      await stack.qstash.idle();
      return received.find((r) => r.body.includes(inst.body.id));
    }, 120_000);

    // The reference implementation verifies what our delivery job signed.
    const payload = new Webhook(channel.body.secret).verify(got.body, got.headers) as any;
    expect(payload).toMatchObject({
      type: "alert.fired",
      alert: { team, kind: "instance_down", severity: "critical", subject: inst.body.id, subjectName: inst.body.name, status: "firing", ruleId: rule.body.id },
    });
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString("base64")}`).verify(got.body, got.headers)).toThrow();

    const history = await call("GET", `/api/alerts?team=${team}&kind=instance_down`);
    expect(history.body.items.filter((a: any) => a.subject === inst.body.id)).toHaveLength(1);
    const delivered = await eventually(async () => {
      const r = await call("GET", `/api/alerts/notifications?team=${team}&status=delivered`);
      return r.body.items.length > 0 ? r.body.items : undefined;
    });
    expect(delivered[0]).toMatchObject({ channelId: channel.body.id, event: "fired", attempts: 1 });
  }, 240_000);

  it("a crash reported by the bridge is evaluated at once, without waiting for the scheduled evaluation", async () => {
    // The schedule paused: a notification can only come from the evaluation the report itself asked for.
    const qstash = new Client({ baseUrl: stack.workerVars.QSTASH_URL!, token: stack.cfg.qstash.token });
    await qstash.schedules.pause({ schedule: "redforge-alerts-evaluate" });
    try {
      const cluster = (await call("POST", "/api/clusters", { name: `alerts-now-${Date.now()}` })).body;
      const inst = await call("POST", "/api/instances", { name: `crashing-${Date.now()}`, clusterId: cluster.id });
      expect(inst.status, JSON.stringify(inst.body)).toBe(201);
      const team: string = inst.body.team;
      const port = (receiver.address() as AddressInfo).port;
      expect((await call("POST", "/api/alerts/channels", { team, name: `receiver-now-${Date.now()}`, kind: "webhook", url: `http://127.0.0.1:${port}/hooks/now` })).status).toBe(201);
      expect((await call("POST", "/api/alerts/rules", { team, name: `down-now-${Date.now()}`, kind: "instance_down", severity: "critical" })).status).toBe(201);
      const report = JSON.stringify({ type: "instance.status", instanceId: inst.body.id, state: "failed", reason: "Node-RED exited (SIGKILL)" });
      const signed = await fetch(`${stack.apiUrl}/api/webhooks/clusters/${cluster.id}`, {
        method: "POST", body: report, headers: { ...(await webhookHeaders(cluster.webhookSecret, report)), "content-type": "application/json" },
      });
      expect(signed.status).toBe(202);
      const got = await eventually(async () => received.find((r) => r.body.includes(inst.body.id)), 120_000);
      expect(JSON.parse(got.body)).toMatchObject({ type: "alert.fired", alert: { kind: "instance_down", subject: inst.body.id } });
    } finally {
      await qstash.schedules.resume({ schedule: "redforge-alerts-evaluate" });
    }
  }, 240_000);
});
