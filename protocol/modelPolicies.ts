/**
 * Approved models at run time: the bridge asks the control plane for the
 * `approved_models` policies covering each instance of its cluster (signed
 * POST bridgePaths.modelPolicies) and publishes each instance's list, retained,
 * on MQTT `redforge/policy/models/{instanceId}`, where the instance's
 * redforge-model-policy node reads it (flows/node-package/lib/modelPolicy.js).
 */
import { z } from "zod";

export const MODEL_POLICY_TOPIC_PREFIX = "redforge/policy/models/";
export const modelPolicyTopic = (instanceId: string) => `${MODEL_POLICY_TOPIC_PREFIX}${instanceId}`;

export const instanceModelPolicySchema = z.object({
  name: z.string(),
  models: z.array(z.string()),
  providers: z.array(z.string()).optional(),
});
export type InstanceModelPolicy = z.infer<typeof instanceModelPolicySchema>;

/** The control plane's answer: every live instance of the cluster, with the policies covering it ([]: nothing restricts it). */
export const clusterModelPoliciesSchema = z.object({
  instances: z.record(z.string(), z.array(instanceModelPolicySchema)),
  /** How long the bridge may serve this before asking again. */
  ttlSeconds: z.number().int().min(1),
}).meta({ id: "ClusterModelPolicies" });
export type ClusterModelPolicies = z.infer<typeof clusterModelPoliciesSchema>;

/** What the bridge publishes per instance (retained). */
export interface PublishedModelPolicy {
  instanceId: string;
  policies: InstanceModelPolicy[];
  fetchedAt: string;
}
