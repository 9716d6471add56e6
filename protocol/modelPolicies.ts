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
  /**
   * How long an instance may use a list after the bridge fetched it (the published `expiresAt`):
   * past it, the instance refuses every model call (model_policy_stale). Absent: DEFAULT_MODEL_POLICY_MAX_AGE_SECONDS.
   */
  maxAgeSeconds: z.number().int().min(1).optional(),
}).meta({ id: "ClusterModelPolicies" });
export type ClusterModelPolicies = z.infer<typeof clusterModelPoliciesSchema>;

/** Ten minutes: a control-plane outage shorter than this does not stop model calls; a longer one fails them closed. */
export const DEFAULT_MODEL_POLICY_MAX_AGE_SECONDS = 600;

/** What the bridge publishes per instance (retained). */
export interface PublishedModelPolicy {
  instanceId: string;
  policies: InstanceModelPolicy[];
  /** When the bridge last had this list from the control plane. */
  fetchedAt: string;
  /** After this (the bridge's clock) the instance refuses model calls with model_policy_stale until a fresh list comes. */
  expiresAt: string;
}
