import type { Env } from "./env.ts";
import { ApiError } from "./errors.ts";

/** Validated runtime configuration; built once per request from the bindings. */
export interface RuntimeConfig {
  production: boolean;
  databaseUrl: string;
  neonLocalProxy?: string;
  jwtSecret: string;
  jwtTtlSeconds: number;
  adminPassword: string;
  encryptionKey: string;
}

// Values that ship in dev/config.ts: production must never run with them.
const DEV_ADMIN_PASSWORD = "redforge-dev-admin";
const DEV_JWT_SECRET = "redforge-dev-jwt-secret-change-me-in-production";

/**
 * Production refuses to serve (503 misconfigured) rather than run with a
 * missing or known-default secret; the error names the variables, never values.
 */
export function loadRuntimeConfig(env: Env): RuntimeConfig {
  const production = (env.ENVIRONMENT ?? "production") !== "development";
  const missing = (["DATABASE_URL", "JWT_SECRET", "REDFORGE_ADMIN_PASSWORD", "REDFORGE_ENCRYPTION_KEY"] as const)
    .filter((k) => !env[k]);
  const weak: string[] = [];
  if (production) {
    if (env.REDFORGE_ADMIN_PASSWORD === DEV_ADMIN_PASSWORD) weak.push("REDFORGE_ADMIN_PASSWORD is the dev default");
    if (env.JWT_SECRET === DEV_JWT_SECRET || (env.JWT_SECRET && env.JWT_SECRET.length < 32))
      weak.push("JWT_SECRET is the dev default or shorter than 32 characters");
    if (env.NEON_LOCAL_PROXY) weak.push("NEON_LOCAL_PROXY is a development setting");
  }
  if (missing.length || weak.length) {
    throw new ApiError(503, "misconfigured", "the control plane is not configured", {
      missing, problems: weak,
    });
  }
  const ttl = Number(env.JWT_TTL_SECONDS ?? 900);
  return {
    production,
    databaseUrl: env.DATABASE_URL!,
    neonLocalProxy: env.NEON_LOCAL_PROXY || undefined,
    jwtSecret: env.JWT_SECRET!,
    jwtTtlSeconds: Number.isFinite(ttl) && ttl > 0 ? Math.min(ttl, 86_400) : 900,
    adminPassword: env.REDFORGE_ADMIN_PASSWORD!,
    encryptionKey: env.REDFORGE_ENCRYPTION_KEY!,
  };
}
