/**
 * The kubernetes driver with every pod a REAL Node-RED process: FakeKubeApi
 * holds the objects, the fake kubelet (test/harness/fakeKubelet.ts) runs the
 * StatefulSet controller, starts one Node-RED per pod with the ConfigMap,
 * Secret and claim the manifests describe, and stands in for each Service
 * with a TCP proxy to a ready pod. What a user would see: the seed flows run,
 * a deploy through the Service survives stop/start on the same claim, and
 * destroy leaves no process (nor, with deleteData, any data) behind.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InstanceState } from "../../bridge/drivers/driver.ts";
import { KubernetesDriver } from "../../bridge/drivers/kubernetes/index.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import { eventually } from "../harness/eventually.ts";
import { FakeKubeApi } from "../harness/fakeKubeApi.ts";
import { startFakeKubelet, type FakeKubelet } from "../harness/fakeKubelet.ts";

const NS = "redforge";
const ADMIN_TOKEN = "k8s-pods-admin-token";
const NAME = "pods-orders";
const ID = "inst-pods-0001";
const POD = `${NAME}-0`;
const CLAIM = `data-${NAME}-0`;
const BOOT_MS = 60_000;
const log = process.env.K8S_PODS_LOG ? (line: string) => console.log(line) : undefined;

const SEED = [
  { id: "seed-tab", type: "tab", label: "Seed" },
  { id: "seed-inject", type: "inject", z: "seed-tab", name: "seed tick", repeat: "", once: false, wires: [["seed-debug"]] },
  { id: "seed-debug", type: "debug", z: "seed-tab", name: "seed out", wires: [] },
];
const DEPLOYED = [
  { id: "dep-tab", type: "tab", label: "Deployed" },
  { id: "dep-inject", type: "inject", z: "dep-tab", name: "deployed tick", repeat: "", once: false, wires: [["dep-debug"]] },
  { id: "dep-debug", type: "debug", z: "dep-tab", name: "deployed out", wires: [] },
];

let tmp: string;
let api: FakeKubeApi;
let kubelet: FakeKubelet;
let driver: KubernetesDriver;
const states: InstanceState[] = [];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-k8s-pods-"));
  api = await FakeKubeApi.start();
  kubelet = await startFakeKubelet(api, { namespace: NS, dir: path.join(tmp, "kubelet"), ...(log ? { log } : {}) });
  driver = new KubernetesDriver({
    kubeConfig: api.kubeConfig(NS), namespace: NS, clusterId: "cluster-k8s-pods", adminToken: ADMIN_TOKEN,
    adminUrl: kubelet.adminUrl, statusPollMs: 200, nodePackage: await packNodePackage(path.join(tmp, "pkg")),
    ...(log ? { log } : {}),
  });
  driver.onStatus((id, state) => { if (id === ID) states.push(state); });
}, 120_000);

afterAll(async () => {
  await driver?.close();
  await kubelet?.close();
  await api?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** The flows Node-RED runs, read through the instance's Service as the bridge would. */
async function flowsViaService(token = ADMIN_TOKEN): Promise<{ status: number; flows?: Array<{ id: string; type: string }> }> {
  const res = await fetch(`${await kubelet.serviceUrl(NAME)}/flows`, { headers: { Authorization: `Bearer ${token}`, "Node-RED-API-Version": "v2" } });
  if (!res.ok) {
    await res.arrayBuffer();
    return { status: res.status };
  }
  return { status: res.status, flows: ((await res.json()) as { flows: Array<{ id: string; type: string }> }).flows };
}

const ids = (flows: Array<{ id: string }> | undefined) => (flows ?? []).map((n) => n.id).sort();

/** The pid of the Node-RED the kubelet started for the pod: its cwd is the claim's directory (Node-RED retitles itself, so args won't do). */
async function nodeRedPid(): Promise<number> {
  const userDir = await fs.realpath(path.join(tmp, "kubelet", "claims", CLAIM));
  for (const entry of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cwd = await fs.readlink(`/proc/${entry}/cwd`).catch(() => undefined);
    if (cwd === userDir) return Number(entry);
  }
  throw new Error(`no process runs in ${userDir}`);
}

