/**
 * Several clusters' ClusterLink status, asked at most 32 at a time and only until a deadline
 * (core/platform/boundedAll.ts): a fleet of thousands of clusters must not wake thousands of
 * objects at once. `undefined` where a link did not answer in time; callers fall back to the
 * cluster row's `status`. Used by the Prometheus scrape and the `bridge_disconnected` alert.
 */
import type { Env } from "../env.ts";
import type { ClusterLinkStatus } from "../objects.ts";
import { settleWithin } from "../platform/boundedAll.ts";

const CONCURRENCY = 32;

export async function linkStatuses(env: Env, clusters: readonly { id: string }[], deadlineMs: number): Promise<(ClusterLinkStatus | undefined)[]> {
  const read = await settleWithin(clusters, (c) => env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(c.id)).status(), { concurrency: CONCURRENCY, deadlineMs });
  return clusters.map((_, i) => read.get(i));
}
