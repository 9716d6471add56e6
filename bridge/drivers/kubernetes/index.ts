/**
 * The `kubernetes` driver: one StatefulSet + Service (+ Secret, ConfigMap) per
 * Node-RED instance, in one namespace, through @kubernetes/client-node.
 * Kubernetes holds all the state; the driver only caches instance id → name
 * and serving colour, and rebuilds both from labels and the front Service's
 * selector after a bridge restart.
 *
 * Blue-green (BlueGreenDriver): green is a second StatefulSet of the other
 * colour cloned from the serving one, with its own Service for the bridge's
 * Admin API calls; the switch moves the front Service's selector. There is no
 * HTTP proxy in the bridge: HTTP is held at the draining gate inside blue, and
 * MQTT work goes through the bridge's MqttFront as with the process driver.
 */
import type { KubeConfig, V1StatefulSet } from "@kubernetes/client-node";
import { BridgeError } from "../../errors.ts";
import { FrontRegistry } from "../../routing/frontRegistry.ts";
import type { MqttRoute } from "../../routing/fronts.ts";
import type { BlueGreenDriver, ContextStoreTarget, Driver, InstanceEndpoints, InstanceHealth, InstanceSpec, InstanceState, StatusListener } from "../driver.ts";
import { AdminApi, serviceAdminUrl, type AdminUrlResolver } from "../nodeRedAdmin.ts";
import { clusterSelector, instanceIdSelector, LABEL, objectNames, otherColor, parseRuntimeId, podSelector, runtimeIdOf, statefulSetName, type Color } from "./labels.ts";
import type { SupportedStack } from "../../../protocol/stacks.ts";
import { imageOf, reportedStacks, stackImages } from "./stacks.ts";
import { buildInstanceManifests, cloneForColor, colorOf, DEFAULT_DATA_SIZE, NODE_RED_PORT, ownedBy, ownerRef, runtimeServiceFor, type Owner } from "./manifests.ts";
import { InstanceObjects } from "./resources.ts";
import { observeInstance } from "./status.ts";

export { FlowsConflictError, type AdminUrlResolver } from "../nodeRedAdmin.ts";
export { KubernetesApiError } from "./resources.ts";

export interface KubernetesDriverOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** One image for every instance (its tag names its stack); prefer `stackImages`. */
  image?: string;
  /** The image of each stack ("5.0" → "nodered/node-red:5.0.7"); default: stacks.ts DEFAULT_STACK_IMAGES. */
  stackImages?: Record<string, string>;
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
  /** The cluster's MQTT bus as the bridge reaches it: each instance's MQTT front (work stream, hold queue) runs here. */
  mqttUrl?: string;
  /**
   * Where the MQTT fronts spool held work (`<spoolDir>/<instance>/hold.spool`, as the process driver's
   * data plane does), so a bridge restart mid-hold loses nothing held; in memory when absent.
   */
  spoolDir?: string;
  /** fsync each spooled record. */
  spoolFsync?: boolean;
  /** The same bus as pods reach it (REDFORGE_MQTT_URL in the pod). Default mqttUrl. */
  podMqttUrl?: string;
  /** The `shared` context store both colours use (pods must reach this URL). */
  contextStore?: ContextStoreTarget;
  /**
   * After the front Service's selector moves, how long blue keeps holding new
   * HTTP requests before it reopens: Endpoints and kube-proxy on every node
   * follow the selector within about a second. Default 1000 ms.
   */
  switchSettleMs?: number;
  /** How long green gets to become ready (image pull, claim, boot). Default 150 s, inside the control plane's 180 s deadline for the prepare step. */
  greenReadyTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The instance has no StatefulSet here: `not_found`, as the process driver says for an instance it never had. */
export class InstanceNotFoundError extends BridgeError {
  constructor(readonly instanceId: string) {
    super("not_found", `instance ${instanceId} has no StatefulSet on this cluster`);
    this.name = "InstanceNotFoundError";
  }
}

