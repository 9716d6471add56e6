/**
 * Pure builders for the Kubernetes objects behind one Node-RED instance:
 * Secret, ConfigMap (settings.js + seed flows), StatefulSet, Service. No I/O,
 * so every field the driver sends can be checked by a unit test.
 */
import { createHash } from "node:crypto";
import type { V1ConfigMap, V1OwnerReference, V1Probe, V1ResourceRequirements, V1Secret, V1Service, V1StatefulSet } from "@kubernetes/client-node";
import type { ContextStoreTarget, InstanceResources, InstanceSpec } from "../driver.ts";
import { ENV_CONTEXT_TOKEN, ENV_CONTEXT_URL } from "../settingsCommon.ts";
import { CONTEXT_STORE_FILE, contextStoreSource } from "../sharedContextModule.ts";
import { assertValidInstance, instanceLabels, LABEL, objectNames, podSelector, runtimeIdOf, type Color, type ObjectNames } from "./labels.ts";
import { ENV_ADMIN_TOKEN, ENV_CREDENTIAL_SECRET, ENV_SEED_FLOWS, renderSettings } from "./settings.ts";
import { BridgeError } from "../../errors.ts";

export const NODE_RED_PORT = 1880;
export const DEFAULT_IMAGE = "nodered/node-red:4.1.15";
export const DEFAULT_DATA_SIZE = "1Gi";
/** The official image's entrypoint runs `red.js --userDir /data`. */
export const DATA_DIR = "/data";
export const SEED_DIR = "/etc/redforge";
/** uid/gid of the `node-red` user in the official image; the PVC must be writable by it. */
export const NODE_RED_UID = 1000;
export const CONFIG_HASH_ANNOTATION = "redforge.io/config-hash";
/** A ConfigMap holds at most 1 MiB; leave room for settings.js and metadata. */
const MAX_SEED_FLOWS_BYTES = 900 * 1024;

export interface ManifestOptions {
  namespace: string;
  clusterId: string;
  image: string;
  dataSize: string;
  storageClassName?: string;
  adminToken: string;
  color: Color;
  /** The cluster's MQTT bus as pods reach it (gate control, hold queue, work stream, AI audit). */
  mqttUrl?: string;
  /** false for green: it starts with no flows (they come with the deployment), not the seed. Default true. */
  seedFlows?: boolean;
  /** The `shared` context store both colours use (docs/agents.md). */
  contextStore?: ContextStoreTarget;
}

export interface InstanceManifests {
  names: ObjectNames;
  labels: Record<string, string>;
  secret: V1Secret;
  configMap: V1ConfigMap;
  /** The front Service (shared by both colours; its selector is the blue-green switch). */
  service: V1Service;
  /** This colour's own Service: how the bridge reaches its Admin API whichever colour serves. */
  runtimeService: V1Service;
  statefulSet(replicas: number): V1StatefulSet;
}

