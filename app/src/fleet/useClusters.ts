/** The clusters a page names instances by and offers in forms (first 200; a fleet spans a handful). */
import { createResource } from "solid-js";
import { api } from "../api/api.ts";
import type { components } from "../../../protocol/api/client.ts";

export type Cluster = components["schemas"]["ClusterState"];

export function useClusters() {
  const [clusters] = createResource(async () => (await api.GET("/api/clusters", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const nameOf = (id: string) => clusters.latest?.find((c) => c.id === id)?.name ?? id.slice(0, 8);
  return { clusters, nameOf };
}