export class KubernetesDriver implements Driver, BlueGreenDriver {
  readonly kind = "kubernetes" as const;
  private readonly objects: InstanceObjects;
  private readonly admin: AdminApi;
  private readonly adminUrl: AdminUrlResolver;
  private readonly log: (line: string) => void;
  /** instance id → instance name (the `app.kubernetes.io/instance` label; the blue StatefulSet's name). */
  private readonly names = new Map<string, string>();
  /** instance id → the colour its front Service selects. */
  private readonly serving = new Map<string, Color>();
  /** MQTT fronts only: the front Service routes HTTP. */
  private readonly fronts: FrontRegistry;
  /** `<instance>/<colour>` whose runtime Service this bridge process has applied. */
  private readonly runtimeServices = new Set<string>();
  private readonly listeners: StatusListener[] = [];
  private readonly lastState = new Map<string, InstanceState>();
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(private readonly opts: KubernetesDriverOptions) {
    this.objects = new InstanceObjects(opts.kubeConfig, opts.namespace);
    this.admin = new AdminApi(opts.adminToken, { deployMs: opts.deployTimeoutMs ?? 30_000, probeMs: opts.probeTimeoutMs ?? 3_000 });
    this.adminUrl = opts.adminUrl ?? serviceAdminUrl;
    this.log = opts.log ?? (() => {});
    this.fronts = new FrontRegistry({
      log: (id, line) => this.log(`${id}: ${line}`), ...(opts.mqttUrl ? { mqttUrl: opts.mqttUrl } : {}),
      ...(opts.spoolDir ? { spoolRoot: opts.spoolDir, spoolFsync: opts.spoolFsync ?? false } : {}),
    });
  }

  /**
   * The StatefulSet goes first, at 0 replicas: the others need its uid for
   * their ownerReferences, and no pod should start before its Secret and
   * settings exist (it would sit in CreateContainerConfigError). Then scale to 1.
   * A redelivered create converges on the colour that serves now, keeps a
   * running deployment's green as co-owner of the shared objects, and never rolls green.
   */
  async create(spec: InstanceSpec): Promise<{ endpoints: InstanceEndpoints }> {
    const sets = await this.objects.listStatefulSets(instanceIdSelector(spec.id, this.opts.clusterId));
    const color = sets.length === 1 ? colorOf(sets[0]!) : sets.length > 1 ? await this.servingColorOf(spec.id, spec.name) : (this.opts.color ?? "blue");
    const existing = sets.find((s) => colorOf(s) === color);
    const seeded = !existing?.spec?.template.spec?.containers[0]?.env?.some((e) => e.name === "REDFORGE_SEED_FLOWS" && e.value === "0");
    const m = buildInstanceManifests(spec, {
      namespace: this.opts.namespace,
      clusterId: this.opts.clusterId,
      image: imageOf(stackImages(this.opts), spec.stack),
      dataSize: this.opts.dataSize ?? DEFAULT_DATA_SIZE,
      adminToken: this.opts.adminToken,
      color,
      seedFlows: seeded,
      ...(this.podMqttUrl ? { mqttUrl: this.podMqttUrl } : {}), ...(this.opts.contextStore ? { contextStore: this.opts.contextStore } : {}),
      ...(this.opts.storageClassName ? { storageClassName: this.opts.storageClassName } : {}),
    });
    const owner = await this.objects.applyStatefulSet(m.statefulSet(0), spec.id);
    const owners = [owner, ...sets.filter((s) => colorOf(s) !== color).map(ownerOf)];
    await this.objects.applySecret(ownedBy(m.secret, ...owners), spec.id);
    await this.objects.applyConfigMap(ownedBy(m.configMap, ...owners), spec.id);
    await this.objects.applyService(ownedBy(m.service, ...owners), spec.id);
    await this.objects.applyService(ownedBy(m.runtimeService, owner), spec.id);
    await this.objects.scale(m.names.statefulSet, 1);
    this.names.set(spec.id, spec.name);
    this.serving.set(spec.id, color);
    this.runtimeServices.add(`${spec.id}/${color}`);
    await this.ensureMqttFront(spec.id);
    this.log(`created ${this.opts.namespace}/${m.names.statefulSet} (instance ${spec.id}, ${color})`);
    return { endpoints: this.endpoints(spec.name) };
  }

