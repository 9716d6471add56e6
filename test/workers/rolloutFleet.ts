/**
 * A cluster whose bridge (the real link and webhook protocol, from inside the
 * Worker test pool) answers every deployment step as a real one would; each
 * instance can be told to fail its smoke test, or to hold its answers until
 * released. Shared by the rollout test files.
 */
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, unique, type TestUser } from "./helpers.ts";

export type Mode = "auto" | "fail-smoke" | "hold";

/** One cluster and its bridge, answering deployment steps for every instance by itself. */
export interface FleetBridge {
  clusterId: string;
  /** Creates a running instance with these labels. */
  /** `lose`: command types whose answers this instance's bridge never sends (a lost answer). */
  instance(labels: Record<string, string>, mode?: Mode, opts?: { lose?: string[] }): Promise<string>;
  setMode(instanceId: string, mode: Mode): Promise<void>;
  commands: any[];
}

export async function fleetBridge(admin: TestUser): Promise<FleetBridge> {
  const cluster = (await api("POST", "/api/clusters", { token: admin.token, body: { name: unique("ro") } })).body;
  const report = async (body: unknown) => {
    const text = JSON.stringify(body);
    const headers = await webhookHeaders(cluster.webhookSecret, text);
    const res = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...headers, "Content-Type": "application/json" } });
    expect(res.status).toBe(202);
  };
  const tokenBody = JSON.stringify({ bridgeVersion: "test" });
  const tokenRes = await api("POST", `/api/clusters/${cluster.id}/token`, { raw: tokenBody, headers: { ...(await webhookHeaders(cluster.webhookSecret, tokenBody)), "Content-Type": "application/json" } });
  const res = await SELF.fetch(`http://redforge.test/api/clusters/${cluster.id}/link`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${tokenRes.body.token}` } });
  const ws = res.webSocket!;
  const modes = new Map<string, Mode>();
  const lose = new Map<string, Set<string>>();
  const held: any[] = [];
  const commands: any[] = [];
  const seen = new Set<string>();
  const resultOf = (cmd: any): { ok: boolean; result: Record<string, unknown> } => {
    const id = cmd.instanceId as string;
    switch (cmd.type) {
      case "instance.create": return { ok: true, result: { state: "running", endpoints: { admin: `http://${id}.simulated.invalid/` } } };
      case "deployment.prepare": return { ok: true, result: { blue: `blue-${id}`, green: `green-${id}`, greenAdmin: "http://127.0.0.1:1" } };
      case "flows.deploy": return { ok: true, result: { runtime: `green-${id}`, rev: "rev-2" } };
      case "smoke.run":
        if (cmd.args.kind === "verify" && modes.get(id) === "fail-smoke") {
          return { ok: true, result: { verdict: "failed", checks: [{ name: "sample POST /work", outcome: "failed", detail: "scripted failure" }] } };
        }
        return { ok: true, result: { verdict: "passed", checks: [], errorRate: 0 } };
      case "gate.set": return { ok: true, result: { inFlight: 0, heldHttp: 0, heldMqtt: 0 } };
      case "route.switch": return { ok: true, result: { replayed: 0 } };
      case "deployment.cleanup": return { ok: true, result: {} };
      case "deployment.rollback": return { ok: true, result: { serving: `blue-${id}`, replayed: 0 } };
      default: return { ok: true, result: {} };
    }
  };
  const answer = async (cmd: any) => {
    const { ok, result } = resultOf(cmd);
    await report(ok ? { type: "command.result", commandId: cmd.id, status: "ok", result } : { type: "command.result", commandId: cmd.id, status: "error", error: { code: "driver_error", message: "failed" } });
  };
  ws.addEventListener("message", (e) => {
    const frame = JSON.parse(e.data as string);
    if (frame.kind !== "command" || seen.has(frame.command.id)) return;
    seen.add(frame.command.id);
    commands.push(frame.command);
    if (lose.get(frame.command.instanceId)?.has(frame.command.type)) return;
    if (modes.get(frame.command.instanceId) === "hold") held.push(frame.command);
    else void answer(frame.command).catch(() => {});
  });
  ws.accept();
  return {
    clusterId: cluster.id, commands,
    async instance(labels, mode = "auto", opts = {}) {
      const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("ro"), clusterId: cluster.id, labels } })).body;
      modes.set(inst.id, mode);
      if (opts.lose) lose.set(inst.id, new Set(opts.lose));
      await report({ type: "instance.status", instanceId: inst.id, state: "running" });
      return inst.id;
    },
    async setMode(instanceId, mode) {
      modes.set(instanceId, mode);
      if (mode === "hold") return;
      // Only this instance's held commands: the others stay held.
      const mine = held.filter((c) => c.instanceId === instanceId);
      held.splice(0, held.length, ...held.filter((c) => c.instanceId !== instanceId));
      for (const cmd of mine) await answer(cmd);
    },
  };
}

