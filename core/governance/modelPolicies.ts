/**
 * The approved-model policies in force for each instance of a cluster, for the
 * bridge to hand to its instances (bridge/modelPolicySync.ts → MQTT
 * redforge/policy/models/{instance} → the redforge-model-policy node). The
 * node applies them as evaluateModelPolicy does: every covering policy must
 * allow the model, so each instance gets exactly the policies whose selector
 * selects it (or that have none).
 */
import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { clusters, instances } from "../../db/schema.ts";
import type { InstanceModelPolicy } from "../../protocol/modelPolicies.ts";
import { enabledPolicies, ruleShapes, selects } from "./policies.ts";

export async function modelPoliciesForCluster(db: Db, clusterId: string): Promise<Record<string, InstanceModelPolicy[]>> {
  const [rows, [cluster], list] = await Promise.all([
    db.select({ id: instances.id, name: instances.name, team: instances.team }).from(instances)
      .where(and(eq(instances.clusterId, clusterId), isNull(instances.deletedAt))),
    db.select({ labels: clusters.labels }).from(clusters).where(eq(clusters.id, clusterId)).limit(1),
    enabledPolicies(db),
  ]);
  const labels = cluster?.labels ?? {};
  const approved = list.flatMap((p) => {
    if (p.kind !== "approved_models") return [];
    // A stored rule that no longer parses is skipped, as evaluateModelPolicy skips it.
    const r = ruleShapes.approved_models.safeParse(p.rule);
    return r.success ? [{ name: p.name, rule: r.data }] : [];
  });
  const out: Record<string, InstanceModelPolicy[]> = {};
  for (const i of rows) {
    const facts = { name: i.name, team: i.team, labels };
    out[i.id] = approved
      .filter((p) => !p.rule.selector || selects(p.rule.selector, facts))
      .map((p) => ({ name: p.name, models: p.rule.models, ...(p.rule.providers ? { providers: p.rule.providers } : {}) }));
  }
  return out;
}
