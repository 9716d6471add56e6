/**
 * The API calls behind one instance, on top of @kubernetes/client-node.
 * Creation is idempotent (the bridge may redeliver a command): POST, and on
 * 409 read the existing object, check it is this instance's, and bring it to
 * the desired state.
 */
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1EndpointSlice,
  type V1OwnerReference,
  type V1Pod,
  type V1Secret,
  type V1Service,
  type V1StatefulSet,
} from "@kubernetes/client-node";
import { BridgeError } from "../../errors.ts";
import { LABEL } from "./labels.ts";

/**
 * The generated patch methods default to `application/json-patch+json` (the
 * first type in the OpenAPI list), which wants an array of operations. Every
 * patch here is a JSON merge patch, so say so.
 */
const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export function statusCode(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/**
 * An API failure with the server's Status reason and message instead of the
 * client's header dump: `kubernetes_error`, with the HTTP status beside it.
 */
export class KubernetesApiError extends BridgeError {
  constructor(action: string, readonly status: number | undefined, detail: string) {
    super("kubernetes_error", `kubernetes: ${action} failed${status ? ` (${status})` : ""}: ${detail}`, { status });
    this.name = "KubernetesApiError";
  }
}

function apiError(action: string, err: unknown): Error {
  if (!(err instanceof ApiException)) return err instanceof Error ? err : new Error(String(err));
  let detail = String(err.body ?? "");
  try {
    const status = JSON.parse(detail) as { reason?: string; message?: string };
    detail = [status.reason, status.message].filter(Boolean).join(": ") || detail;
  } catch {
    // Not a Status object (a proxy's HTML error page, say): keep the raw body.
  }
  return new KubernetesApiError(action, err.code, detail);
}

async function call<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw apiError(action, err);
  }
}

/** 404 → undefined: for reads and deletes whose target may already be gone. */
async function unlessMissing<T>(action: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw apiError(action, err);
  }
}

export class InstanceObjects {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly discovery: DiscoveryV1Api;

  constructor(kubeConfig: KubeConfig, readonly namespace: string) {
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  }

  private async apply<T extends KubernetesObject>(
    kind: string,
    desired: T,
    instanceId: string,
    ops: { create(): Promise<T>; read(): Promise<T>; update(existing: T): Promise<T> },
  ): Promise<T> {
    const ref = `${kind} ${this.namespace}/${desired.metadata?.name}`;
    try {
      return await ops.create();
    } catch (err) {
      if (statusCode(err) !== 409) throw apiError(`create ${ref}`, err);
    }
    const existing = await call(`read ${ref}`, ops.read);
    const owner = existing.metadata?.labels?.[LABEL.instanceId];
    if (owner !== instanceId) {
      throw new BridgeError("conflict", `${ref} already exists and belongs to ${owner ? `instance ${owner}` : "something RedForge did not create"}`);
    }
    return call(`update ${ref}`, () => ops.update(existing));
  }

  /**
   * On 409 the StatefulSet is merge-patched, not replaced: selector,
   * serviceName and volumeClaimTemplates are immutable, and replicas belong to
   * start/stop/scale, so only labels, the pod template and the claim retention
   * policy are brought up to date.
   */
  async applyStatefulSet(desired: V1StatefulSet, instanceId: string): Promise<{ name: string; uid: string }> {
    const name = desired.metadata!.name!;
    const namespace = this.namespace;
    const sts = await this.apply("StatefulSet", desired, instanceId, {
      create: () => this.apps.createNamespacedStatefulSet({ namespace, body: desired }),
      read: () => this.apps.readNamespacedStatefulSet({ name, namespace }),
      update: () =>
        this.apps.patchNamespacedStatefulSet(
          {
            name,
            namespace,
            body: {
              metadata: { labels: desired.metadata?.labels },
              spec: { template: desired.spec?.template, persistentVolumeClaimRetentionPolicy: desired.spec?.persistentVolumeClaimRetentionPolicy },
            },
          },
          MERGE_PATCH,
        ),
    });
    const uid = sts.metadata?.uid;
    if (!uid) throw new Error(`StatefulSet ${namespace}/${name} came back without a uid`);
    return { name, uid };
  }

