/**
 * Object names, labels and selectors for one Node-RED instance on Kubernetes.
 * Every object the driver creates carries the same labels, so the bridge can
 * find an instance again after a restart from nothing but its id.
 */
import type { InstanceSpec } from "../driver.ts";
import { BridgeError } from "../../errors.ts";

export const LABEL = {
  name: "app.kubernetes.io/name",
  instance: "app.kubernetes.io/instance",
  managedBy: "app.kubernetes.io/managed-by",
  instanceId: "redforge.io/instance-id",
  clusterId: "redforge.io/cluster-id",
  color: "redforge.io/color",
} as const;

export const MANAGED_BY = "redforge";

export type Color = "blue" | "green";

export interface ObjectNames {
  /** The StatefulSet of one colour: blue keeps the instance name (as before blue-green), green is `<name>-green`. */
  statefulSet: string;
  /** The front Service: the stable name traffic uses; blue-green moves its selector between colours. */
  service: string;
  /** A Service per colour for the bridge's Admin API calls (green must be reachable before it serves). */
  runtimeService: string;
  secret: string;
  configMap: string;
  /** volumeClaimTemplate name; the controller names claims `data-<name>-<ordinal>`. */
  dataClaim: string;
}

export function objectNames(name: string, color: Color = "blue"): ObjectNames {
  return {
    statefulSet: statefulSetName(name, color), service: name, runtimeService: `${name}-${color}`,
    secret: `${name}-redforge`, configMap: `${name}-settings`, dataClaim: "data",
  };
}

export function statefulSetName(name: string, color: Color): string {
  return color === "blue" ? name : `${name}-green`;
}

export const otherColor = (c: Color): Color => (c === "blue" ? "green" : "blue");

/**
 * The gate's runtime id (REDFORGE_RUNTIME_ID; names its MQTT control/active
 * topics): blue is the instance id, as a process-driver slot a is.
 */
export function runtimeIdOf(instanceId: string, color: Color): string {
  return color === "blue" ? instanceId : `${instanceId}.green`;
}

export function parseRuntimeId(runtimeId: string): { instanceId: string; color: Color } {
  return runtimeId.endsWith(".green") ? { instanceId: runtimeId.slice(0, -".green".length), color: "green" } : { instanceId: runtimeId, color: "blue" };
}

export function instanceLabels(spec: Pick<InstanceSpec, "id" | "name">, clusterId: string): Record<string, string> {
  return {
    [LABEL.name]: "node-red",
    [LABEL.instance]: spec.name,
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.instanceId]: spec.id,
    [LABEL.clusterId]: clusterId,
  };
}

/**
 * The pod selector of both the StatefulSet and the Service. The colour is part
 * of it so a green StatefulSet for the same instance never overlaps blue's
 * selector, and so blue-green can move the Service by rewriting one label.
 */
export function podSelector(name: string, color: Color): Record<string, string> {
  return { [LABEL.instance]: name, [LABEL.color]: color };
}

/** Label selector (list query) for everything belonging to one instance id on this cluster (one colour if given). */
export function instanceIdSelector(instanceId: string, clusterId: string, color?: Color): string {
  return `${LABEL.managedBy}=${MANAGED_BY},${LABEL.clusterId}=${clusterId},${LABEL.instanceId}=${instanceId}${color ? `,${LABEL.color}=${color}` : ""}`;
}

/** Label selector for every instance this bridge manages (one list call per status poll). */
export function clusterSelector(clusterId: string): string {
  return `${LABEL.managedBy}=${MANAGED_BY},${LABEL.clusterId}=${clusterId}`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The StatefulSet controller labels each pod with
 * `controller-revision-hash: <name>-<10-char hash>`, a label value capped at 63
 * characters, so a StatefulSet name longer than 52 never gets pods; green's
 * StatefulSet adds "-green" (6) to the instance name.
 */
export const MAX_NAME_LENGTH = 46;

export function assertValidInstance(spec: Pick<InstanceSpec, "id" | "name" | "env">, clusterId: string, reservedEnv: readonly string[]): void {
  if (!DNS_LABEL.test(spec.name) || spec.name.length > MAX_NAME_LENGTH) {
    throw new BridgeError("invalid_args", `instance name "${spec.name}" must be a DNS-1123 label of at most ${MAX_NAME_LENGTH} characters`);
  }
  for (const [what, value] of [["instance id", spec.id], ["cluster id", clusterId]] as const) {
    if (!LABEL_VALUE.test(value) || value.length > 63) throw new BridgeError("invalid_args", `${what} "${value}" is not a valid Kubernetes label value`);
  }
  for (const key of Object.keys(spec.env)) {
    // envFrom silently skips keys that are not valid variable names (only an Event says so).
    if (!ENV_NAME.test(key)) throw new BridgeError("invalid_args", `env var name "${key}" is not a valid variable name`);
    if (reservedEnv.includes(key)) throw new BridgeError("invalid_args", `env var "${key}" is reserved by RedForge`);
  }
}