  async start(instanceId: string): Promise<void> {
    await this.objects.scale(await this.servingSet(instanceId), 1);
  }

  /** Scale to zero keeps the claim, so start brings the same flows and context back. */
  async stop(instanceId: string): Promise<void> {
    await this.objects.scale(await this.servingSet(instanceId), 0);
  }

  async scale(instanceId: string, replicas: number): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0) throw new BridgeError("invalid_args", `replicas must be a non-negative integer, got ${replicas}`);
    await this.objects.scale(await this.servingSet(instanceId), replicas);
  }

  /**
   * The Secret, ConfigMap and Service go with the StatefulSet (ownerReferences).
   * Claims stay (retention policy Retain) unless deleteData; they are found by
   * instance-id label, so data can be deleted even after the StatefulSet is gone.
   */
  async destroy(instanceId: string, opts: { deleteData?: boolean } = {}): Promise<void> {
    // Both colours: a destroy during a deployment takes green too.
    const sets = await this.objects.listStatefulSets(instanceIdSelector(instanceId, this.opts.clusterId));
    for (const sts of sets) await this.objects.deleteStatefulSet(sts.metadata!.name!);
    const claims = opts.deleteData ? await this.objects.deleteClaims(instanceIdSelector(instanceId, this.opts.clusterId)) : [];
    await this.fronts.drop(instanceId);
    this.names.delete(instanceId);
    this.serving.delete(instanceId);
    for (const c of ["blue", "green"]) this.runtimeServices.delete(`${instanceId}/${c}`);
    this.lastState.delete(instanceId);
    const names = sets.map((s) => s.metadata?.name).join(", ");
    this.log(`destroyed instance ${instanceId}${names ? ` (${names})` : " (no StatefulSet left)"}${claims.length ? `; deleted claims ${claims.join(", ")}` : ""}`);
  }

  /**
   * The Service picks one ready pod per connection, so with several replicas a
   * deploy would reach one of them and leave the others on old flows: refused.
   */
  async deployFlows(instanceId: string, flows: unknown[], opts: { rev?: string; type?: "full" | "nodes" | "flows" } = {}): Promise<{ rev: string }> {
    const sts = await this.servingSet(instanceId);
    const replicas = (await this.objects.readStatefulSet(sts))?.spec?.replicas ?? 1;
    if (replicas > 1) throw new BridgeError("unsupported", `${sts} runs ${replicas} replicas; deploying through its Service would reach only one`);
    const name = await this.nameOf(instanceId);
    return this.admin.deployFlows(await this.serviceUrl(name), name, flows, opts);
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
    const color = await this.servingColorOf(instanceId, name);
    const [sts, pods] = await Promise.all([
      this.objects.readStatefulSet(statefulSetName(name, color)),
      this.objects.listPods(instanceIdSelector(instanceId, this.opts.clusterId, color)),
    ]);
    const seen = observeInstance(sts, pods);
    if (seen.state !== "running") return { ...down, state: seen.state, ...(seen.reason ? { error: seen.reason } : {}) };
    const probe = await this.admin.probe(await this.serviceUrl(name));
    return { instanceId, state: "running", checkedAt, ...probe };
  }

  /**
   * Polling, not a watch: two list calls per interval cover every instance of
   * the cluster, survive API-server restarts and expired resourceVersions
   * (410 Gone) without resync logic, and 10 s is well inside the control
   * plane's health-sweep period. A watch would only cut latency.
   */
  /** What the bridge's hello reports: one stack per configured image. */
  supportedStacks(): SupportedStack[] {
    return reportedStacks(stackImages(this.opts));
  }

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
      const byInstance = new Map<string, V1StatefulSet[]>();
      for (const sts of sets) {
        const id = sts.metadata?.labels?.[LABEL.instanceId];
        if (id) byInstance.set(id, [...(byInstance.get(id) ?? []), sts]);
      }
      const seen = new Set(byInstance.keys());
      for (const [id, own] of byInstance) {
        const name = own[0]!.metadata?.labels?.[LABEL.instance];
        if (name) this.names.set(id, name);
        // Only the serving colour speaks for the instance; green's state is the deployment's business.
        const color = own.length === 1 ? colorOf(own[0]!) : await this.servingColorOf(id, name);
        if (own.length === 1) this.serving.set(id, color);
        const sts = own.find((s) => colorOf(s) === color) ?? own[0]!;
        const mine = pods.filter((p) => p.metadata?.labels?.[LABEL.instanceId] === id && (p.metadata?.labels?.[LABEL.color] ?? "blue") === color);
        const { state, reason } = observeInstance(sts, mine);
        this.report(id, state, reason);
        if (state === "running") void this.ensureMqttFront(id).catch((err: unknown) => this.log(`mqtt front for ${id}: ${err instanceof Error ? err.message : String(err)}`));
      }
      for (const id of [...this.lastState.keys()].filter((id) => !seen.has(id))) {
        // Deleted behind the bridge's back (kubectl, a namespace cleanup).
        this.report(id, "unknown", "StatefulSet not found");
        this.lastState.delete(id);
        this.names.delete(id);
        this.serving.delete(id);
      }
    } finally {
      this.polling = false;
    }
  }

  async close(): Promise<void> {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    await this.fronts.close();
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
      await this.admin.uploadNodePackage(await this.serviceUrl(name), this.opts.nodePackage);
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
    const names = new Set(sets.map((s) => s.metadata?.labels?.[LABEL.instance]));
    if (names.size > 1) throw new BridgeError("conflict", `instance ${instanceId} matches StatefulSets of ${names.size} instance names; expected one`);
    const name = sets[0]?.metadata?.labels?.[LABEL.instance];
    if (!name) throw new InstanceNotFoundError(instanceId);
    this.names.set(instanceId, name);
    return name;
  }

  private serviceUrl(serviceName: string): Promise<string> {
    return Promise.resolve(this.adminUrl({ name: serviceName, namespace: this.opts.namespace }));
  }

  private get podMqttUrl(): string | undefined {
    return this.opts.podMqttUrl ?? this.opts.mqttUrl;
  }

  /** The colour the front Service selects (cached; read back from the Service after a bridge restart). */
  private async servingColorOf(instanceId: string, name?: string): Promise<Color> {
    const cached = this.serving.get(instanceId);
    if (cached) return cached;
    const svc = await this.objects.readService(name ?? (await this.nameOf(instanceId)));
    const color: Color = svc?.spec?.selector?.[LABEL.color] === "green" ? "green" : "blue";
    this.serving.set(instanceId, color);
    return color;
  }

  /** The serving colour's StatefulSet name. */
  private async servingSet(instanceId: string): Promise<string> {
    const name = await this.nameOf(instanceId);
    return statefulSetName(name, await this.servingColorOf(instanceId, name));
  }

  private async setsByColor(instanceId: string): Promise<Map<Color, V1StatefulSet>> {
    const sets = await this.objects.listStatefulSets(instanceIdSelector(instanceId, this.opts.clusterId));
    return new Map(sets.map((s) => [colorOf(s), s]));
  }

  /** The instance's MQTT front, started once per bridge process (after a restart, on the first poll that sees it). */
  private async ensureMqttFront(instanceId: string): Promise<void> {
    await this.fronts.ensureMqtt(instanceId, async () => runtimeIdOf(instanceId, await this.servingColorOf(instanceId)));
  }

  // ---- blue-green (BlueGreenDriver) ----

  get adminApi(): AdminApi {
    return this.admin;
  }

  get mqttUrl(): string | undefined {
    return this.opts.mqttUrl;
  }

  /** Reads only (labels, the front Service's selector); applies and connects nothing. */
  async servingOf(instanceId: string): Promise<{ runtimeId: string; base: string }> {
    const name = await this.nameOf(instanceId);
    const color = await this.servingColorOf(instanceId, name);
    const runtimeId = runtimeIdOf(instanceId, color);
    return { runtimeId, base: (await this.runtimeBase(runtimeId))! };
  }

  /**
   * The MQTT front in this bridge process, and the serving colour's runtime
   * Service (instances created before blue-green existed have none yet; the
   * bridge reaches a runtime's Admin API through it).
   */
  async ensureFronts(instanceId: string): Promise<void> {
    const name = await this.nameOf(instanceId);
    const color = await this.servingColorOf(instanceId, name);
    await this.ensureMqttFront(instanceId);
    if (this.runtimeServices.has(`${instanceId}/${color}`)) return;
    const sts = (await this.setsByColor(instanceId)).get(color);
    if (!sts) throw new InstanceNotFoundError(instanceId);
    await this.objects.applyService(ownedBy(runtimeServiceFor(sts, color), ownerOf(sts)), instanceId);
    this.runtimeServices.add(`${instanceId}/${color}`);
  }

  /**
   * Green: the serving StatefulSet cloned under the other colour, made a
   * co-owner of the shared Secret/ConfigMap/front Service (so removing either
   * colour later keeps them), given its own Service, scaled to 1, and ready
   * with the node package installed. Safe to run again (a redelivered prepare).
   */
  async startGreen(instanceId: string, opts: { stack?: string } = {}): Promise<{ runtimeId: string; base: string; stack?: SupportedStack }> {
    // Refused before anything is created: blue is untouched.
    const image = opts.stack ? imageOf(stackImages(this.opts), opts.stack) : undefined;
    const blueColor = parseRuntimeId((await this.servingOf(instanceId)).runtimeId).color;
    const name = await this.nameOf(instanceId);
    const color = otherColor(blueColor);
    const sets = await this.setsByColor(instanceId);
    const serving = sets.get(blueColor)!;
    const green = sets.has(color) ? ownerOf(sets.get(color)!) : await this.objects.applyStatefulSet(cloneForColor(serving, color, instanceId, image), instanceId);
    const names = objectNames(name, color);
    await this.objects.setSharedOwners(names, [ownerRef(ownerOf(serving)), ownerRef(green)]);
    await this.objects.applyService(ownedBy(runtimeServiceFor(serving, color), green), instanceId);
    this.runtimeServices.add(`${instanceId}/${color}`);
    await this.objects.scale(green.name, 1);
    const runtimeId = runtimeIdOf(instanceId, color);
    const base = (await this.runtimeBase(runtimeId))!;
    await this.waitReady(instanceId, color, base);
    if (this.opts.nodePackage) await this.admin.uploadNodePackage(base, this.opts.nodePackage);
    this.log(`green ${green.name} ready for instance ${instanceId}${image ? ` on ${image}` : ""}`);
    const stack = opts.stack ? reportedStacks({ [opts.stack]: image! })[0] : undefined;
    return { runtimeId, base, ...(stack ? { stack } : {}) };
  }

  /** Until the pod is Ready and its Admin API answers; a pod that fails (CrashLoopBackOff, bad image) fails the step at once. */
  private async waitReady(instanceId: string, color: Color, base: string): Promise<void> {
    const name = await this.nameOf(instanceId);
    const deadline = Date.now() + (this.opts.greenReadyTimeoutMs ?? 150_000);
    let last = "not started";
    while (Date.now() < deadline) {
      const [sts, pods] = await Promise.all([
        this.objects.readStatefulSet(statefulSetName(name, color)),
        this.objects.listPods(instanceIdSelector(instanceId, this.opts.clusterId, color)),
      ]);
      const seen = observeInstance(sts, pods);
      if (seen.state === "failed") throw new BridgeError("green_failed", `green for ${instanceId} failed to start: ${seen.reason ?? "unknown reason"}`);
      if (seen.state === "running") {
        const probe = await this.admin.probe(base).catch((err: unknown) => ({ live: false, error: String(err) }));
        if (probe.live) return;
        last = probe.error ?? "Admin API not answering";
      } else last = seen.reason ?? seen.state;
      await sleep(500);
    }
    throw new BridgeError("green_timeout", `green for ${instanceId} not ready within ${this.opts.greenReadyTimeoutMs ?? 150_000} ms (${last})`);
  }

  async runtimeBase(runtimeId: string): Promise<string | undefined> {
    const { instanceId, color } = parseRuntimeId(runtimeId);
    const name = await this.nameOf(instanceId).catch(() => undefined);
    return name ? this.serviceUrl(objectNames(name, color).runtimeService) : undefined;
  }

  async deployFlowsTo(runtimeId: string, flows: unknown[], opts: { rev?: string; type?: "full" | "nodes" | "flows" } = {}): Promise<{ rev: string }> {
    const base = await this.runtimeBase(runtimeId);
    if (!base) throw new BridgeError("not_running", `runtime ${runtimeId} is not on this cluster`);
    return this.admin.deployFlows(base, runtimeId, flows, opts);
  }

  /** No HTTP front in the bridge: the Service is the front door, and blue's gate holds HTTP while it drains. */
  front(): undefined {
    return undefined;
  }

  mqttFront(instanceId: string): MqttRoute | undefined {
    return this.fronts.mqtt(instanceId);
  }

  /**
   * The switch: the front Service's selector moves to `runtimeId`'s colour.
   * New connections go there once Endpoints and kube-proxy follow; the
   * settle time keeps blue holding (not serving) what still reaches it meanwhile.
   */
  async setServing(runtimeId: string): Promise<void> {
    const { instanceId, color } = parseRuntimeId(runtimeId);
    const name = await this.nameOf(instanceId);
    const before = await this.servingColorOf(instanceId, name);
    await this.objects.setServiceSelector(name, podSelector(name, color));
    this.serving.set(instanceId, color);
    await this.fronts.mqtt(instanceId)?.setTarget(runtimeId);
    if (before === color) return;
    await this.endpointsFollow(name, statefulSetName(name, color));
    await sleep(this.opts.switchSettleMs ?? 1_000);
  }

  /**
   * Until the front Service's EndpointSlices list only `sts`'s pods as ready
   * (the endpoints controller has followed the selector; kube-proxy follows
   * the slices, hence the settle time after this). Bounded: a slow controller
   * delays the switch, it does not fail it. A cluster without EndpointSlices skips it.
   */
  private async endpointsFollow(service: string, sts: string, timeoutMs = 10_000): Promise<void> {
    const mine = new RegExp(`^${sts}-\\d+$`);
    const t0 = Date.now();
    for (;;) {
      const slices = await this.objects.listEndpointSlices(service);
      if (!slices.length) return;
      const ready = slices.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false);
      if (ready.length && ready.every((e) => mine.test(e.targetRef?.name ?? ""))) return;
      if (Date.now() - t0 > timeoutMs) {
        this.log(`Service ${service}: EndpointSlices still list ${ready.map((e) => e.targetRef?.name).join(", ") || "no ready endpoint"} after ${timeoutMs} ms; switching anyway`);
        return;
      }
      await sleep(100);
    }
  }

  /**
   * Removes a colour that no longer serves (blue after the rollback window,
   * green after a rollback): the shared objects drop it as owner first, then
   * its StatefulSet goes (its Service with it) and so do its claims, so the
   * colour's next green starts clean.
   */
  async stopRuntime(runtimeId: string): Promise<void> {
    const { instanceId, color } = parseRuntimeId(runtimeId);
    const name = await this.nameOf(instanceId);
    if ((await this.servingColorOf(instanceId, name)) === color) throw new BridgeError("still_serving", `runtime ${runtimeId} still serves ${instanceId}`);
    const sets = await this.setsByColor(instanceId);
    const sts = sets.get(color);
    const remaining = [...sets.entries()].filter(([c]) => c !== color).map(([, s]) => ownerRef(ownerOf(s)));
    if (remaining.length) await this.objects.setSharedOwners(objectNames(name), remaining);
    if (sts) await this.objects.deleteStatefulSet(sts.metadata!.name!);
    this.runtimeServices.delete(`${instanceId}/${color}`);
    const claims = await this.objects.deleteClaims(instanceIdSelector(instanceId, this.opts.clusterId, color));
    this.log(`removed ${color} of instance ${instanceId}${sts ? ` (${sts.metadata!.name})` : ""}${claims.length ? `; claims ${claims.join(", ")}` : ""}`);
  }
}

function ownerOf(sts: V1StatefulSet): Owner {
  return { name: sts.metadata!.name!, uid: sts.metadata!.uid! };
}
