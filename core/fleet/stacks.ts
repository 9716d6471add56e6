/**
 * Which stacks a cluster's bridge runs, as its last hello said (ClusterLink
 * keeps it). The API refuses a stack the bridge said it does not run; a
 * bridge that has not said hello yet (or predates stacks) is not second-
 * guessed: the command goes out and the bridge refuses it (`unsupported`).
 */
import type { SupportedStack } from "../../protocol/stacks.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../errors.ts";

/** The stacks of the cluster's bridge; null when it has not reported them. */
export async function bridgeStacks(env: Env, clusterId: string): Promise<{ stacks: SupportedStack[] | null; reportedAt: string | null }> {
  const status = await env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(clusterId)).status();
  const hello = status.lastHello;
  return hello?.stacks ? { stacks: hello.stacks, reportedAt: hello.at } : { stacks: null, reportedAt: null };
}

/** 422 `stack_unsupported` when the cluster's bridge said it does not run `stack`. */
export async function assertStackSupported(env: Env, clusterId: string, stack: string): Promise<void> {
  const { stacks } = await bridgeStacks(env, clusterId);
  if (stacks === null || stacks.some((s) => s.id === stack)) return;
  throw new ApiError(422, "stack_unsupported", `the bridge of cluster ${clusterId} does not run stack ${stack} (it runs: ${stacks.map((s) => s.id).join(", ") || "none"})`, {
    stack, supported: stacks.map((s) => s.id),
  });
}
