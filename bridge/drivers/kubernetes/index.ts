/**
 * The `kubernetes` driver: one StatefulSet + Service (+ Secret, ConfigMap) per
 * Node-RED instance, in one namespace, through @kubernetes/client-node.
 * Kubernetes holds all the state; the driver only caches instance id → name,
 * and rebuilds that from labels after a bridge restart.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Driver, InstanceEndpoints, InstanceHealth, InstanceSpec, InstanceState, StatusListener } from "../driver.ts";
import { AdminApi, serviceAdminUrl, type AdminUrlResolver } from "../nodeRedAdmin.ts";
import { clusterSelector, instanceIdSelector, LABEL, type Color } from "./labels.ts";
import { buildInstanceManifests, DEFAULT_DATA_SIZE, DEFAULT_IMAGE, NODE_RED_PORT, ownedBy } from "./manifests.ts";
import { InstanceObjects } from "./resources.ts";
import { observeInstance } from "./status.ts";

export { FlowsConflictError, type AdminUrlResolver } from "../nodeRedAdmin.ts";
export { KubernetesApiError } from "./resources.ts";

export interface KubernetesDriverOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Default nodered/node-red:4.1.15 (Node-RED 4.1.15, as the process driver runs). */
  image?: string;
  clusterId: string;
  storageClassName?: string;
  /** Size of each instance's /data claim (Kubernetes quantity). Default 1Gi. */
  dataSize?: string;
  /** Bearer token every instance's Admin API accepts (see settings.ts). */
  adminToken: string;
  log?: (line: string) => void;
  /** Default: the instance's Service, `http://<name>.<namespace>.svc:1880`. */
  adminUrl?: AdminUrlResolver;
  /** Only for the endpoints reported to the control plane. Default cluster.local. */
  clusterDomain?: string;
  /** Pod colour label for new instances; blue-green switches the Service selector between colours. */
  color?: Color;
  /** Tarball of the RedForge node package, installed (POST /nodes) each time an instance becomes ready. */
  nodePackage?: string;
  /** How often onStatus listeners get fresh state. Default 10 s. */
  statusPollMs?: number;
  deployTimeoutMs?: number;
  probeTimeoutMs?: number;
}

export class InstanceNotFoundError extends Error {
  constructor(readonly instanceId: string) {
    super(`instance ${instanceId} has no StatefulSet on this cluster`);
    this.name = "InstanceNotFoundError";
  }
}

