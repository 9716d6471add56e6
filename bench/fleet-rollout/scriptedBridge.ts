/**
 * A bridge that speaks the real protocol and simulates the cluster: it opens
 * the command channel (/api/clusters/:id/link with a signed token request),
 * acknowledges each command ("received") and answers it at once with a signed
 * `command.result` webhook, as the bridge would after a driver that takes no
 * time. So every deployment step is a full control-plane round trip
 * (ClusterLink → bridge → webhook → DeploymentRun → ClusterLink) and nothing
 * else: the bench measures the control plane, not Node-RED.
 * The simulated driver (bridge/drivers/simulated.ts) has no blue-green
 * runtime to drive the bridge's deploy handlers, hence this stand-in.
 */
import WebSocket from "ws";
import { webhookHeaders } from "../../protocol/webhooks.ts";

export interface ScriptedBridge {
  /** Commands answered so far, by type. */
  answered: Map<string, number>;
  /** Times the link dropped and was opened again. */
  readonly reconnects: number;
  close(): void;
}

function resultOf(cmd: { type: string; instanceId?: string; args: Record<string, unknown> }): Record<string, unknown> {
  const id = cmd.instanceId ?? "none";
  switch (cmd.type) {
    case "instance.create": return { state: "running", endpoints: { admin: `http://${id}.simulated.invalid/` } };
    case "deployment.prepare": return { blue: `blue-${id}`, green: `green-${id}`, greenAdmin: `http://green-${id}.simulated.invalid/` };
    case "flows.deploy": return { runtime: `green-${id}`, rev: "rev-2" };
    case "smoke.run": return { verdict: "passed", checks: [], errorRate: 0 };
    case "gate.set": return { inFlight: 0, heldHttp: 0, heldMqtt: 0 };
    case "route.switch": return { replayed: 0 };
    case "deployment.rollback": return { serving: `blue-${id}`, replayed: 0 };
    case "health.report": return { instances: 0 };
    default: return {};
  }
}

export async function scriptedBridge(apiUrl: string, clusterId: string, secret: string): Promise<ScriptedBridge> {
  /** Signed POST, retried as the bridge's reporter retries (a loaded Worker drops connections or answers 503). */
  const post = async (path: string, body: unknown): Promise<any> => {
    const text = JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      try {
        // A fresh webhook-id each attempt is fine: the first delivery either did not arrive or was refused.
        const res = await fetch(`${apiUrl}${path}`, { method: "POST", body: text, headers: { ...(await webhookHeaders(secret, text)), "Content-Type": "application/json" } });
        if (res.status < 300) return res.json();
        if (res.status < 500 || attempt >= 8) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      } catch (err) {
        if (attempt >= 8 || (err as Error).message.startsWith(path)) throw err;
      }
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  };
  const answered = new Map<string, number>();
  const seen = new Set<string>();
  let closed = false;
  let ws: WebSocket;
  const onMessage = (socket: WebSocket) => (data: WebSocket.RawData) => {
    const frame = JSON.parse(String(data));
    if (frame.kind !== "command") return;
    const cmd = frame.command;
    socket.send(JSON.stringify({ kind: "received", commandId: cmd.id }));
    if (seen.has(cmd.id)) return; // redelivered: already answered (the bridge deduplicates by id too)
    seen.add(cmd.id);
    void post(`/api/webhooks/clusters/${clusterId}`, { type: "command.result", commandId: cmd.id, status: "ok", result: resultOf(cmd) })
      .then(() => answered.set(cmd.type, (answered.get(cmd.type) ?? 0) + 1))
      .catch((err) => { seen.delete(cmd.id); console.error(`[bridge] ${cmd.type}: ${(err as Error).message}`); });
  };
  /** Opens the link; as the real bridge, it reconnects when the link drops (a restarted Worker closes every socket). */
  const connect = async (): Promise<void> => {
    const { token } = await post(`/api/clusters/${clusterId}/token`, { bridgeVersion: "bench" });
    const socket = new WebSocket(`${apiUrl.replace(/^http/, "ws")}/api/clusters/${clusterId}/link`, { headers: { Authorization: `Bearer ${token}` } });
    await new Promise<void>((resolve, reject) => { socket.once("open", () => resolve()); socket.once("error", reject); });
    socket.send(JSON.stringify({ kind: "hello", bridgeVersion: "bench", driver: "process" }));
    socket.on("message", onMessage(socket));
    socket.on("error", () => {});
    socket.once("close", () => {
      if (closed) return;
      reconnects++;
      console.error(`[bridge] link closed; reconnecting`);
      const retry = async (attempt: number): Promise<void> => {
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * attempt)));
        if (closed) return;
        await connect().catch(() => retry(attempt + 1));
      };
      void retry(1);
    });
    ws = socket;
  };
  let reconnects = 0;
  await connect();
  return { answered, get reconnects() { return reconnects; }, close: () => { closed = true; ws.close(); } };
}
