/**
 * Unit tests for the kubernetes driver's pure parts: manifest builders, name
 * and env validation, the Kubernetes-status → InstanceState mapping and the
 * missing-node-type check. (Under test/integration only because that is where
 * the node test layer picks files up.)
 */
import { describe, expect, it } from "vitest";
import type { V1Pod, V1StatefulSet } from "@kubernetes/client-node";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";
import { buildInstanceManifests, CONFIG_HASH_ANNOTATION, ownedBy, type ManifestOptions } from "../../bridge/drivers/kubernetes/manifests.ts";
import { observeInstance } from "../../bridge/drivers/kubernetes/status.ts";
import { missingTypes } from "../../bridge/drivers/nodeRedAdmin.ts";

const opts: ManifestOptions = { namespace: "ns1", clusterId: "c1", image: "nodered/node-red:4.1.15", dataSize: "5Gi", adminToken: "tok", color: "blue" };
const spec = (over: Partial<InstanceSpec> = {}): InstanceSpec => ({
  id: "i-1", name: "alpha", flows: [], resources: {}, env: { A: "1" }, credentialSecret: "cs", ...over,
});

describe("kubernetes manifests", () => {
  it("names every object after the instance and labels all of them alike", () => {
    const m = buildInstanceManifests(spec(), opts);
    expect(m.names).toEqual({ statefulSet: "alpha", service: "alpha", runtimeService: "alpha-blue", secret: "alpha-redforge", configMap: "alpha-settings", dataClaim: "data" });
    // Green's StatefulSet and Service carry the colour in their names; the shared objects do not.
    expect(buildInstanceManifests(spec(), { ...opts, color: "green" }).names).toMatchObject({ statefulSet: "alpha-green", service: "alpha", runtimeService: "alpha-green" });
    for (const o of [m.secret, m.configMap, m.service, m.runtimeService, m.statefulSet(1)]) {
      expect(o.metadata?.namespace).toBe("ns1");
      expect(o.metadata?.labels).toEqual({
        "app.kubernetes.io/name": "node-red",
        "app.kubernetes.io/instance": "alpha",
        "app.kubernetes.io/managed-by": "redforge",
        "redforge.io/instance-id": "i-1",
        "redforge.io/cluster-id": "c1",
      });
    }
  });

  it("leaves resources out when the spec has none, and storageClassName out when not configured", () => {
    const sts = buildInstanceManifests(spec(), opts).statefulSet(1);
    expect(sts.spec?.template.spec?.containers[0]?.resources).toBeUndefined();
    expect(sts.spec?.volumeClaimTemplates?.[0]?.spec).toEqual({ accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "5Gi" } } });
    const mem = buildInstanceManifests(spec({ resources: { memory: "256Mi" } }), opts).statefulSet(1);
    expect(mem.spec?.template.spec?.containers[0]?.resources).toEqual({ requests: { memory: "256Mi" }, limits: { memory: "256Mi" } });
  });

  it("puts the colour into the StatefulSet selector, the pod labels and the Service selector", () => {
    const m = buildInstanceManifests(spec(), { ...opts, color: "green" });
    const selector = { "app.kubernetes.io/instance": "alpha", "redforge.io/color": "green" };
    expect(m.statefulSet(1).spec?.selector.matchLabels).toEqual(selector);
    expect(m.statefulSet(1).spec?.template.metadata?.labels).toMatchObject(selector);
    expect(m.service.spec?.selector).toEqual(selector);
  });

  it("changes the pod template's config hash when env or flows change, and only then", () => {
    const hash = (s: InstanceSpec) => buildInstanceManifests(s, opts).statefulSet(1).spec?.template.metadata?.annotations?.[CONFIG_HASH_ANNOTATION];
    expect(hash(spec())).toBe(hash(spec()));
    expect(hash(spec({ env: { A: "2" } }))).not.toBe(hash(spec()));
    expect(hash(spec({ flows: [{ id: "x", type: "tab" }] }))).not.toBe(hash(spec()));
    expect(hash(spec({ resources: { cpu: "1" } }))).toBe(hash(spec()));
  });

  it("rejects names, ids and env keys Kubernetes would refuse or silently drop", () => {
    expect(() => buildInstanceManifests(spec({ name: "Alpha" }), opts)).toThrow(/DNS-1123/);
    expect(() => buildInstanceManifests(spec({ name: "a".repeat(47) }), opts)).toThrow(/at most 46/);
    expect(() => buildInstanceManifests(spec({ name: "a".repeat(46) }), opts)).not.toThrow();
    expect(() => buildInstanceManifests(spec({ id: "has space" }), opts)).toThrow(/label value/);
    expect(() => buildInstanceManifests(spec(), { ...opts, clusterId: "-bad" })).toThrow(/cluster id/);
    expect(() => buildInstanceManifests(spec({ env: { "MY-VAR": "x" } }), opts)).toThrow(/not a valid variable name/);
    expect(() => buildInstanceManifests(spec({ env: { REDFORGE_ADMIN_TOKEN: "x" } }), opts)).toThrow(/reserved/);
    expect(() => buildInstanceManifests(spec({ flows: [{ blob: "x".repeat(1024 * 1024) }] }), opts)).toThrow(/ConfigMap seed allows/);
  });

  it("ownedBy adds exactly one ownerReference to the StatefulSet and leaves the input alone", () => {
    const m = buildInstanceManifests(spec(), opts);
    const owned = ownedBy(m.secret, { name: "alpha", uid: "u-1" });
    expect(owned.metadata?.ownerReferences).toEqual([{ apiVersion: "apps/v1", kind: "StatefulSet", name: "alpha", uid: "u-1" }]);
    expect(m.secret.metadata?.ownerReferences).toBeUndefined();
  });
});

