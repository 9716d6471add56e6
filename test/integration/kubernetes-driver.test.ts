/**
 * The kubernetes driver against a fake API server at the HTTP level: the exact
 * requests (paths, verbs, patch content types) and the objects they leave
 * behind. No real cluster is involved; see docs/kubernetes-driver.md.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import { AppsV1Api, KubeConfig, loadAllYaml } from "@kubernetes/client-node";
import { BridgeError } from "../../bridge/errors.ts";
import { FlowsConflictError, KubernetesDriver, type KubernetesDriverOptions } from "../../bridge/drivers/kubernetes/index.ts";
import type { InstanceSpec, InstanceState } from "../../bridge/drivers/driver.ts";
import { FakeKubeApi, type RecordedRequest } from "../harness/fakeKubeApi.ts";
import { setPodCrashLooping, setPodRunning } from "../harness/fakeKubeControllers.ts";

const NS = "redforge";
const ADMIN_TOKEN = "admin-token-for-tests";
const APPS = `/apis/apps/v1/namespaces/${NS}`;
const CORE = `/api/v1/namespaces/${NS}`;
const MERGE = "application/merge-patch+json";

const spec = (over: Partial<InstanceSpec> = {}): InstanceSpec => ({
  id: "inst-0001",
  name: "orders-blue",
  flows: [{ id: "t1", type: "tab", label: "Orders" }],
  resources: { cpu: "500m", memory: "512Mi" },
  env: { MQTT_URL: "mqtt://mosquitto.redforge.svc:1883", PIPELINE: "orders" },
  credentialSecret: "cred-secret-0001",
  ...over,
});

/** A stand-in Node-RED Admin API that records what reaches it. */
async function startFakeAdmin() {
  const seen: Array<{ method: string; path: string; headers: http.IncomingHttpHeaders; body: unknown }> = [];
  let nextStatus = 200;
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      let body: unknown = raw || undefined;
      try { body = raw ? JSON.parse(raw) : undefined; } catch { /* multipart uploads stay text */ }
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, body });
      const json = (code: number, v: unknown) => { res.writeHead(code, { "Content-Type": "application/json" }); res.end(JSON.stringify(v)); };
      if (req.url === "/healthz") return json(200, { ok: true });
      if (req.headers.authorization !== `Bearer ${ADMIN_TOKEN}`) return json(401, { error: "unauthorized" });
      if (req.method === "POST" && req.url === "/flows") {
        const code = nextStatus;
        nextStatus = 200;
        return code === 409 ? json(409, { code: "version_mismatch", message: "Error" }) : json(200, { rev: "rev-2" });
      }
      if (req.url === "/flows/state") return json(200, { state: "start" });
      if (req.url === "/diagnostics") return json(200, { nodejs: { memoryUsage: { rss: 115_000_000, heapUsed: 41_000_000 } } });
      if (req.url === "/flows") return json(200, { rev: "rev-1", flows: [{ id: "t1", type: "tab" }, { id: "n1", type: "inject" }, { id: "n2", type: "redforge-gate" }] });
      if (req.method === "POST" && req.url === "/nodes") return json(200, { id: "@redforge/node-red-contrib-redforge" });
      if (req.url === "/nodes") return json(200, [{ id: "node-red/inject", types: ["inject"] }]);
      json(404, {});
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, failNextDeployWith: (code: number) => (nextStatus = code), close: () => new Promise<void>((r) => server.close(() => r())) };
}

const verbs = (reqs: RecordedRequest[]) => reqs.map((r) => `${r.method} ${r.path}`);

