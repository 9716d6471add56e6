/**
 * A fake Kubernetes API server at the HTTP level, on 127.0.0.1: an in-memory
 * store for the namespaced kinds the kubernetes driver uses, the real REST
 * paths, real-shaped Status objects for errors, and a log of every request so
 * tests can assert exactly what a client sent.
 *
 * Faithful where the driver depends on it: 404/409 Status bodies, resourceVersion
 * conflicts on PUT, Secret stringData folded into base64 data, clusterIP kept on
 * update, StatefulSet immutable fields (422), the scale subresource, patch
 * content types (a merge-style body sent as JSON Patch is a 400), background
 * garbage collection through ownerReferences (several owners: kept until the last goes). Not modelled: strategic merge
 * (treated as a JSON merge patch), server-side apply, watches, admission.
 */
import http from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { applyJsonPatch, clone, mergePatch, sameJson, type Json } from "./jsonPatch.ts";
import { simulateStatefulSets } from "./fakeKubeControllers.ts";
import { asObject, HttpError, normalize, notFound, qualified, RESOURCES, scaleOf, selectorMatcher, statusObject, type KubeObject, type Plural } from "./fakeKubeShapes.ts";

export { RESOURCES, type KubeObject, type Plural } from "./fakeKubeShapes.ts";

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
  authorization?: string;
  body?: unknown;
}

/** One RBAC permission a request needs: what a Role rule must grant for it. */
export interface RbacNeed {
  verb: string;
  /** "" for the core group. */
  group: string;
  /** The plural, with "/<subresource>" when it is one (statefulsets/scale). */
  resource: string;
}

const GROUPS: Record<string, string> = { "api/v1": "", "apis/apps/v1": "apps", "apis/discovery.k8s.io/v1": "discovery.k8s.io" };

const PATH = /^\/(api\/v1|apis\/apps\/v1|apis\/discovery\.k8s\.io\/v1)\/namespaces\/([^/]+)\/([a-z]+)(?:\/([^/]+))?(?:\/(scale))?$/;
/** Fields `kubectl`/the API server refuse to change on a StatefulSet. */
const STS_IMMUTABLE = ["selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"] as const;

export class FakeKubeApi {
  /**
   * Every (verb, group, resource) requested with a server's own token, by any
   * FakeKubeApi of this test file (tests start a fresh server each): the RBAC
   * a driver needs, collected across all the scenarios that ran. Not cleared by clearRequests().
   */
  static readonly rbacNeeds = new Map<string, RbacNeed>();
  readonly requests: RecordedRequest[] = [];
  private readonly store = new Map<string, KubeObject>();
  private rv = 1000;
  private ipSeq = 10;

  private constructor(private readonly server: http.Server, readonly url: string, readonly token: string) {}