async function untilRunning(): Promise<void> {
  await eventually(async () => {
    const h = await driver.health(ID);
    return h.state === "running" && h.live ? h : undefined;
  }, BOOT_MS);
}

describe("kubernetes driver on real Node-RED pods", { concurrent: false }, () => {
  it("create: the pod runs a real Node-RED, reachable through its Service, running the seed flows from the ConfigMap", async () => {
    await driver.create({ id: ID, name: NAME, flows: SEED, resources: { cpu: "500m", memory: "512Mi" }, env: { PIPELINE: "orders" }, credentialSecret: "k8s-pods-credential-secret" });
    await untilRunning();

    expect(kubelet.running()).toEqual([POD]);
    expect(kubelet.podPort(POD)).toEqual(expect.any(Number));
    const pod = api.get("pods", NS, POD)!;
    expect(pod.status.phase).toBe("Running");
    expect(pod.status.podIP).toBe("127.0.0.1");
    expect(pod.status.conditions).toContainEqual({ type: "Ready", status: "True" });
    expect(api.get("statefulsets", NS, NAME)!.status.readyReplicas).toBe(1);

    const seen = await flowsViaService();
    expect(seen.status).toBe(200);
    expect(ids(seen.flows)).toEqual(ids(SEED));
    // The Admin API behind the Service takes only the token from the instance's Secret.
    expect((await flowsViaService("not-the-token")).status).toBe(401);
    await eventually(async () => (states.includes("running") ? true : undefined), 10_000);
  }, 120_000);

  it("deployFlows through the Service survives a container crash, stop (scale 0: no process) and start (same claim: the deployed flows, not the seed)", async () => {
    const { rev } = await driver.deployFlows(ID, DEPLOYED);
    expect(rev).toEqual(expect.any(String));
    expect(ids((await flowsViaService()).flows)).toEqual(ids(DEPLOYED));

    // The container dies under the pod: the kubelet restarts it on the same claim.
    process.kill(await nodeRedPid(), "SIGKILL");
    await eventually(async () => {
      const pod = api.get("pods", NS, POD);
      const cs = pod?.status?.containerStatuses?.[0];
      return cs?.restartCount === 1 && cs.ready && cs.lastState?.terminated ? true : undefined;
    }, BOOT_MS);
    await untilRunning();
    expect(ids((await flowsViaService()).flows)).toEqual(ids(DEPLOYED));

    await driver.stop(ID);
    await eventually(async () => (kubelet.running().length === 0 ? true : undefined), 30_000);
    expect(api.get("pods", NS, POD)).toBeUndefined();
    expect((await driver.health(ID)).state).toBe("stopped");
    // A Service without ready endpoints: the connection is refused, not answered by a stale pod.
    await expect(flowsViaService()).rejects.toThrow();
    expect(api.get("persistentvolumeclaims", NS, CLAIM)).toBeDefined();
    await eventually(async () => (states.at(-1) === "stopped" ? true : undefined), 10_000);

    await driver.start(ID);
    await untilRunning();
    expect(kubelet.running()).toEqual([POD]);
    expect(kubelet.podPort(POD)).toEqual(expect.any(Number));
    const back = await flowsViaService();
    expect(back.status).toBe(200);
    expect(ids(back.flows)).toEqual(ids(DEPLOYED));
    expect(back.flows!.map((n) => n.id)).not.toContain("seed-tab");
  }, 150_000);

  it("destroy with deleteData: no Node-RED process left, and the claim's data is gone", async () => {
    const claimDir = path.join(tmp, "kubelet", "claims", CLAIM);
    expect(await fs.readFile(path.join(claimDir, "flows.json"), "utf8")).toContain("dep-tab");

    await driver.destroy(ID, { deleteData: true });
    await eventually(async () => (kubelet.running().length === 0 ? true : undefined), 30_000);
    expect(api.list("pods", NS)).toEqual([]);
    expect(api.get("statefulsets", NS, NAME)).toBeUndefined();
    expect(api.get("persistentvolumeclaims", NS, CLAIM)).toBeUndefined();
    expect((await driver.health(ID)).state).toBe("unknown");
    await eventually(async () => ((await fs.stat(claimDir).catch(() => undefined)) ? undefined : true), 10_000);
    await expect(flowsViaService()).rejects.toThrow();
  }, 60_000);
});
