/**
 * The full local stack (wrangler dev, Postgres, MQTT) with one registered
 * cluster and its bridge on the process driver, as the end-to-end suites
 * that deploy real Node-RED need it; `close()` undoes all of it.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startBridge, type BridgeOptions, type RunningBridge } from "../../bridge/main.ts";
import { lineLogger } from "../../bridge/log.ts";
import { adminClient, type ApiClient } from "./adminClient.ts";
import { startTestStack, type TestStack } from "./testStack.ts";

export interface FleetStack {
  stack: TestStack;
  bridge: RunningBridge;
  api: ApiClient;
  token: string;
  clusterId: string;
  /** The MQTT broker as mqtt.js options take it. */
  broker: { host: string; port: number };
  close(): Promise<void>;
}

/** `bridgeOptions`: extra options for the bridge (e.g. a context store). */
export async function startFleetStack(clusterName: string, bridgeOptions: Partial<BridgeOptions> = {}): Promise<FleetStack> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), `redforge-${clusterName}-`));
  const stack = await startTestStack({ worker: "wrangler" });
  const u = new URL(stack.mqttUrl);
  const { token, api } = await adminClient(stack);
  const cluster = (await api.POST("/api/clusters", { body: { name: clusterName } })).data!;
  const bridge = await startBridge({
    clusterId: cluster.id, api: stack.apiUrl, secret: cluster.webhookSecret, driver: "process", mqttUrl: stack.mqttUrl,
    stateDir: path.join(tmp, "bridge"), log: lineLogger(process.env.STACK_LOG ? (l) => console.log(`[bridge] ${l}`) : () => {}),
    ...bridgeOptions,
  });
  return {
    stack, bridge, api, token, clusterId: cluster.id, broker: { host: u.hostname, port: Number(u.port || 1883) },
    async close() {
      await bridge.close();
      await stack.stop();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}