  static async start(opts: { token?: string } = {}): Promise<FakeKubeApi> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const api = new FakeKubeApi(server, `http://127.0.0.1:${port}`, opts.token ?? "fake-bridge-token");
    server.on("request", (req, res) => void api.handle(req, res));
    return api;
  }

  /** A KubeConfig built the way a bridge builds one from options: cluster, token user, context. */
  kubeConfig(namespace = "default"): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
      users: [{ name: "bridge", token: this.token }],
      contexts: [{ name: "fake", cluster: "fake", user: "bridge", namespace }],
      currentContext: "fake",
    });
    return kc;
  }

  // --- direct store access for tests (not recorded) ---

  get(plural: Plural, namespace: string, name: string): KubeObject | undefined {
    const obj = this.store.get(key(plural, namespace, name));
    return obj && clone(obj);
  }

  list(plural: Plural, namespace: string): KubeObject[] {
    const prefix = `${plural}/${namespace}/`;
    return [...this.store.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => clone(v));
  }

  /** Creates or overwrites an object as a controller would (pods, claims, status). */
  put(plural: Plural, obj: KubeObject): KubeObject {
    const ns = obj.metadata.namespace ?? "default";
    const existing = this.store.get(key(plural, ns, obj.metadata.name));
    const stored = clone(obj);
    stored.apiVersion = RESOURCES[plural].apiVersion;
    stored.kind = RESOURCES[plural].kind;
    stored.metadata = { uid: existing?.metadata.uid ?? randomUUID(), creationTimestamp: new Date().toISOString(), ...stored.metadata, namespace: ns, resourceVersion: this.nextRv() };
    this.store.set(key(plural, ns, obj.metadata.name), stored);
    return clone(stored);
  }

  remove(plural: Plural, namespace: string, name: string): void {
    this.store.delete(key(plural, namespace, name));
  }

  /** What the StatefulSet controller would do: claims and pods for each ordinal below spec.replicas. */
  runStatefulSetController(namespace: string): void {
    simulateStatefulSets(this, namespace);
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // --- HTTP ---

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const raw = await new Promise<string>((resolve) => {
      let s = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (s += c));
      req.on("end", () => resolve(s));
    });
    let body: unknown = undefined;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const rec: RecordedRequest = { method: req.method ?? "GET", path: url.pathname, query: Object.fromEntries(url.searchParams) };
    if (req.headers["content-type"]) rec.contentType = req.headers["content-type"];
    if (req.headers.authorization) rec.authorization = req.headers.authorization;
    if (body !== undefined) rec.body = body;
    this.requests.push(rec);
    const need = rbacNeedOf(rec);
    if (need && rec.authorization === `Bearer ${this.token}`) FakeKubeApi.rbacNeeds.set(`${need.group}|${need.resource}|${need.verb}`, need);

    try {
      if (req.headers.authorization !== `Bearer ${this.token}`) throw new HttpError(401, "Unauthorized", "Unauthorized");
      const { code, payload } = this.route(rec, body);
      send(res, code, payload);
    } catch (err) {
      if (err instanceof HttpError) send(res, err.code, statusObject(err));
      else send(res, 500, statusObject(new HttpError(500, "InternalError", String(err))));
    }
  }

  private route(rec: RecordedRequest, body: unknown): { code: number; payload: unknown } {
    const m = PATH.exec(rec.path);
    const plural = m?.[3] as Plural | undefined;
    if (!m || !plural || !(plural in RESOURCES) || RESOURCES[plural].prefix !== m[1]) {
      throw new HttpError(404, "NotFound", "the server could not find the requested resource");
    }
    const ns = decodeURIComponent(m[2]!);
    const name = m[4] ? decodeURIComponent(m[4]) : undefined;
    const sub = m[5];
    if (sub && plural !== "statefulsets") throw new HttpError(404, "NotFound", "the server could not find the requested resource");

    switch (rec.method) {
      case "GET":
        if (!name) return { code: 200, payload: this.listResponse(plural, ns, rec.query.labelSelector) };
        return { code: 200, payload: sub ? scaleOf(this.mustGet(plural, ns, name)) : this.mustGet(plural, ns, name) };
      case "POST":
        if (name) throw new HttpError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        return { code: 201, payload: this.create(plural, ns, body) };
      case "PUT":
        if (!name || sub) throw new HttpError(405, "MethodNotAllowed", "not supported by the fake");
        return { code: 200, payload: this.replace(plural, ns, name, body) };
      case "PATCH":
        if (!name) throw new HttpError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        return { code: 200, payload: this.patch(plural, ns, name, sub, rec.contentType, body) };
      case "DELETE":
        if (!name || sub) throw new HttpError(405, "MethodNotAllowed", "not supported by the fake");
        return { code: 200, payload: this.delete(plural, ns, name, rec.query.propagationPolicy) };
      default:
        throw new HttpError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
    }
  }

  private listResponse(plural: Plural, ns: string, labelSelector?: string): unknown {
    const match = selectorMatcher(labelSelector);
    return {
      apiVersion: RESOURCES[plural].apiVersion,
      kind: `${RESOURCES[plural].kind}List`,
      metadata: { resourceVersion: String(this.rv) },
      items: this.list(plural, ns).filter((o) => match(o.metadata.labels ?? {})),
    };
  }

  private mustGet(plural: Plural, ns: string, name: string): KubeObject {
    const obj = this.get(plural, ns, name);
    if (!obj) throw notFound(plural, name);
    return obj;
  }

  private create(plural: Plural, ns: string, body: unknown): KubeObject {
    const obj = asObject(body);
    const name = obj.metadata?.name;
    if (typeof name !== "string" || !name) throw new HttpError(422, "Invalid", `${RESOURCES[plural].kind} "" is invalid: metadata.name: Required value: name or generateName is required`);
    if (obj.metadata.namespace && obj.metadata.namespace !== ns) {
      throw new HttpError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    }
    if (this.store.has(key(plural, ns, name))) {
      throw new HttpError(409, "AlreadyExists", `${qualified(plural)} "${name}" already exists`, { name, group: RESOURCES[plural].group, kind: plural });
    }
    normalize(plural, obj);
    if (plural === "services") obj.spec = { ...obj.spec, clusterIP: `10.96.0.${this.ipSeq}`, clusterIPs: [`10.96.0.${this.ipSeq++}`] };
    if (plural === "statefulsets") obj.status = { replicas: 0, availableReplicas: 0, observedGeneration: 1 };
    obj.metadata = { ...obj.metadata, generation: 1 };
    return this.put(plural, { ...obj, metadata: { ...obj.metadata, namespace: ns } });
  }

  private replace(plural: Plural, ns: string, name: string, body: unknown): KubeObject {
    const current = this.mustGet(plural, ns, name);
    const obj = asObject(body);
    if (obj.metadata?.resourceVersion && obj.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new HttpError(409, "Conflict", `Operation cannot be fulfilled on ${qualified(plural)} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    normalize(plural, obj);
    if (plural === "services") obj.spec = { ...obj.spec, clusterIP: current.spec.clusterIP, clusterIPs: current.spec.clusterIPs };
    return this.write(plural, current, { ...obj, status: current.status });
  }

  private patch(plural: Plural, ns: string, name: string, sub: string | undefined, contentType: string | undefined, body: unknown): unknown {
    const current = this.mustGet(plural, ns, name);
    const target: Json = sub ? (scaleOf(current) as Json) : (current as Json);
    let patched: Json;
    switch (contentType?.split(";")[0]) {
      case "application/merge-patch+json":
      case "application/strategic-merge-patch+json":
        patched = mergePatch(target, body as Json);
        break;
      case "application/json-patch+json":
        if (!Array.isArray(body)) throw new HttpError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
        patched = applyJsonPatch(target, body);
        break;
      default:
        throw new HttpError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
    }
    if (sub) {
      const replicas = (patched as { spec?: { replicas?: unknown } }).spec?.replicas;
      if (typeof replicas !== "number" || replicas < 0) throw new HttpError(422, "Invalid", "spec.replicas: Invalid value");
      return scaleOf(this.write(plural, current, { ...current, spec: { ...current.spec, replicas } }));
    }
    return this.write(plural, current, patched as KubeObject);
  }

  /** Stores an update: identity fields from the current object, immutable-field checks, generation bump on spec change. */
  private write(plural: Plural, current: KubeObject, next: KubeObject): KubeObject {
    if (plural === "statefulsets") {
      for (const f of STS_IMMUTABLE) {
        if (!sameJson(next.spec?.[f], current.spec?.[f])) {
          throw new HttpError(422, "Invalid", `StatefulSet.apps "${current.metadata.name}" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden`);
        }
      }
    }
    const specChanged = !sameJson(next.spec, current.spec);
    const metadata = {
      ...next.metadata,
      name: current.metadata.name,
      namespace: current.metadata.namespace,
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
      generation: (current.metadata.generation ?? 1) + (specChanged ? 1 : 0),
    };
    return this.put(plural, { ...next, metadata });
  }

  private delete(plural: Plural, ns: string, name: string, propagationPolicy?: string): unknown {
    const obj = this.mustGet(plural, ns, name);
    this.store.delete(key(plural, ns, name));
    // The garbage collector: dependents go unless the caller asked to orphan them.
    if (propagationPolicy !== "Orphan") this.collectDependents(ns, obj.metadata.uid);
    return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, group: RESOURCES[plural].group, kind: plural, uid: obj.metadata.uid } };
  }

  /** As the real collector: a dependent with another owner left loses only the dangling reference. */
  private collectDependents(ns: string, uid: string): void {
    for (const plural of Object.keys(RESOURCES) as Plural[]) {
      for (const dep of this.list(plural, ns)) {
        const refs: Array<{ uid?: string }> = dep.metadata.ownerReferences ?? [];
        if (!refs.some((r) => r.uid === uid)) continue;
        const others = refs.filter((r) => r.uid !== uid);
        if (others.some((r) => [...this.store.values()].some((o) => o.metadata.uid === r.uid))) {
          this.put(plural, { ...dep, metadata: { ...dep.metadata, ownerReferences: others } });
          continue;
        }
        this.store.delete(key(plural, ns, dep.metadata.name));
        this.collectDependents(ns, dep.metadata.uid);
      }
    }
  }

  private nextRv(): string {
    return String(++this.rv);
  }
}

function key(plural: string, ns: string, name: string): string {
  return `${plural}/${ns}/${name}`;
}

function send(res: http.ServerResponse, code: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** The verb an API server's authorizer derives from a request (kubernetes.io/docs/reference/access-authn-authz/authorization/#determine-the-request-verb). */
export function rbacNeedOf(rec: Pick<RecordedRequest, "method" | "path" | "query">): RbacNeed | undefined {
  const m = PATH.exec(rec.path);
  if (!m) return undefined;
  const group = GROUPS[m[1]!]!;
  const resource = m[5] ? `${m[3]}/${m[5]}` : m[3]!;
  const named = Boolean(m[4]);
  const verb = rec.method === "GET" ? (named ? "get" : rec.query.watch === "true" || rec.query.watch === "1" ? "watch" : "list")
    : rec.method === "POST" ? "create"
    : rec.method === "PUT" ? "update"
    : rec.method === "PATCH" ? "patch"
    : rec.method === "DELETE" ? (named ? "delete" : "deletecollection")
    : rec.method.toLowerCase();
  return { verb, group, resource };
}