export function buildInstanceManifests(spec: InstanceSpec, opts: ManifestOptions): InstanceManifests {
  assertValidInstance(spec, opts.clusterId, [ENV_CREDENTIAL_SECRET, ENV_ADMIN_TOKEN, ENV_SEED_FLOWS, "REDFORGE_INSTANCE_ID", "REDFORGE_RUNTIME_ID", "REDFORGE_MQTT_URL"]);
  const names = objectNames(spec.name, opts.color);
  const labels = instanceLabels(spec, opts.clusterId);
  const meta = (name: string) => ({ name, namespace: opts.namespace, labels: { ...labels } });

  const secret: V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(names.secret),
    type: "Opaque",
    stringData: {
      ...spec.env, [ENV_CREDENTIAL_SECRET]: spec.credentialSecret, [ENV_ADMIN_TOKEN]: opts.adminToken,
      ...(opts.contextStore ? { [ENV_CONTEXT_TOKEN]: opts.contextStore.token } : {}),
    },
  };

  const flowsJson = JSON.stringify(spec.flows);
  if (Buffer.byteLength(flowsJson) > MAX_SEED_FLOWS_BYTES) {
    throw new BridgeError("invalid_args", `initial flows are ${Buffer.byteLength(flowsJson)} bytes; a ConfigMap seed allows ${MAX_SEED_FLOWS_BYTES}: create with fewer flows and deploy the rest through the Admin API`);
  }
  const configMap: V1ConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(names.configMap),
    data: {
      "settings.js": renderSettings({ userDir: DATA_DIR, seedDir: SEED_DIR, port: NODE_RED_PORT }),
      "flows.json": flowsJson,
      ...(opts.contextStore ? { [CONTEXT_STORE_FILE]: contextStoreSource() } : {}),
    },
  };

  const selector = podSelector(spec.name, opts.color);
  const serviceFor = (name: string): V1Service => serviceManifest(meta(name), selector);
  const service = serviceFor(names.service);
  const runtimeService = serviceFor(names.runtimeService);
  // Plain env (not the Secret): the gate reads which runtime it is and where the bus is.
  const runtimeEnv = [
    { name: "REDFORGE_INSTANCE_ID", value: spec.id },
    { name: "REDFORGE_RUNTIME_ID", value: runtimeIdOf(spec.id, opts.color) },
    ...(opts.mqttUrl ? [{ name: "REDFORGE_MQTT_URL", value: opts.mqttUrl }] : []),
    ...(opts.contextStore ? [{ name: ENV_CONTEXT_URL, value: opts.contextStore.url }] : []),
    ...(opts.seedFlows === false ? [{ name: ENV_SEED_FLOWS, value: "0" }] : []),
  ];

  // envFrom and subPath mounts are read once at container start: a changed
  // Secret or settings.js only takes effect if the pod template changes too.
  const configHash = createHash("sha256").update(JSON.stringify([secret.stringData, configMap.data])).digest("hex").slice(0, 16);

  const statefulSet = (replicas: number): V1StatefulSet => ({
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: meta(names.statefulSet),
    spec: {
      replicas,
      serviceName: names.runtimeService,
      selector: { matchLabels: { ...selector } },
      // Claims outlive the StatefulSet; destroy({deleteData}) removes them explicitly.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
      template: {
        metadata: { labels: { ...labels, ...selector }, annotations: { [CONFIG_HASH_ANNOTATION]: configHash } },
        spec: {
          // Node-RED never calls the Kubernetes API; don't hand flows a token.
          automountServiceAccountToken: false,
          // Service links put <SVC>_PORT vars for every Service in the namespace
          // into the env: with hundreds of instances that is thousands of vars.
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          securityContext: {
            runAsUser: NODE_RED_UID,
            runAsGroup: NODE_RED_UID,
            runAsNonRoot: true,
            // A fresh volume is root-owned; without fsGroup Node-RED cannot write flows.json.
            fsGroup: NODE_RED_UID,
            fsGroupChangePolicy: "OnRootMismatch",
            // With the container settings below, this passes the "restricted" Pod Security Standard.
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: "node-red",
              image: opts.image,
              ports: [{ name: "http", containerPort: NODE_RED_PORT, protocol: "TCP" }],
              envFrom: [{ secretRef: { name: names.secret } }],
              env: runtimeEnv,
              ...resourceRequirements(spec.resources),
              volumeMounts: [
                { name: names.dataClaim, mountPath: DATA_DIR },
                // Node-RED reads <userDir>/settings.js; a subPath file mount puts ours
                // there without depending on how the image's entrypoint passes args.
                { name: "settings", mountPath: `${DATA_DIR}/settings.js`, subPath: "settings.js", readOnly: true },
                { name: "settings", mountPath: SEED_DIR, readOnly: true },
              ],
              ...probes(),
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
            },
          ],
          volumes: [{ name: "settings", configMap: { name: names.configMap } }],
        },
      },
      volumeClaimTemplates: [
        {
          apiVersion: "v1",
          kind: "PersistentVolumeClaim",
          metadata: { name: names.dataClaim, labels: { ...labels } },
          spec: {
            accessModes: ["ReadWriteOnce"],
            resources: { requests: { storage: opts.dataSize } },
            ...(opts.storageClassName ? { storageClassName: opts.storageClassName } : {}),
          },
        },
      ],
    },
  });

  return { names, labels, secret, configMap, service, runtimeService, statefulSet };
}

/**
 * Requests and limits are both the spec's values: equal requests and limits
 * give the pod Guaranteed QoS, so a busy node evicts it last.
 */
function resourceRequirements(r: InstanceResources): { resources?: V1ResourceRequirements } {
  const q: Record<string, string> = {};
  if (r.cpu) q.cpu = r.cpu;
  if (r.memory) q.memory = r.memory;
  return Object.keys(q).length ? { resources: { requests: { ...q }, limits: { ...q } } } : {};
}

