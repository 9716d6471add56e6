/**
 * Shapes the fake Kubernetes API server answers with: resource table, Status
 * objects for errors, the Scale view of a StatefulSet, label selectors, and
 * the API server's own rewrite of Secret stringData.
 */
import { clone } from "./jsonPatch.ts";

export type KubeObject = { apiVersion?: string; kind?: string; metadata: Record<string, any>; spec?: any; status?: any; [k: string]: any };

export const RESOURCES = {
  statefulsets: { group: "apps", prefix: "apis/apps/v1", apiVersion: "apps/v1", kind: "StatefulSet" },
  services: { group: "", prefix: "api/v1", apiVersion: "v1", kind: "Service" },
  secrets: { group: "", prefix: "api/v1", apiVersion: "v1", kind: "Secret" },
  configmaps: { group: "", prefix: "api/v1", apiVersion: "v1", kind: "ConfigMap" },
  persistentvolumeclaims: { group: "", prefix: "api/v1", apiVersion: "v1", kind: "PersistentVolumeClaim" },
  pods: { group: "", prefix: "api/v1", apiVersion: "v1", kind: "Pod" },
  endpointslices: { group: "discovery.k8s.io", prefix: "apis/discovery.k8s.io/v1", apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice" },
} as const;
export type Plural = keyof typeof RESOURCES;

export class HttpError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

export function qualified(plural: Plural): string {
  return RESOURCES[plural].group ? `${plural}.${RESOURCES[plural].group}` : plural;
}

export function notFound(plural: Plural, name: string): HttpError {
  return new HttpError(404, "NotFound", `${qualified(plural)} "${name}" not found`, { name, group: RESOURCES[plural].group, kind: plural });
}

export function asObject(body: unknown): KubeObject {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "BadRequest", "the body of the request was not a JSON object");
  const obj = clone(body as KubeObject);
  obj.metadata ??= {};
  return obj;
}

/** What the API server does on write: stringData is write-only and lands base64-encoded in data. */
export function normalize(plural: Plural, obj: KubeObject): void {
  if (plural !== "secrets" || !obj.stringData) return;
  const data: Record<string, string> = { ...(obj.data ?? {}) };
  for (const [k, v] of Object.entries(obj.stringData as Record<string, string>)) data[k] = Buffer.from(v).toString("base64");
  obj.data = data;
  delete obj.stringData;
}

export function scaleOf(sts: KubeObject): unknown {
  const selector = Object.entries(sts.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: { name: sts.metadata.name, namespace: sts.metadata.namespace, uid: sts.metadata.uid, resourceVersion: sts.metadata.resourceVersion },
    spec: { replicas: sts.spec?.replicas ?? 1 },
    status: { replicas: sts.status?.replicas ?? 0, selector },
  };
}

/** Equality-based selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`): all the driver uses. */
export function selectorMatcher(selector?: string): (labels: Record<string, string>) => boolean {
  const terms = (selector ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  return (labels) =>
    terms.every((t) => {
      const ne = t.split("!=");
      if (ne.length === 2) return labels[ne[0]!] !== ne[1];
      const eq = t.split(/==?/);
      if (eq.length === 2) return labels[eq[0]!] === eq[1];
      return t.startsWith("!") ? !(t.slice(1) in labels) : t in labels;
    });
}

export function statusObject(err: HttpError): unknown {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: err.message, reason: err.reason, ...(err.details ? { details: err.details } : {}), code: err.code };
}