describe("instance state from Kubernetes status", () => {
  const sts = (replicas: number, readyReplicas?: number): V1StatefulSet => ({ spec: { replicas, selector: {}, serviceName: "a", template: {} }, status: { replicas, readyReplicas } });
  const pod = (status: V1Pod["status"]): V1Pod => ({ metadata: { name: "alpha-0" }, status });
  const waiting = (reason: string, restartCount = 0): V1Pod =>
    pod({ phase: "Pending", containerStatuses: [{ name: "node-red", image: "", imageID: "", ready: false, restartCount, state: { waiting: { reason } } }] });

  it("maps replicas and readiness", () => {
    expect(observeInstance(undefined, []).state).toBe("unknown");
    expect(observeInstance(sts(0), []).state).toBe("stopped");
    expect(observeInstance(sts(1, 0), []).state).toBe("starting");
    expect(observeInstance(sts(1, 1), []).state).toBe("running");
  });

  it("treats pull and config errors as failures, ContainerCreating as progress", () => {
    expect(observeInstance(sts(1), [waiting("ContainerCreating")]).state).toBe("starting");
    expect(observeInstance(sts(1), [waiting("ImagePullBackOff")])).toMatchObject({ state: "failed", reason: expect.stringContaining("ImagePullBackOff") });
    expect(observeInstance(sts(1), [waiting("CreateContainerConfigError")]).state).toBe("failed");
  });

  it("reports an OOM kill behind a crash loop, and counts restarts", () => {
    const p = pod({
      phase: "Running",
      containerStatuses: [{
        name: "node-red", image: "", imageID: "", ready: false, restartCount: 7,
        state: { waiting: { reason: "CrashLoopBackOff" } },
        lastState: { terminated: { reason: "OOMKilled", exitCode: 137 } },
      }],
    });
    expect(observeInstance(sts(1, 0), [p])).toMatchObject({ state: "failed", restarts: 7, reason: "alpha-0/node-red: CrashLoopBackOff (last exit: OOMKilled, code 137); 7 restarts" });
  });

  it("a crash-looping pod on its way out after stop is stopped, not failed", () => {
    expect(observeInstance(sts(0), [waiting("CrashLoopBackOff", 3)]).state).toBe("stopped");
  });

  it("an unschedulable pod is starting, with the scheduler's reason", () => {
    const p = pod({ phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available" }] });
    expect(observeInstance(sts(1), [p])).toMatchObject({ state: "starting", reason: "alpha-0: Unschedulable: 0/3 nodes are available" });
  });
});

describe("missing node types", () => {
  it("compares the types the flows use with the installed node sets, ignoring tabs, groups and subflow instances", () => {
    const flows = [{ type: "tab" }, { type: "group" }, { type: "subflow:abc" }, { type: "inject" }, { type: "redforge-gate" }, { type: "mqtt in" }, { type: "mqtt-broker" }];
    expect(missingTypes(flows, [{ types: ["inject", "debug"] }, { types: ["mqtt in", "mqtt out", "mqtt-broker"] }])).toEqual(["redforge-gate"]);
  });
});