/**
 * All probes hit `GET /` on 1880: Node-RED answers 503 there until its runtime
 * has started and 200 after, without authentication. /healthz is served by
 * the RedForge node package from inside the flows, so it is missing until
 * flows are deployed — and flows are deployed through this Service, which has
 * no endpoints while the pod is unready. /healthz is checked by health() instead.
 */
function probes(): { startupProbe: V1Probe; readinessProbe: V1Probe; livenessProbe: V1Probe } {
  const httpGet = { path: "/", port: "http" };
  return {
    // Up to 5 minutes for a first start on a slow node before liveness takes over.
    startupProbe: { httpGet, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 60 },
    readinessProbe: { httpGet, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
    // Lenient: a function node can block the event loop for a while; a restart
    // loses in-flight messages, so only restart a runtime that stays unresponsive.
    livenessProbe: { httpGet, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
  };
}

export interface Owner {
  name: string;
  uid: string;
}

export const ownerRef = (owner: Owner): V1OwnerReference => ({ apiVersion: "apps/v1", kind: "StatefulSet", name: owner.name, uid: owner.uid });

/**
 * Makes `obj` a dependent of the StatefulSet(s): the garbage collector deletes
 * it once every owner is gone. The shared objects (Secret, ConfigMap, front
 * Service) name both colours while a deployment runs, so deleting one colour keeps them.
 */
export function ownedBy<T extends { metadata?: { ownerReferences?: V1OwnerReference[] } }>(obj: T, ...owners: Owner[]): T {
  return { ...obj, metadata: { ...obj.metadata, ownerReferences: owners.map(ownerRef) } };
}

/**
 * Green for a blue-green deployment: a clone of the serving StatefulSet (same
 * image unless `image` is given, resources, Secret, settings, claim size) under the other colour, at 0
 * replicas, as its own runtime that starts with no flows (they come with the deployment).
 */
export function cloneForColor(serving: V1StatefulSet, color: Color, instanceId: string, image?: string): V1StatefulSet {
  const name = serving.metadata?.labels?.[LABEL.instance];
  if (!name) throw new Error(`StatefulSet ${serving.metadata?.name} has no ${LABEL.instance} label`);
  const names = objectNames(name, color);
  const src = structuredClone(serving.spec!);
  const selector = podSelector(name, color);
  const env = (src.template.spec?.containers[0]?.env ?? []).filter((e) => e.name !== "REDFORGE_RUNTIME_ID" && e.name !== ENV_SEED_FLOWS);
  env.push({ name: "REDFORGE_RUNTIME_ID", value: runtimeIdOf(instanceId, color) }, { name: ENV_SEED_FLOWS, value: "0" });
  if (!env.some((e) => e.name === "REDFORGE_INSTANCE_ID")) env.push({ name: "REDFORGE_INSTANCE_ID", value: instanceId });
  // A runtime upgrade: green runs the target stack's image, everything else as blue.
  const containers = (src.template.spec?.containers ?? []).map((c, i) => (i === 0 ? { ...c, env, ...(image ? { image } : {}) } : c));
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: names.statefulSet, namespace: serving.metadata?.namespace, labels: { ...serving.metadata?.labels } },
    spec: {
      ...src,
      replicas: 0,
      serviceName: names.runtimeService,
      selector: { matchLabels: { ...selector } },
      template: { ...src.template, metadata: { ...src.template.metadata, labels: { ...src.template.metadata?.labels, ...selector } }, spec: { ...src.template.spec!, containers } },
    },
  };
}

/** A colour's own Service (Admin API access for the bridge), built from its StatefulSet's labels. */
export function runtimeServiceFor(sts: V1StatefulSet, color: Color): V1Service {
  const name = sts.metadata!.labels![LABEL.instance]!;
  return serviceManifest({ name: objectNames(name, color).runtimeService, namespace: sts.metadata?.namespace, labels: { ...sts.metadata?.labels } }, podSelector(name, color));
}

function serviceManifest(metadata: V1Service["metadata"], selector: Record<string, string>): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata,
    spec: {
      type: "ClusterIP",
      selector: { ...selector },
      ports: [{ name: "http", port: NODE_RED_PORT, targetPort: "http", protocol: "TCP", appProtocol: "http" }],
    },
  };
}

export function colorOf(sts: V1StatefulSet): Color {
  return sts.spec?.selector?.matchLabels?.[LABEL.color] === "green" ? "green" : "blue";
}
