import { Hono } from "hono";
import type { AppEnv } from "./app-env.ts";
import { auditTrail } from "./middleware/auditTrail.ts";
import { authenticate } from "./middleware/authenticate.ts";
import { limitBody, requireJsonBody } from "./middleware/bodyGuard.ts";
import { onError, onNotFound } from "./middleware/errorHandler.ts";
import { requestContext } from "./middleware/requestContext.ts";
import { apiKeyRoutes } from "./routes/apiKeys.ts";
import { authRoutes } from "./routes/auth.ts";
import { clusterRoutes } from "./routes/clusters.ts";
import { healthRoutes } from "./routes/health.ts";
import { instanceRoutes } from "./routes/instances.ts";

/**
 * Order matters: context and body guards for everything under /api; the
 * public routes (health, login) are mounted before `authenticate`, so they
 * answer without it; every router after it declares its permissions.
 */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.notFound(onNotFound);

  app.use("/api/*", requestContext, limitBody, requireJsonBody, auditTrail);
  app.route("/api/health", healthRoutes);
  app.route("/api/auth", authRoutes);

  app.use("/api/*", authenticate);
  app.route("/api/api-keys", apiKeyRoutes);
  app.route("/api/clusters", clusterRoutes);
  app.route("/api/instances", instanceRoutes);
  return app;
}

export type App = ReturnType<typeof createApp>;