  /** Secrets and ConfigMaps are replaced whole, so env keys dropped from the spec disappear. */
  async applySecret(desired: V1Secret, instanceId: string): Promise<V1Secret> {
    const name = desired.metadata!.name!;
    const namespace = this.namespace;
    return this.apply("Secret", desired, instanceId, {
      create: () => this.core.createNamespacedSecret({ namespace, body: desired }),
      read: () => this.core.readNamespacedSecret({ name, namespace }),
      update: (existing) =>
        this.core.replaceNamespacedSecret({ name, namespace, body: { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } } }),
    });
  }

  async applyConfigMap(desired: V1ConfigMap, instanceId: string): Promise<V1ConfigMap> {
    const name = desired.metadata!.name!;
    const namespace = this.namespace;
    return this.apply("ConfigMap", desired, instanceId, {
      create: () => this.core.createNamespacedConfigMap({ namespace, body: desired }),
      read: () => this.core.readNamespacedConfigMap({ name, namespace }),
      update: (existing) =>
        this.core.replaceNamespacedConfigMap({ name, namespace, body: { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } } }),
    });
  }

  /**
   * On 409 the selector is left alone: once the Service exists, its selector is
   * the blue/green routing switch and a redelivered create must not flip it back.
   * clusterIP is server-assigned and immutable, which rules out a replace.
   */
  async applyService(desired: V1Service, instanceId: string): Promise<V1Service> {
    const name = desired.metadata!.name!;
    const namespace = this.namespace;
    return this.apply("Service", desired, instanceId, {
      create: () => this.core.createNamespacedService({ namespace, body: desired }),
      read: () => this.core.readNamespacedService({ name, namespace }),
      update: () =>
        this.core.patchNamespacedService(
          {
            name,
            namespace,
            body: {
              metadata: { labels: desired.metadata?.labels, ownerReferences: desired.metadata?.ownerReferences },
              spec: { type: desired.spec?.type, ports: desired.spec?.ports },
            },
          },
          MERGE_PATCH,
        ),
    });
  }

  async readService(name: string): Promise<V1Service | undefined> {
    return unlessMissing(`read Service ${this.namespace}/${name}`, () => this.core.readNamespacedService({ name, namespace: this.namespace }));
  }

  /** A Service's EndpointSlices: the endpoints controller's view of its selector ([] where the API serves none). */
  async listEndpointSlices(service: string): Promise<V1EndpointSlice[]> {
    const list = await unlessMissing(`list EndpointSlices of Service ${this.namespace}/${service}`, () =>
      this.discovery.listNamespacedEndpointSlice({ namespace: this.namespace, labelSelector: `kubernetes.io/service-name=${service}` }),
    );
    return list?.items ?? [];
  }

  /** The blue-green switch: one merge patch of the front Service's selector. */
  async setServiceSelector(name: string, selector: Record<string, string>): Promise<void> {
    await call(`switch Service ${this.namespace}/${name}`, () =>
      this.core.patchNamespacedService({ name, namespace: this.namespace, body: { spec: { selector } } }, MERGE_PATCH),
    );
  }

  /**
   * Replaces the ownerReferences of the objects both colours share (a merge
   * patch replaces the list whole). A missing object is skipped: it is
   * re-created by the next create.
   */
  async setSharedOwners(names: { secret: string; configMap: string; service: string }, refs: V1OwnerReference[]): Promise<void> {
    const namespace = this.namespace;
    const body = { metadata: { ownerReferences: refs } };
    await Promise.all([
      unlessMissing(`own Secret ${namespace}/${names.secret}`, () => this.core.patchNamespacedSecret({ name: names.secret, namespace, body }, MERGE_PATCH)),
      unlessMissing(`own ConfigMap ${namespace}/${names.configMap}`, () => this.core.patchNamespacedConfigMap({ name: names.configMap, namespace, body }, MERGE_PATCH)),
      unlessMissing(`own Service ${namespace}/${names.service}`, () => this.core.patchNamespacedService({ name: names.service, namespace, body }, MERGE_PATCH)),
    ]);
  }

  /** Through the scale subresource: RBAC can grant replicas without granting the pod template. */
  async scale(name: string, replicas: number): Promise<void> {
    await call(`scale StatefulSet ${this.namespace}/${name}`, () =>
      this.apps.patchNamespacedStatefulSetScale({ name, namespace: this.namespace, body: { spec: { replicas } } }, MERGE_PATCH),
    );
  }

  async readStatefulSet(name: string): Promise<V1StatefulSet | undefined> {
    return unlessMissing(`read StatefulSet ${this.namespace}/${name}`, () => this.apps.readNamespacedStatefulSet({ name, namespace: this.namespace }));
  }

  async listStatefulSets(labelSelector: string): Promise<V1StatefulSet[]> {
    const list = await call(`list StatefulSets ${labelSelector}`, () => this.apps.listNamespacedStatefulSet({ namespace: this.namespace, labelSelector }));
    return list.items;
  }

  async listPods(labelSelector: string): Promise<V1Pod[]> {
    const list = await call(`list Pods ${labelSelector}`, () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector }));
    return list.items;
  }

  /**
   * Background propagation: the StatefulSet goes at once and the garbage
   * collector removes its pods and the objects it owns. Foreground would keep
   * the StatefulSet (and its name) around until every pod has terminated,
   * so an immediate re-create would conflict. Returns false if it was already gone.
   */
  async deleteStatefulSet(name: string): Promise<boolean> {
    const res = await unlessMissing(`delete StatefulSet ${this.namespace}/${name}`, () =>
      this.apps.deleteNamespacedStatefulSet({ name, namespace: this.namespace, propagationPolicy: "Background" }),
    );
    return res !== undefined;
  }

  /** PVCs are protected while a pod still mounts them: Kubernetes finishes the delete once the pod is gone. */
  async deleteClaims(labelSelector: string): Promise<string[]> {
    const list = await call(`list PersistentVolumeClaims ${labelSelector}`, () =>
      this.core.listNamespacedPersistentVolumeClaim({ namespace: this.namespace, labelSelector }),
    );
    const deleted: string[] = [];
    for (const pvc of list.items) {
      const name = pvc.metadata?.name;
      if (!name) continue;
      const res = await unlessMissing(`delete PersistentVolumeClaim ${this.namespace}/${name}`, () =>
        this.core.deleteNamespacedPersistentVolumeClaim({ name, namespace: this.namespace }),
      );
      if (res !== undefined) deleted.push(name);
    }
    return deleted;
  }
}