describe("kubernetes driver (fake API server)", () => {
  let api: FakeKubeApi;
  let admin: Awaited<ReturnType<typeof startFakeAdmin>>;
  const resolved: Array<{ name: string; namespace: string }> = [];
  const newDriver = (over: Partial<KubernetesDriverOptions> = {}) =>
    new KubernetesDriver({
      kubeConfig: api.kubeConfig(NS),
      namespace: NS,
      clusterId: "cluster-a",
      adminToken: ADMIN_TOKEN,
      storageClassName: "fast-ssd",
      adminUrl: (t) => (resolved.push(t), admin.url),
      ...over,
    });

  /** A kubelet stand-in: every pod that exists runs and is ready (clear the interval it returns). */
  const readyKubelet = () => setInterval(() => {
    api.runStatefulSetController(NS);
    for (const pod of api.list("pods", NS)) if (pod.status?.phase !== "Running") setPodRunning(api, NS, pod.metadata.name, true);
    api.runStatefulSetController(NS);
  }, 20);

  beforeEach(async () => {
    api = await FakeKubeApi.start();
    admin = await startFakeAdmin();
    resolved.length = 0;
  });
  afterEach(async () => {
    await api.close();
    await admin.close();
  });

  it("create: StatefulSet at 0 replicas, then its owned Secret, ConfigMap, Services, then scale to 1", async () => {
    const { endpoints } = await newDriver().create(spec());
    const serviceUrl = "http://orders-blue.redforge.svc.cluster.local:1880";
    // The Service is both the admin endpoint and the stable front door blue-green will switch.
    expect(endpoints).toEqual({ admin: serviceUrl, front: serviceUrl });
    expect(verbs(api.requests)).toEqual([
      // Which colours exist already (a redelivered create converges on the serving one).
      `GET ${APPS}/statefulsets`,
      `POST ${APPS}/statefulsets`,
      `POST ${CORE}/secrets`,
      `POST ${CORE}/configmaps`,
      `POST ${CORE}/services`,
      `POST ${CORE}/services`,
      `PATCH ${APPS}/statefulsets/orders-blue/scale`,
    ]);
    expect(api.requests.every((r) => r.authorization === `Bearer ${api.token}`)).toBe(true);
    expect((api.requests[1]!.body as any).spec.replicas).toBe(0);
    expect(api.requests[6]).toMatchObject({ contentType: MERGE, body: { spec: { replicas: 1 } } });
    // Blue's own Service: how the bridge reaches its Admin API whichever colour the front selects.
    expect(api.get("services", NS, "orders-blue-blue")!.spec.selector).toEqual({ "app.kubernetes.io/instance": "orders-blue", "redforge.io/color": "blue" });

    const labels = {
      "app.kubernetes.io/name": "node-red",
      "app.kubernetes.io/instance": "orders-blue",
      "app.kubernetes.io/managed-by": "redforge",
      "redforge.io/instance-id": "inst-0001",
      "redforge.io/cluster-id": "cluster-a",
    };
    const sts = api.get("statefulsets", NS, "orders-blue")!;
    const secret = api.get("secrets", NS, "orders-blue-redforge")!;
    const cm = api.get("configmaps", NS, "orders-blue-settings")!;
    const svc = api.get("services", NS, "orders-blue")!;
    for (const o of [sts, secret, cm, svc]) expect(o.metadata.labels).toEqual(labels);
    const owner = [{ apiVersion: "apps/v1", kind: "StatefulSet", name: "orders-blue", uid: sts.metadata.uid }];
    for (const o of [secret, cm, svc]) expect(o.metadata.ownerReferences).toEqual(owner);
    expect(sts.metadata.ownerReferences).toBeUndefined();

    expect(sts.spec).toMatchObject({
      replicas: 1,
      serviceName: "orders-blue-blue",
      selector: { matchLabels: { "app.kubernetes.io/instance": "orders-blue", "redforge.io/color": "blue" } },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
      volumeClaimTemplates: [
        { metadata: { name: "data", labels }, spec: { accessModes: ["ReadWriteOnce"], storageClassName: "fast-ssd", resources: { requests: { storage: "1Gi" } } } },
      ],
    });
    const pod = sts.spec.template;
    expect(pod.metadata.labels).toEqual({ ...labels, "redforge.io/color": "blue" });
    expect(pod.spec.securityContext).toMatchObject({ runAsUser: 1000, fsGroup: 1000, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.spec).toMatchObject({ automountServiceAccountToken: false, enableServiceLinks: false });
    const [container] = pod.spec.containers;
    expect(container).toMatchObject({
      name: "node-red",
      image: "nodered/node-red:4.1.15",
      ports: [{ name: "http", containerPort: 1880 }],
      envFrom: [{ secretRef: { name: "orders-blue-redforge" } }],
      // Which runtime the gate is (names its MQTT topics); no MQTT bus configured here.
      env: [{ name: "REDFORGE_INSTANCE_ID", value: "inst-0001" }, { name: "REDFORGE_RUNTIME_ID", value: "inst-0001" }],
      resources: { requests: { cpu: "500m", memory: "512Mi" }, limits: { cpu: "500m", memory: "512Mi" } },
      readinessProbe: { httpGet: { path: "/", port: "http" } },
      livenessProbe: { httpGet: { path: "/", port: "http" } },
      startupProbe: { httpGet: { path: "/", port: "http" } },
    });
    expect(container.volumeMounts).toEqual([
      { name: "data", mountPath: "/data" },
      { name: "settings", mountPath: "/data/settings.js", subPath: "settings.js", readOnly: true },
      { name: "settings", mountPath: "/etc/redforge", readOnly: true },
    ]);
    expect(pod.spec.volumes).toEqual([{ name: "settings", configMap: { name: "orders-blue-settings" } }]);

    expect(svc.spec).toMatchObject({
      type: "ClusterIP",
      selector: { "app.kubernetes.io/instance": "orders-blue", "redforge.io/color": "blue" },
      ports: [{ name: "http", port: 1880, targetPort: "http", protocol: "TCP" }],
    });
    const decoded = Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]));
    expect(decoded).toEqual({
      MQTT_URL: "mqtt://mosquitto.redforge.svc:1883",
      PIPELINE: "orders",
      NODE_RED_CREDENTIAL_SECRET: "cred-secret-0001",
      REDFORGE_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    expect(Object.keys(cm.data).sort()).toEqual(["flows.json", "settings.js"]);
    expect(JSON.parse(cm.data["flows.json"])).toEqual(spec().flows);
    // Secrets stay out of the ConfigMap: settings.js reads them from the env.
    expect(cm.data["settings.js"]).not.toContain(ADMIN_TOKEN);
    expect(cm.data["settings.js"]).not.toContain("cred-secret-0001");
  });

  it("create twice is idempotent: 409s become reads and updates, nothing is duplicated or rolled", async () => {
    const driver = newDriver();
    await driver.create(spec());
    const before = { sts: api.get("statefulsets", NS, "orders-blue")!, svc: api.get("services", NS, "orders-blue")! };
    // Blue/green moved the Service meanwhile; a redelivered create must not move it back.
    api.put("services", { ...before.svc, spec: { ...before.svc.spec, selector: { ...before.svc.spec.selector, "redforge.io/color": "green" } } });
    api.clearRequests();

    await newDriver().create(spec());
    expect(api.requests.map((r) => `${r.method} ${r.path} ${r.method === "PATCH" ? r.contentType : ""}`.trim())).toEqual([
      `GET ${APPS}/statefulsets`,
      `POST ${APPS}/statefulsets`,
      `GET ${APPS}/statefulsets/orders-blue`,
      `PATCH ${APPS}/statefulsets/orders-blue ${MERGE}`,
      `POST ${CORE}/secrets`,
      `GET ${CORE}/secrets/orders-blue-redforge`,
      `PUT ${CORE}/secrets/orders-blue-redforge`,
      `POST ${CORE}/configmaps`,
      `GET ${CORE}/configmaps/orders-blue-settings`,
      `PUT ${CORE}/configmaps/orders-blue-settings`,
      `POST ${CORE}/services`,
      `GET ${CORE}/services/orders-blue`,
      `PATCH ${CORE}/services/orders-blue ${MERGE}`,
      `POST ${CORE}/services`,
      `GET ${CORE}/services/orders-blue-blue`,
      `PATCH ${CORE}/services/orders-blue-blue ${MERGE}`,
      `PATCH ${APPS}/statefulsets/orders-blue/scale ${MERGE}`,
    ]);
    const stsPatch = api.requests[3]!.body as any;
    expect(Object.keys(stsPatch.spec).sort()).toEqual(["persistentVolumeClaimRetentionPolicy", "template"]);
    expect(api.requests[6]!.body).toMatchObject({ metadata: { resourceVersion: expect.any(String) } });
    expect((api.requests[12]!.body as any).spec.selector).toBeUndefined();

    for (const kind of ["statefulsets", "secrets", "configmaps"] as const) expect(api.list(kind, NS)).toHaveLength(1);
    expect(api.list("services", NS)).toHaveLength(2);
    const after = { sts: api.get("statefulsets", NS, "orders-blue")!, svc: api.get("services", NS, "orders-blue")! };
    expect(after.sts.metadata.uid).toBe(before.sts.metadata.uid);
    expect(after.sts.metadata.generation).toBe(before.sts.metadata.generation);
    expect(after.svc.spec.clusterIP).toBe(before.svc.spec.clusterIP);
    expect(after.svc.spec.selector["redforge.io/color"]).toBe("green");
  });

  it("a changed spec on re-create replaces the Secret whole and rolls the pod template", async () => {
    await newDriver().create(spec());
    const gen = api.get("statefulsets", NS, "orders-blue")!.metadata.generation;
    await newDriver().create(spec({ env: { PIPELINE: "orders-v2" } }));
    expect(Object.keys(api.get("secrets", NS, "orders-blue-redforge")!.data).sort()).toEqual(["NODE_RED_CREDENTIAL_SECRET", "PIPELINE", "REDFORGE_ADMIN_TOKEN"]);
    expect(api.get("statefulsets", NS, "orders-blue")!.metadata.generation).toBe(gen + 1);
  });

  it("create refuses to take over an object that belongs to another instance", async () => {
    await newDriver().create(spec());
    api.clearRequests();
    await expect(newDriver().create(spec({ id: "inst-0002" }))).rejects.toThrow(/StatefulSet redforge\/orders-blue already exists and belongs to instance inst-0001/);
    expect(verbs(api.requests)).toEqual([`GET ${APPS}/statefulsets`, `POST ${APPS}/statefulsets`, `GET ${APPS}/statefulsets/orders-blue`]);
  });

  it("stop scales to 0 and start to 1 through the scale subresource; a restarted bridge finds the instance by label", async () => {
    await newDriver().create(spec());
    const driver = newDriver();
    api.clearRequests();
    await driver.stop("inst-0001");
    expect(api.get("statefulsets", NS, "orders-blue")!.spec.replicas).toBe(0);
    await driver.start("inst-0001");
    expect(api.get("statefulsets", NS, "orders-blue")!.spec.replicas).toBe(1);
    await driver.scale("inst-0001", 2);
    expect(api.get("statefulsets", NS, "orders-blue")!.spec.replicas).toBe(2);
    expect(api.requests.map((r) => [r.method, r.path, r.query.labelSelector ?? r.contentType, r.body])).toEqual([
      ["GET", `${APPS}/statefulsets`, "app.kubernetes.io/managed-by=redforge,redforge.io/cluster-id=cluster-a,redforge.io/instance-id=inst-0001", undefined],
      // The serving colour: the front Service's selector.
      ["GET", `${CORE}/services/orders-blue`, undefined, undefined],
      ["PATCH", `${APPS}/statefulsets/orders-blue/scale`, MERGE, { spec: { replicas: 0 } }],
      ["PATCH", `${APPS}/statefulsets/orders-blue/scale`, MERGE, { spec: { replicas: 1 } }],
      ["PATCH", `${APPS}/statefulsets/orders-blue/scale`, MERGE, { spec: { replicas: 2 } }],
    ]);
    await expect(driver.scale("inst-0001", -1)).rejects.toThrow(/non-negative integer/);
    await expect(driver.stop("no-such-instance")).rejects.toThrow(/has no StatefulSet/);
  });

  it("the merge-patch content type matters: the client's default (JSON Patch) is refused for the same body", async () => {
    await newDriver().create(spec());
    const apps = api.kubeConfig(NS).makeApiClient(AppsV1Api);
    await expect(apps.patchNamespacedStatefulSetScale({ name: "orders-blue", namespace: NS, body: { spec: { replicas: 0 } } })).rejects.toMatchObject({ code: 400 });
    expect(api.requests.at(-1)!.contentType).toBe("application/json-patch+json");
  });

  it("destroy deletes the StatefulSet (owned objects go with it) and keeps the data claims", async () => {
    const driver = newDriver();
    await driver.create(spec());
    api.runStatefulSetController(NS);
    expect(api.list("persistentvolumeclaims", NS).map((p) => p.metadata.name)).toEqual(["data-orders-blue-0"]);
    api.clearRequests();

    await driver.destroy("inst-0001");
    expect(api.requests.map((r) => [r.method, r.path, r.query])).toEqual([
      ["GET", `${APPS}/statefulsets`, { labelSelector: "app.kubernetes.io/managed-by=redforge,redforge.io/cluster-id=cluster-a,redforge.io/instance-id=inst-0001" }],
      ["DELETE", `${APPS}/statefulsets/orders-blue`, { propagationPolicy: "Background" }],
    ]);
    for (const kind of ["statefulsets", "secrets", "configmaps", "services", "pods"] as const) expect(api.list(kind, NS)).toEqual([]);
    expect(api.list("persistentvolumeclaims", NS)).toHaveLength(1);
  });

  it("destroy with deleteData also deletes this instance's claims, and only those; a second destroy is a no-op", async () => {
    const driver = newDriver();
    await driver.create(spec());
    await driver.create(spec({ id: "inst-0002", name: "billing-blue" }));
    api.runStatefulSetController(NS);
    api.clearRequests();

    await driver.destroy("inst-0001", { deleteData: true });
    expect(api.requests.map((r) => [r.method, r.path, r.query.labelSelector ?? r.query.propagationPolicy])).toEqual([
      ["GET", `${APPS}/statefulsets`, "app.kubernetes.io/managed-by=redforge,redforge.io/cluster-id=cluster-a,redforge.io/instance-id=inst-0001"],
      ["DELETE", `${APPS}/statefulsets/orders-blue`, "Background"],
      ["GET", `${CORE}/persistentvolumeclaims`, "app.kubernetes.io/managed-by=redforge,redforge.io/cluster-id=cluster-a,redforge.io/instance-id=inst-0001"],
      ["DELETE", `${CORE}/persistentvolumeclaims/data-orders-blue-0`, undefined],
    ]);
    expect(api.list("persistentvolumeclaims", NS).map((p) => p.metadata.name)).toEqual(["data-billing-blue-0"]);
    expect(api.list("statefulsets", NS).map((s) => s.metadata.name)).toEqual(["billing-blue"]);

    await expect(driver.destroy("inst-0001", { deleteData: true })).resolves.toBeUndefined();
  });

  it("health: a pod in CrashLoopBackOff is failed with the reason", async () => {
    const driver = newDriver();
    await driver.create(spec());
    api.runStatefulSetController(NS);
    setPodCrashLooping(api, NS, "orders-blue-0", 4);
    api.runStatefulSetController(NS);
    api.clearRequests();

    const h = await driver.health("inst-0001");
    expect(h).toMatchObject({ instanceId: "inst-0001", state: "failed", live: false, ready: false, missingNodeTypes: [] });
    expect(h.error).toBe("orders-blue-0/node-red: CrashLoopBackOff (last exit: Error, code 1): back-off 5m0s restarting failed container=node-red; 4 restarts");
    expect(verbs(api.requests).sort()).toEqual([`GET ${APPS}/statefulsets/orders-blue`, `GET ${CORE}/pods`].sort());
    expect(admin.seen).toEqual([]);
  });

  it("health: readyReplicas=1 is running, with the Admin API probed through the injected URL", async () => {
    const driver = newDriver();
    await driver.create(spec());
    api.runStatefulSetController(NS);
    expect((await driver.health("inst-0001")).state).toBe("starting");
    setPodRunning(api, NS, "orders-blue-0", true);
    api.runStatefulSetController(NS);

    const h = await driver.health("inst-0001");
    expect(h).toMatchObject({
      state: "running", live: true, ready: true, flowsState: "start",
      rssBytes: 115_000_000, heapUsedBytes: 41_000_000, missingNodeTypes: ["redforge-gate"],
    });
    expect(resolved.at(-1)).toEqual({ name: "orders-blue", namespace: NS });
    expect(admin.seen.find((r) => r.path === "/flows")!.headers["node-red-api-version"]).toBe("v2");

    await driver.stop("inst-0001");
    expect((await driver.health("inst-0001")).state).toBe("stopped");
  });

  it("deployFlows posts to the injected Admin API URL with Node-RED-API-Version v2, the rev and the token", async () => {
    const driver = newDriver();
    await driver.create(spec());
    const flows = [{ id: "t1", type: "tab" }, { id: "n1", type: "inject", z: "t1" }];
    await expect(driver.deployFlows("inst-0001", flows, { rev: "rev-1", type: "nodes" })).resolves.toEqual({ rev: "rev-2" });
    // The node types are checked against GET /nodes before anything is deployed.
    expect(admin.seen[0]).toMatchObject({ method: "GET", path: "/nodes" });
    const req = admin.seen.find((r) => r.method === "POST");
    expect(req).toMatchObject({ method: "POST", path: "/flows", body: { rev: "rev-1", flows } });
    expect(req!.headers).toMatchObject({
      "node-red-api-version": "v2",
      "node-red-deployment-type": "nodes",
      authorization: `Bearer ${ADMIN_TOKEN}`,
      "content-type": "application/json",
    });
    expect(resolved).toEqual([{ name: "orders-blue", namespace: NS }]);

    admin.failNextDeployWith(409);
    await expect(driver.deployFlows("inst-0001", flows, { rev: "stale" })).rejects.toBeInstanceOf(FlowsConflictError);

    await driver.scale("inst-0001", 2);
    await expect(driver.deployFlows("inst-0001", flows)).rejects.toThrow(/runs 2 replicas/);
  });

  it("installs the RedForge node package into an instance once it is ready", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-k8s-pkg-"));
    const tarball = path.join(dir, "pkg.tgz");
    await fs.writeFile(tarball, "not really a tarball, the fake only records it");
    const driver = newDriver({ statusPollMs: 60_000, nodePackage: tarball });
    driver.onStatus(() => {});
    await driver.create(spec());
    api.runStatefulSetController(NS);
    await driver.refreshStatus();
    expect(admin.seen.some((r) => r.method === "POST" && r.path === "/nodes")).toBe(false);
    setPodRunning(api, NS, "orders-blue-0", true);
    api.runStatefulSetController(NS);
    await driver.refreshStatus();
    await new Promise((r) => setTimeout(r, 100));
    const upload = admin.seen.find((r) => r.method === "POST" && r.path === "/nodes");
    expect(upload?.headers["content-type"]).toMatch(/^multipart\/form-data/);
    expect(upload?.headers.authorization).toBe(`Bearer ${ADMIN_TOKEN}`);
    await driver.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("onStatus: a poll reports each change once, from two list calls for the whole cluster", async () => {
    const driver = newDriver({ statusPollMs: 60_000 });
    const events: Array<[string, InstanceState, string | undefined]> = [];
    driver.onStatus((id, state, reason) => events.push([id, state, reason]));
    await driver.create(spec());
    api.runStatefulSetController(NS);
    api.clearRequests();

    await driver.refreshStatus();
    expect(api.requests.map((r) => `${r.method} ${r.path}?${r.query.labelSelector}`).sort()).toEqual(
      [`GET ${APPS}/statefulsets?app.kubernetes.io/managed-by=redforge,redforge.io/cluster-id=cluster-a`, `GET ${CORE}/pods?app.kubernetes.io/managed-by=redforge,redforge.io/cluster-id=cluster-a`].sort(),
    );
    setPodRunning(api, NS, "orders-blue-0", true);
    api.runStatefulSetController(NS);
    await driver.refreshStatus();
    await driver.refreshStatus();
    setPodCrashLooping(api, NS, "orders-blue-0", 1);
    await driver.refreshStatus();
    api.remove("statefulsets", NS, "orders-blue");
    await driver.refreshStatus();

    expect(events).toEqual([
      ["inst-0001", "starting", undefined],
      ["inst-0001", "running", undefined],
      ["inst-0001", "failed", expect.stringContaining("CrashLoopBackOff")],
      ["inst-0001", "unknown", "StatefulSet not found"],
    ]);
    await driver.close();
  });
  it("blue-green: green is a clone under the other colour, co-owns the shared objects, and the switch and cleanup leave one colour", async () => {
    const driver = newDriver({ switchSettleMs: 0, statusPollMs: 60_000 });
    const events: Array<[string, InstanceState]> = [];
    driver.onStatus((id, state) => events.push([id, state]));
    await driver.create(spec());
    const kubelet = readyKubelet();
    try {
      const blue = await driver.servingOf("inst-0001");
      expect(blue.runtimeId).toBe("inst-0001");
      const green = await driver.startGreen("inst-0001");
      expect(green.runtimeId).toBe("inst-0001.green");
      // Reached through green's own Service, not the front one.
      expect(resolved.at(-1)).toEqual({ name: "orders-blue-green", namespace: NS });

      const blueSts = api.get("statefulsets", NS, "orders-blue")!;
      const greenSts = api.get("statefulsets", NS, "orders-blue-green")!;
      expect(greenSts.spec.selector.matchLabels).toEqual({ "app.kubernetes.io/instance": "orders-blue", "redforge.io/color": "green" });
      expect(greenSts.spec.serviceName).toBe("orders-blue-green");
      const container = greenSts.spec.template.spec.containers[0];
      // Same image, resources and Secret as blue; its own runtime id; no seed flows.
      expect(container.image).toBe(blueSts.spec.template.spec.containers[0].image);
      expect(container.resources).toEqual(blueSts.spec.template.spec.containers[0].resources);
      expect(container.envFrom).toEqual([{ secretRef: { name: "orders-blue-redforge" } }]);
      expect(container.env).toEqual(expect.arrayContaining([{ name: "REDFORGE_RUNTIME_ID", value: "inst-0001.green" }, { name: "REDFORGE_SEED_FLOWS", value: "0" }]));
      for (const [kind, name] of [["secrets", "orders-blue-redforge"], ["configmaps", "orders-blue-settings"], ["services", "orders-blue"]] as const) {
        expect(api.get(kind, NS, name)!.metadata.ownerReferences.map((r: { uid: string }) => r.uid)).toEqual([blueSts.metadata.uid, greenSts.metadata.uid]);
      }
      // The front still selects blue; a poll reports blue's state only, once.
      expect(api.get("services", NS, "orders-blue")!.spec.selector["redforge.io/color"]).toBe("blue");
      expect(await driver.startGreen("inst-0001")).toEqual(green); // a redelivered prepare converges
      expect(api.list("statefulsets", NS)).toHaveLength(2);
      await driver.refreshStatus();
      expect(events).toEqual([["inst-0001", "running"]]);

      // A create redelivered mid-deployment keeps green as co-owner and does not touch green.
      await newDriver().create(spec());
      expect(api.get("secrets", NS, "orders-blue-redforge")!.metadata.ownerReferences).toHaveLength(2);
      expect(api.get("statefulsets", NS, "orders-blue-green")!.metadata.generation).toBe(greenSts.metadata.generation);

      await driver.setServing(green.runtimeId);
      expect(api.get("services", NS, "orders-blue")!.spec.selector).toEqual({ "app.kubernetes.io/instance": "orders-blue", "redforge.io/color": "green" });
      expect((await driver.servingOf("inst-0001")).runtimeId).toBe("inst-0001.green");
      await expect(driver.stopRuntime(green.runtimeId)).rejects.toMatchObject({ code: "still_serving" });

      // A restarted bridge reads the serving colour back from the Service.
      const restarted = newDriver();
      expect((await restarted.servingOf("inst-0001")).runtimeId).toBe("inst-0001.green");
      await restarted.stopRuntime(blue.runtimeId);
      expect(api.list("statefulsets", NS).map((o) => o.metadata.name)).toEqual(["orders-blue-green"]);
      // Blue's claim goes with it, so the next blue starts clean; the shared objects stay, owned by green alone.
      expect(api.list("persistentvolumeclaims", NS).map((o) => o.metadata.name)).toEqual(["data-orders-blue-green-0"]);
      for (const [kind, name] of [["secrets", "orders-blue-redforge"], ["configmaps", "orders-blue-settings"], ["services", "orders-blue"]] as const) {
        expect(api.get(kind, NS, name)!.metadata.ownerReferences.map((r: { uid: string }) => r.uid)).toEqual([greenSts.metadata.uid]);
      }
      expect(api.get("services", NS, "orders-blue-blue")).toBeUndefined();
      // Ordinary operations now act on green.
      await restarted.stop("inst-0001");
      expect(api.get("statefulsets", NS, "orders-blue-green")!.spec.replicas).toBe(0);
    } finally {
      clearInterval(kubelet);
      await driver.close();
    }
  });

  it("blue-green: a green whose pod crash-loops fails the step with the reason", async () => {
    const driver = newDriver({ greenReadyTimeoutMs: 20_000 });
    await driver.create(spec());
    api.runStatefulSetController(NS);
    setPodRunning(api, NS, "orders-blue-0", true);
    const kubelet = setInterval(() => {
      api.runStatefulSetController(NS);
      if (api.get("pods", NS, "orders-blue-green-0")?.status?.phase === "Pending") setPodCrashLooping(api, NS, "orders-blue-green-0", 3);
    }, 20);
    try {
      await expect(driver.startGreen("inst-0001")).rejects.toMatchObject({ code: "green_failed", message: expect.stringContaining("CrashLoopBackOff") });
    } finally {
      clearInterval(kubelet);
    }
  });
  it("blue-green: the switch resolves once the front Service's EndpointSlices list only the new colour", async () => {
    const driver = newDriver({ switchSettleMs: 0 });
    await driver.create(spec());
    const kubelet = readyKubelet();
    const slice = (pods: string[]) => api.put("endpointslices", {
      metadata: { name: "orders-blue-x7k2p", namespace: NS, labels: { "kubernetes.io/service-name": "orders-blue" } },
      addressType: "IPv4", endpoints: pods.map((name) => ({ addresses: ["10.1.0.7"], conditions: { ready: true }, targetRef: { kind: "Pod", name } })),
    });
    try {
      const green = await driver.startGreen("inst-0001");
      slice(["orders-blue-0"]); // the endpoints controller has not caught up yet
      let switched = false;
      const switching = driver.setServing(green.runtimeId).then(() => (switched = true));
      await new Promise((r) => setTimeout(r, 400));
      expect(api.get("services", NS, "orders-blue")!.spec.selector["redforge.io/color"]).toBe("green");
      expect(switched).toBe(false);
      slice(["orders-blue-green-0"]);
      await switching;
      expect(api.requests.some((r) => r.path === `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices` && r.query.labelSelector === "kubernetes.io/service-name=orders-blue")).toBe(true);
    } finally {
      clearInterval(kubelet);
      await driver.close();
    }
  });
  it("fails with the BridgeError codes the process driver uses for the same failures", async () => {
    const driver = newDriver();
    for (const call of [() => driver.start("no-such-instance"), () => driver.deployFlows("no-such-instance", []), () => driver.servingOf("no-such-instance")]) {
      await expect(call()).rejects.toMatchObject({ name: "InstanceNotFoundError", code: "not_found" });
    }
    await driver.create(spec());
    admin.failNextDeployWith(409);
    await expect(driver.deployFlows("inst-0001", [], { rev: "stale" })).rejects.toMatchObject({ code: "flows_conflict" });
    await expect(driver.scale("inst-0001", 2).then(() => driver.deployFlows("inst-0001", []))).rejects.toMatchObject({ code: "unsupported" });
    // The API server refusing the bridge's credentials: kubernetes_error, with the HTTP status.
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: "fake", server: api.url, skipTLSVerify: true }], users: [{ name: "bridge", token: "revoked" }], contexts: [{ name: "fake", cluster: "fake", user: "bridge" }], currentContext: "fake" });
    const err = await newDriver({ kubeConfig: kc }).start("inst-0001").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BridgeError);
    expect(err).toMatchObject({ code: "kubernetes_error", status: 401 });
  });

  // Last in this file on purpose: it reads what every scenario above asked the API server for.
  it("the shipped Role (bridge/ship/kubernetes/role.yaml) grants exactly the (verb, group, resource) these scenarios requested", async () => {
    const docs = loadAllYaml(await fs.readFile(path.resolve("bridge/ship/kubernetes/role.yaml"), "utf8")) as Array<{ kind?: string; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> }>;
    const role = docs.find((d) => d.kind === "Role");
    const granted = (role?.rules ?? []).flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))));
    expect(new Set(granted).size, "a grant is listed twice").toBe(granted.length);
    expect([...granted].sort()).toEqual([...FakeKubeApi.rbacNeeds.keys()].sort());
  });
});
