/**
 * POST /api/webhooks/clusters/:id/model-policies (signed by the cluster's
 * webhook secret, like every bridge request): the approved-model policies in
 * force for each live instance of the cluster. The bridge publishes them to
 * its instances, which refuse other models at run time (docs/agents.md).
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { verifyClusterWebhook } from "../../core/fleet/signedRequest.ts";
import { modelPoliciesForCluster } from "../../core/governance/modelPolicies.ts";
import { describe } from "../../core/openapi/describe.ts";
import { validate } from "../../core/validation.ts";
import { clusterModelPoliciesSchema, DEFAULT_MODEL_POLICY_MAX_AGE_SECONDS } from "../../protocol/modelPolicies.ts";

/** The bridge asks again after this long: a policy change reaches the instances within it. */
export const MODEL_POLICY_TTL_SECONDS = 15;

const clusterParam = z.object({ id: z.uuid() });

export const modelPolicyRoutes = new Hono<AppEnv>()
  .post("/webhooks/clusters/:id/model-policies", describe("Bridge")({
    summary: "The approved-model policies covering each instance of the cluster",
    description: "For the bridge, which publishes each instance's list (retained) on MQTT `redforge/policy/models/{instanceId}`; the instances' redforge-model-policy node refuses other models. An empty list: no policy restricts that instance. `maxAgeSeconds`: how long an instance may use a list the bridge could not refresh (then model calls fail closed with model_policy_stale). The body is ignored (`{}`).",
    access: "clusterWebhook",
    responses: { 200: clusterModelPoliciesSchema },
    errors: [404],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    // A read: nothing to undo, so the webhook id stays spent even when this fails.
    await verifyClusterWebhook(c, id);
    return c.json({ instances: await modelPoliciesForCluster(c.var.services.db, id), ttlSeconds: MODEL_POLICY_TTL_SECONDS, maxAgeSeconds: DEFAULT_MODEL_POLICY_MAX_AGE_SECONDS });
  });
