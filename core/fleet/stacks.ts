/**
 * Which stacks a cluster's bridge runs, as its last hello said (ClusterLink
 * keeps it). The API refuses a stack the bridge said it does not run; a
 * bridge that has not said hello yet (or predates stacks) is not second-
 * guessed: the command goes out and the bridge refuses it (`unsupported`).
 */
import type { SupportedStack } from "../../protocol/stacks.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../errors.ts";

/**
 * How long this isolate trusts a cluster's reported stacks for saying "supported" without asking
 * its ClusterLink again (one Durable Object call less per creation). Only a yes is taken from here:
 * "not reported" and "not among them" are always asked afresh, so the 422 is never stale. A bridge
 * that drops a stack and says hello again within this window can get one creation on the dropped
 * stack, which it refuses: the instance ends `failed`, as with a bridge that has not said hello.
 */
export const REPORTED_STACKS_TRUST_MS = 10_000;
const MAX_REMEMBERED = 1_000;
const reported = new Map<string, { stacks: SupportedStack[]; seenAt: number }>();

/** The stacks of the cluster's bridge; null when it has not reported them. Always asks the ClusterLink. */
export async function bridgeStacks(env: Env, clusterId: string): Promise<{ stacks: SupportedStack[] | null; reportedAt: string | null }> {
  const hello = await env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(clusterId)).hello();
  if (!hello?.stacks) {
    reported.delete(clusterId);
    return { stacks: null, reportedAt: null };
  }
  if (reported.size >= MAX_REMEMBERED && !reported.has(clusterId)) reported.clear();
  reported.set(clusterId, { stacks: hello.stacks, seenAt: Date.now() });
  return { stacks: hello.stacks, reportedAt: hello.at };
}

/** 422 `stack_unsupported` when the cluster's bridge said it does not run `stack`. */
export async function assertStackSupported(env: Env, clusterId: string, stack: string): Promise<void> {
  const known = reported.get(clusterId);
  if (known && Date.now() - known.seenAt < REPORTED_STACKS_TRUST_MS && known.stacks.some((s) => s.id === stack)) return;
  const { stacks } = await bridgeStacks(env, clusterId);
  if (stacks === null || stacks.some((s) => s.id === stack)) return;
  throw new ApiError(422, "stack_unsupported", `the bridge of cluster ${clusterId} does not run stack ${stack} (it runs: ${stacks.map((s) => s.id).join(", ") || "none"})`, {
    stack, supported: stacks.map((s) => s.id),
  });
}
