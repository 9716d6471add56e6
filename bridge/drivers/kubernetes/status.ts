/**
 * Maps what Kubernetes reports (StatefulSet status, pod phases and container
 * states) onto the driver's InstanceState. Pure, so the mapping is testable
 * without an API server.
 */
import type { V1ContainerStatus, V1Pod, V1StatefulSet } from "@kubernetes/client-node";
import type { InstanceState } from "../driver.ts";

export interface ObservedInstance {
  state: InstanceState;
  reason?: string;
  desiredReplicas: number;
  readyReplicas: number;
  restarts: number;
}

/**
 * Waiting reasons that do not clear without a change from outside (a new
 * image, a fixed Secret, fixed flows). ContainerCreating and PodInitializing
 * are progress, not failure.
 */
const FAILING_WAIT_REASONS = new Set([
  "CrashLoopBackOff",
  "ImagePullBackOff",
  "ErrImagePull",
  "ErrImageNeverPull",
  "InvalidImageName",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);

export function observeInstance(sts: V1StatefulSet | undefined, pods: V1Pod[]): ObservedInstance {
  if (!sts) return { state: "unknown", reason: "StatefulSet not found", desiredReplicas: 0, readyReplicas: 0, restarts: 0 };
  const desiredReplicas = sts.spec?.replicas ?? 1;
  const readyReplicas = sts.status?.readyReplicas ?? 0;
  const restarts = pods.reduce((n, p) => n + containerStatuses(p).reduce((m, c) => m + c.restartCount, 0), 0);
  const base = { desiredReplicas, readyReplicas, restarts };

  // Scaled to zero: pods still terminating (or crash-looping on the way out) are not a failure.
  if (sts.metadata?.deletionTimestamp || desiredReplicas === 0) return { state: "stopped", ...base };

  for (const pod of pods) {
    const failure = podFailure(pod);
    if (failure) return { state: "failed", reason: failure, ...base };
  }
  if (readyReplicas >= 1) return { state: "running", ...base };
  const pending = pods.map(unschedulable).find(Boolean);
  return { state: "starting", ...(pending ? { reason: pending } : {}), ...base };
}

function containerStatuses(pod: V1Pod): V1ContainerStatus[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

function podFailure(pod: V1Pod): string | undefined {
  const podName = pod.metadata?.name ?? "pod";
  if (pod.status?.phase === "Failed") {
    return `${podName}: ${pod.status.reason ?? "Failed"}${pod.status.message ? `: ${pod.status.message}` : ""}`;
  }
  for (const c of containerStatuses(pod)) {
    const waiting = c.state?.waiting;
    if (!waiting?.reason || !FAILING_WAIT_REASONS.has(waiting.reason)) continue;
    // For a crash loop the useful part is why the last run ended (OOMKilled, exit code).
    const last = c.lastState?.terminated;
    const lastRun = last ? ` (last exit: ${last.reason ?? "Error"}, code ${last.exitCode})` : "";
    const detail = waiting.message ? `: ${waiting.message}` : "";
    return `${podName}/${c.name}: ${waiting.reason}${lastRun}${detail}; ${c.restartCount} restarts`;
  }
  return undefined;
}

/** An unschedulable pod may still be placed once the cluster autoscaler adds a node: report, don't fail. */
function unschedulable(pod: V1Pod): string | undefined {
  const cond = pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
  return cond ? `${pod.metadata?.name ?? "pod"}: ${cond.reason ?? "Unschedulable"}${cond.message ? `: ${cond.message}` : ""}` : undefined;
}
