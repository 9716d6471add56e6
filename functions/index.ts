import { createApp } from "./app.ts";
import type { Env } from "../core/env.ts";

export { ClusterLink } from "../durable/clusterLink.ts";
export { DeploymentRun } from "../durable/deploymentRun/index.ts";
export { FleetEvents } from "../durable/fleetEvents.ts";
export { KvStoreObject } from "../durable/kvStore.ts";
export { MetricsSink } from "../durable/metricsSink.ts";
export { RolloutRun } from "../durable/rolloutRun/index.ts";
export { WatcherShard } from "../durable/watcherShards.ts";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