export class KubernetesDriver implements Driver {
  readonly kind = "kubernetes" as const;
  private readonly objects: InstanceObjects;
  private readonly admin: AdminApi;
  private readonly adminUrl: AdminUrlResolver;
  private readonly log: (line: string) => void;
  private readonly names = new Map<string, string>();
  private readonly listeners: StatusListener[] = [];
  private readonly lastState = new Map<string, InstanceState>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly opts: KubernetesDriverOptions) {
    this.objects = new InstanceObjects(opts.kubeConfig, opts.namespace);
    this.admin = new AdminApi(opts.adminToken, { deployMs: opts.deployTimeoutMs ?? 30_000, probeMs: opts.probeTimeoutMs ?? 3_000 });
    this.adminUrl = opts.adminUrl ?? serviceAdminUrl;
    this.log = opts.log ?? (() => {});
  }

  /**
   * The StatefulSet goes first, at 0 replicas: the others need its uid for
   * their ownerReferences, and no pod should start before its Secret and
   * settings exist (it would sit in CreateContainerConfigError). Then scale to 1.
   */
  async create(spec: InstanceSpec): Promise<{ endpoints: InstanceEndpoints }> {
    const m = buildInstanceManifests(spec, {
      namespace: this.opts.namespace,
      clusterId: this.opts.clusterId,
      image: this.opts.image ?? DEFAULT_IMAGE,
      dataSize: this.opts.dataSize ?? DEFAULT_DATA_SIZE,
      adminToken: this.opts.adminToken,
      color: this.opts.color ?? "blue",
      ...(this.opts.storageClassName ? { storageClassName: this.opts.storageClassName } : {}),
    });
    const owner = await this.objects.applyStatefulSet(m.statefulSet(0), spec.id);
    await this.objects.applySecret(ownedBy(m.secret, owner), spec.id);
    await this.objects.applyConfigMap(ownedBy(m.configMap, owner), spec.id);
    await this.objects.applyService(ownedBy(m.service, owner), spec.id);
    await this.objects.scale(spec.name, 1);
    this.names.set(spec.id, spec.name);
    this.log(`created ${this.opts.namespace}/${spec.name} (instance ${spec.id})`);
    return { endpoints: this.endpoints(spec.name) };
  }

  async start(instanceId: string): Promise<void> {
    await this.objects.scale(await this.nameOf(instanceId), 1);
  }

  /** Scale to zero keeps the claim, so start brings the same flows and context back. */
  async stop(instanceId: string): Promise<void> {
    await this.objects.scale(await this.nameOf(instanceId), 0);
  }

  async scale(instanceId: string, replicas: number): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`replicas must be a non-negative integer, got ${replicas}`);
    await this.objects.scale(await this.nameOf(instanceId), replicas);
  }

  /**
   * The Secret, ConfigMap and Service go with the StatefulSet (ownerReferences).
   * Claims stay (retention policy Retain) unless deleteData; they are found by
   * instance-id label, so data can be deleted even after the StatefulSet is gone.
   */
  async destroy(instanceId: string, opts: { deleteData?: boolean } = {}): Promise<void> {
    const name = await this.nameOf(instanceId).catch((err: unknown) => {
      if (err instanceof InstanceNotFoundError) return undefined;
      throw err;
    });
    if (name) await this.objects.deleteStatefulSet(name);
    const claims = opts.deleteData ? await this.objects.deleteClaims(instanceIdSelector(instanceId, this.opts.clusterId)) : [];
    this.names.delete(instanceId);
    this.lastState.delete(instanceId);
    this.log(`destroyed instance ${instanceId}${name ? ` (${name})` : " (no StatefulSet left)"}${claims.length ? `; deleted claims ${claims.join(", ")}` : ""}`);
  }

  /**
   * The Service picks one ready pod per connection, so with several replicas a
   * deploy would reach one of them and leave the others on old flows: refused.
   */
  async deployFlows(instanceId: string, flows: unknown[], opts: { rev?: string; type?: "full" | "nodes" | "flows" } = {}): Promise<{ rev: string }> {
    const name = await this.nameOf(instanceId);
    const replicas = (await this.objects.readStatefulSet(name))?.spec?.replicas ?? 1;
    if (replicas > 1) throw new Error(`${name} runs ${replicas} replicas; deploying through its Service would reach only one`);
    return this.admin.deployFlows(this.adminUrl({ name, namespace: this.opts.namespace }), name, flows, opts);
  }

  async health(instanceId: string): Promise<InstanceHealth> {
    const checkedAt = new Date().toISOString();
    const down = { instanceId, live: false, ready: false, missingNodeTypes: [], checkedAt };
    let name: string;
    try {
      name = await this.nameOf(instanceId);
    } catch (err) {
      if (err instanceof InstanceNotFoundError) return { ...down, state: "unknown", error: err.message };
      throw err;
    }
    const [sts, pods] = await Promise.all([
      this.objects.readStatefulSet(name),
      this.objects.listPods(instanceIdSelector(instanceId, this.opts.clusterId)),
    ]);
    const seen = observeInstance(sts, pods);
    if (seen.state !== "running") return { ...down, state: seen.state, ...(seen.reason ? { error: seen.reason } : {}) };
    const probe = await this.admin.probe(this.adminUrl({ name, namespace: this.opts.namespace }));
    return { instanceId, state: "running", checkedAt, ...probe };
  }

  /**
   * Polling, not a watch: two list calls per interval cover every instance of
   * the cluster, survive API-server restarts and expired resourceVersions
   * (410 Gone) without resync logic, and 10 s is well inside the control
   * plane's health-sweep period. A watch would only cut latency.
   */
  onStatus(listener: StatusListener): void {
    this.listeners.push(listener);
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => {
      this.refreshStatus().catch((err: unknown) => this.log(`status poll failed: ${err instanceof Error ? err.message : String(err)}`));
    }, this.opts.statusPollMs ?? 10_000);
    this.pollTimer.unref();
  }

  /** One poll: tells listeners about every instance whose state changed since the last one. */
  async refreshStatus(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const selector = clusterSelector(this.opts.clusterId);
      const [sets, pods] = await Promise.all([this.objects.listStatefulSets(selector), this.objects.listPods(selector)]);
      const seen = new Set<string>();
      for (const sts of sets) {
        const id = sts.metadata?.labels?.[LABEL.instanceId];
        if (!id) continue;
        seen.add(id);
        if (sts.metadata?.name) this.names.set(id, sts.metadata.name);
        const { state, reason } = observeInstance(sts, pods.filter((p) => p.metadata?.labels?.[LABEL.instanceId] === id));
        this.report(id, state, reason);
      }
      for (const id of [...this.lastState.keys()].filter((id) => !seen.has(id))) {
        // Deleted behind the bridge's back (kubectl, a namespace cleanup).
        this.report(id, "unknown", "StatefulSet not found");
        this.lastState.delete(id);
        this.names.delete(id);
      }
    } finally {
      this.polling = false;
    }
  }

  async close(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private report(id: string, state: InstanceState, reason?: string): void {
    if (this.lastState.get(id) === state) return;
    this.lastState.set(id, state);
    if (state === "running") void this.installNodePackage(id);
    for (const l of this.listeners) l(id, state, reason);
  }

  /**
   * The official image does not carry the RedForge node package, so it is
   * uploaded once a pod is ready (no restart needed); a pod that restarts
   * keeps it in /data, and "already loaded" counts as done.
   */
  private async installNodePackage(id: string): Promise<void> {
    const name = this.names.get(id);
    if (!this.opts.nodePackage || !name) return;
    try {
      await this.admin.uploadNodePackage(this.adminUrl({ name, namespace: this.opts.namespace }), this.opts.nodePackage);
    } catch (err) {
      this.log(`node package not installed into ${name} yet (retried when it next becomes ready): ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private endpoints(name: string): InstanceEndpoints {
    // The Service is also the stable front door: blue-green moves its selector, not its name.
    const url = `http://${name}.${this.opts.namespace}.svc.${this.opts.clusterDomain ?? "cluster.local"}:${NODE_RED_PORT}`;
    return { admin: url, front: url };
  }

  private async nameOf(instanceId: string): Promise<string> {
    const cached = this.names.get(instanceId);
    if (cached) return cached;
    const sets = await this.objects.listStatefulSets(instanceIdSelector(instanceId, this.opts.clusterId));
    if (sets.length > 1) throw new Error(`instance ${instanceId} matches ${sets.length} StatefulSets; expected one`);
    const name = sets[0]?.metadata?.name;
    if (!name) throw new InstanceNotFoundError(instanceId);
    this.names.set(instanceId, name);
    return name;
  }
}
