/**
 * Builds the driver the CLI asked for. Drivers are imported lazily so a
 * bridge on an edge box never loads the Kubernetes client, and one on
 * Kubernetes never packs or spawns Node-RED itself.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { DriverKind } from "./cli.ts";
import type { ContextStoreTarget, Driver } from "./drivers/driver.ts";
import type { Logger } from "./log.ts";
import { packNodePackage } from "./nodePackage.ts";

export interface DriverSettings {
  clusterId: string;
  /** The bridge's state dir; each driver keeps its own state in a subdirectory. */
  stateDir: string;
  /** Node package tarball for the instances; packed from flows/node-package when absent. */
  nodePackage?: string;
  mqttUrl?: string;
  /** fsync each held MQTT message the process driver's data plane spools. */
  spoolFsync?: boolean;
  /** How long the process driver's data plane keeps a hold once its bridge is gone (dataplane/lease.ts). */
  holdLeaseMs?: number;
  /** The shared context store both colours of an instance use (docs/agents.md). */
  contextStore?: ContextStoreTarget;
  log: Logger;
}

export async function createDriver(kind: DriverKind, settings: DriverSettings): Promise<Driver> {
  return kind === "kubernetes" ? kubernetesDriver(settings) : processDriver(settings);
}

async function processDriver(s: DriverSettings): Promise<Driver> {
  const nodePackage = await nodePackageFor(s);
  const { ProcessDriver } = await import("./drivers/process/index.ts");
  return new ProcessDriver({
    stateDir: path.join(s.stateDir, "process"),
    nodePackages: [nodePackage],
    ...(s.mqttUrl ? { mqttUrl: s.mqttUrl } : {}), ...(s.spoolFsync ? { spoolFsync: true } : {}),
    ...(s.contextStore ? { contextStore: s.contextStore } : {}), ...(s.holdLeaseMs !== undefined ? { holdLeaseMs: s.holdLeaseMs } : {}),
    log: (instanceId, line) => s.log.info(`process [${instanceId.slice(0, 8)}]: ${line}`),
  });
}

async function nodePackageFor(s: DriverSettings): Promise<string> {
  const nodePackage = s.nodePackage ?? (await packNodePackage(path.join(s.stateDir, "node-package")));
  s.log.info(`instances load the RedForge node package from ${nodePackage}`);
  return nodePackage;
}

async function kubernetesDriver(s: DriverSettings): Promise<Driver> {
  const [{ KubernetesDriver }, { KubeConfig }, { parseStackImages }] = await Promise.all([
    import("./drivers/kubernetes/index.ts"), import("@kubernetes/client-node"), import("./drivers/kubernetes/stacks.ts"),
  ]);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault(); // in-cluster service account, else KUBECONFIG / ~/.kube/config
  const namespace = await kubernetesNamespace();
  s.log.info(`kubernetes: managing instances in namespace ${namespace} (context ${kubeConfig.getCurrentContext() || "in-cluster"})`);
  return new KubernetesDriver({
    kubeConfig, namespace, clusterId: s.clusterId,
    adminToken: await persistentSecret(path.join(s.stateDir, "kubernetes-admin-token")),
    nodePackage: await nodePackageFor(s),
    ...(s.mqttUrl ? { mqttUrl: s.mqttUrl } : {}), ...(s.contextStore ? { contextStore: s.contextStore } : {}),
    // Held MQTT work survives a bridge restart (the fronts run in the bridge on this driver).
    spoolDir: path.join(s.stateDir, "kubernetes-spool"), ...(s.spoolFsync ? { spoolFsync: true } : {}),
    // Pods may reach the bus under another name than the bridge does (in-cluster DNS).
    ...(process.env.REDFORGE_POD_MQTT_URL ? { podMqttUrl: process.env.REDFORGE_POD_MQTT_URL } : {}),
    // One image per stack: "5.0=nodered/node-red:5.0.7,4.1=nodered/node-red:4.1.15" (default: the official images).
    ...(process.env.REDFORGE_STACK_IMAGES ? { stackImages: parseStackImages(process.env.REDFORGE_STACK_IMAGES) } : {}),
    ...(process.env.REDFORGE_SWITCH_SETTLE_MS ? { switchSettleMs: Number(process.env.REDFORGE_SWITCH_SETTLE_MS) } : {}),
    log: (line) => s.log.info(`kubernetes: ${line}`),
  });
}

/** REDFORGE_NAMESPACE, else the namespace the bridge's own pod runs in, else "default". */
async function kubernetesNamespace(): Promise<string> {
  if (process.env.REDFORGE_NAMESPACE) return process.env.REDFORGE_NAMESPACE;
  const own = await fs.readFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").catch(() => "");
  return own.trim() || "default";
}

/**
 * Instances keep the admin token they were created with (in their Secret), so
 * it must survive bridge restarts: generated once, then read back.
 */
async function persistentSecret(file: string): Promise<string> {
  const existing = await fs.readFile(file, "utf8").catch(() => "");
  if (existing.trim()) return existing.trim();
  const secret = randomBytes(32).toString("base64url");
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs.writeFile(file, secret, { mode: 0o600, flag: "wx" }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  return (await fs.readFile(file, "utf8")).trim();
}
