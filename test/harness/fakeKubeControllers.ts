/**
 * Just enough of the StatefulSet controller and the kubelet for driver tests:
 * claims and pods per ordinal, readyReplicas from pod conditions, and helpers
 * that put a pod into the states health() has to recognise.
 */
import type { FakeKubeApi, KubeObject } from "./fakeKubeApi.ts";

/** Claims `<template>-<sts>-<i>` (template labels + selector labels, as the real controller sets them) and pods `<sts>-<i>`. */
export function simulateStatefulSets(api: FakeKubeApi, namespace: string): void {
  for (const sts of api.list("statefulsets", namespace)) {
    const name: string = sts.metadata.name;
    const replicas: number = sts.spec?.replicas ?? 1;
    const selector: Record<string, string> = sts.spec?.selector?.matchLabels ?? {};
    for (let i = 0; i < replicas; i++) {
      for (const tpl of sts.spec?.volumeClaimTemplates ?? []) {
        const claim = `${tpl.metadata.name}-${name}-${i}`;
        if (api.get("persistentvolumeclaims", namespace, claim)) continue;
        api.put("persistentvolumeclaims", {
          metadata: { name: claim, namespace, labels: { ...(tpl.metadata.labels ?? {}), ...selector } },
          spec: tpl.spec,
          status: { phase: "Bound" },
        });
      }
      const podName = `${name}-${i}`;
      if (api.get("pods", namespace, podName)) continue;
      api.put("pods", {
        metadata: {
          name: podName,
          namespace,
          labels: { ...(sts.spec?.template?.metadata?.labels ?? {}), "statefulset.kubernetes.io/pod-name": podName },
          ownerReferences: [{ apiVersion: "apps/v1", kind: "StatefulSet", name, uid: sts.metadata.uid, controller: true, blockOwnerDeletion: true }],
        },
        spec: sts.spec?.template?.spec,
        status: { phase: "Pending" },
      });
    }
    for (const pod of api.list("pods", namespace)) {
      const owned = (pod.metadata.ownerReferences ?? []).some((r: { uid?: string }) => r.uid === sts.metadata.uid);
      const ordinal = Number(String(pod.metadata.name).slice(name.length + 1));
      if (owned && ordinal >= replicas) api.remove("pods", namespace, pod.metadata.name);
    }
    const pods = api.list("pods", namespace).filter((p) => (p.metadata.ownerReferences ?? []).some((r: { uid?: string }) => r.uid === sts.metadata.uid));
    const ready = pods.filter((p) => (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True")).length;
    api.put("statefulsets", { ...sts, status: { ...sts.status, replicas: pods.length, readyReplicas: ready, availableReplicas: ready } });
  }
}

/**
 * The EndpointSlice controller: one slice per Service (`<svc>-fake`, labelled
 * kubernetes.io/service-name) listing the pods its selector matches, ready or
 * not. Written only when it changes, as each write bumps resourceVersion.
 */
export function simulateEndpointSlices(api: FakeKubeApi, namespace: string): void {
  const pods = api.list("pods", namespace);
  const services = api.list("services", namespace);
  for (const svc of services) {
    const selector: Record<string, string> = svc.spec?.selector ?? {};
    const matching = pods.filter((p) => Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v));
    const endpoints = matching.map((p) => ({
      addresses: [p.status?.podIP ?? "127.0.0.1"],
      conditions: { ready: (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True") },
      targetRef: { kind: "Pod", name: p.metadata.name, namespace },
    }));
    const name = `${svc.metadata.name}-fake`;
    const current = api.get("endpointslices", namespace, name);
    if (current && JSON.stringify(current.endpoints) === JSON.stringify(endpoints)) continue;
    api.put("endpointslices", {
      metadata: { name, namespace, labels: { "kubernetes.io/service-name": svc.metadata.name } },
      addressType: "IPv4", endpoints, ports: [{ name: "http", port: 1880, protocol: "TCP" }],
    });
  }
  const names = new Set(services.map((s) => `${s.metadata.name}-fake`));
  for (const slice of api.list("endpointslices", namespace)) if (!names.has(slice.metadata.name)) api.remove("endpointslices", namespace, slice.metadata.name);
}

export function setPodRunning(api: FakeKubeApi, namespace: string, name: string, ready: boolean): KubeObject {
  const pod = mustPod(api, namespace, name);
  return api.put("pods", {
    ...pod,
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
      containerStatuses: [{ name: "node-red", ready, restartCount: 0, image: "nodered/node-red:4.1.15", imageID: "", state: { running: { startedAt: new Date().toISOString() } } }],
    },
  });
}

export function setPodCrashLooping(api: FakeKubeApi, namespace: string, name: string, restarts: number): KubeObject {
  const pod = mustPod(api, namespace, name);
  return api.put("pods", {
    ...pod,
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: "False" }],
      containerStatuses: [
        {
          name: "node-red",
          ready: false,
          restartCount: restarts,
          image: "nodered/node-red:4.1.15",
          imageID: "",
          state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 5m0s restarting failed container=node-red" } },
          lastState: { terminated: { reason: "Error", exitCode: 1, startedAt: new Date().toISOString(), finishedAt: new Date().toISOString() } },
        },
      ],
    },
  });
}

function mustPod(api: FakeKubeApi, namespace: string, name: string): KubeObject {
  const pod = api.get("pods", namespace, name);
  if (!pod) throw new Error(`no pod ${namespace}/${name}: run the StatefulSet controller first`);
  return pod;
}
