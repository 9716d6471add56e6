import { Hono } from "hono";
import type { AppEnv } from "../core/app-env.ts";
import { auditTrail } from "./middleware/auditTrail.ts";
import { authenticateThenLimit } from "./middleware/authenticate.ts";
import { limitBody, requireJsonBody } from "./middleware/bodyGuard.ts";
import { onError, onNotFound } from "./middleware/errorHandler.ts";
import { referenceRoutes } from "./openapi/routes.ts";
import { limitByClient, limitByPrincipal } from "./middleware/rateLimit.ts";
import { requestContext } from "./middleware/requestContext.ts";
import { securityHeaders } from "./middleware/securityHeaders.ts";
import { complianceExportJob } from "../queues/complianceExport.ts";
import { jobRoutes } from "../queues/healthSweep.ts";
import { retentionPurgeJob } from "../queues/retentionPurge.ts";
import { alertJobs } from "../queues/alertsEvaluate.ts";
import { adminRoutes } from "./routes/admin.ts";
import { aiRoutes } from "./routes/ai.ts";
import { coordinationRoutes } from "./routes/coordination.ts";
import { alertRoutes } from "./routes/alerts.ts";
import { alertChannelRoutes } from "./routes/alertsChannels.ts";
import { alertRuleRoutes } from "./routes/alertsRules.ts";
import { apiKeyRoutes } from "./routes/apiKeys.ts";
import { auditRoutes } from "./routes/audit.ts";
import { bridgeRoutes } from "./routes/bridge.ts";
import { deadLetterRoutes, deadLetterWebhookRoutes } from "./routes/deadLetters.ts";
import { modelPolicyRoutes } from "./routes/modelPolicies.ts";
import { ciHookDeliveryRoutes, ciHookRoutes } from "./routes/ciHooks.ts";
import { deploymentRoutes } from "./routes/deployments.ts";
import { rolloutRoutes } from "./routes/rollouts.ts";
import { fleetSocketRoutes } from "./routes/fleetSocket.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { prometheusRoutes } from "./routes/prometheus.ts";
import { requestMetrics } from "./middleware/requestMetrics.ts";
import { authRoutes } from "./routes/auth.ts";
import { clusterRoutes } from "./routes/clusters.ts";
import { configRoutes } from "./routes/config.ts";
import { healthRoutes } from "./routes/health.ts";
import { instanceRoutes } from "./routes/instances.ts";
import { stackRoutes } from "./routes/stacks.ts";
import { pipelineRoutes } from "./routes/pipelines.ts";
import { policyRoutes } from "./routes/policies.ts";
import { quotaRoutes } from "./routes/quotas.ts";
import { reportRoutes } from "./routes/reports.ts";
import { roleRoutes } from "./routes/roles.ts";
import { userRoutes } from "./routes/users.ts";
import { workflowRoutes, workflowWebhookRoutes } from "./routes/workflows.ts";
import { blueprintRoutes } from "./routes/blueprints.ts";

/**
 * Order matters: security headers on every answer; context, the per-address
 * rate limit and body guards for everything under /api; the
 * public routes (health, login, the API reference) are mounted before
 * `authenticate`, so they answer without it; every router after it is
 * rate-limited per principal and declares its permissions.
 */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.notFound(onNotFound);

  app.use("*", securityHeaders);
  app.use("/api/*", requestMetrics, requestContext, limitByClient, limitBody, requireJsonBody, auditTrail);
  app.use("/ws/*", requestContext, limitByClient);
  app.route("/api/health", healthRoutes);
  app.route("/api/auth", authRoutes);
  app.route("/api", referenceRoutes(app));
  // Authenticated by signatures, not users: cluster webhooks and tokens, QStash jobs.
  app.route("/api", bridgeRoutes);
  app.route("/api", workflowWebhookRoutes);
  app.route("/api", deadLetterWebhookRoutes);
  app.route("/api", modelPolicyRoutes);
  // CI deliveries: the hook's own signature (Standard Webhooks or GitHub's), checked before the body is read.
  app.route("/api/webhooks/ci", ciHookDeliveryRoutes);
  app.route("/api/jobs", jobRoutes);
  app.route("/api/jobs", complianceExportJob);
  app.route("/api/jobs", retentionPurgeJob);
  app.route("/api/jobs", alertJobs);
  app.route("/ws", fleetSocketRoutes);
  // Prometheus's conventional path, outside /api: its own credential check (a scrape token or metrics:read).
  app.use("/metrics", requestContext, limitByClient);
  app.route("/metrics", prometheusRoutes);

  app.use("/api/*", authenticateThenLimit, limitByPrincipal);
  app.route("/api/admin", adminRoutes);
  app.route("/api/ai", aiRoutes);
  app.route("/api/coordination", coordinationRoutes);
  app.route("/api/alerts/rules", alertRuleRoutes);
  app.route("/api/alerts/channels", alertChannelRoutes);
  app.route("/api/alerts", alertRoutes);
  app.route("/api/api-keys", apiKeyRoutes);
  app.route("/api/audit", auditRoutes);
  app.route("/api/clusters", clusterRoutes);
  app.route("/api/config", configRoutes);
  app.route("/api/deployments", deploymentRoutes);
  app.route("/api/dead-letters", deadLetterRoutes);
  app.route("/api/rollouts", rolloutRoutes);
  app.route("/api/instances", instanceRoutes);
  app.route("/api/stacks", stackRoutes);
  app.route("/api/metrics", metricsRoutes);
  app.route("/api/pipelines", pipelineRoutes);
  app.route("/api/policies", policyRoutes);
  app.route("/api/quotas", quotaRoutes);
  app.route("/api/reports", reportRoutes);
  app.route("/api/webhooks/ci", ciHookRoutes);
  app.route("/api/users", userRoutes);
  app.route("/api/roles", roleRoutes);
  app.route("/api/workflows", workflowRoutes);
  app.route("/api/blueprints", blueprintRoutes);
  return app;
}

export type App = ReturnType<typeof createApp>;
