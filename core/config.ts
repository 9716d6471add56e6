import { invalidKeys, parseKeyring, type Keyring } from "./crypto/secretBox.ts";
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
  /** REDFORGE_ENCRYPTION_KEY (seals) and REDFORGE_ENCRYPTION_KEYS_PREVIOUS (still open). */
  encryptionKey: Keyring;
  /** HMAC key for audit checkpoints; undefined in production until REDFORGE_AUDIT_CHECKPOINT_KEY is set. */
  auditCheckpointKey?: string;
}

// Values that ship in dev/config.ts: production must never run with them.
const DEV_ADMIN_PASSWORD = "redforge-dev-admin";
const DEV_JWT_SECRET = "redforge-dev-jwt-secret-change-me-in-production";
// Development needs no setup for retention purges; production must set its own key.
const DEV_AUDIT_CHECKPOINT_KEY = "redforge-dev-audit-checkpoint-key";

// Decoding every key of the ring on every request was ~2 % of a creation's Worker CPU: the verdict
// is kept per ring text for the isolate's life (a changed secret is a new text, checked afresh).
const checkedRings = new Map<string, string[]>();
function keyringProblems(keyring: Keyring, previousText: string | undefined): string[] {
  const id = `${keyring.current}\u0000${previousText ?? ""}`;
  let problems = checkedRings.get(id);
  if (!problems) {
    problems = invalidKeys(keyring).map((name) => `${name} is not base64 of 32 bytes`);
    if (checkedRings.size >= 16) checkedRings.clear();
    checkedRings.set(id, problems);
  }
  return problems;
}

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
    if (env.REDFORGE_AUDIT_CHECKPOINT_KEY === DEV_AUDIT_CHECKPOINT_KEY) weak.push("REDFORGE_AUDIT_CHECKPOINT_KEY is the dev default");
  }
  const keyring = env.REDFORGE_ENCRYPTION_KEY ? parseKeyring(env.REDFORGE_ENCRYPTION_KEY, env.REDFORGE_ENCRYPTION_KEYS_PREVIOUS) : undefined;
  if (keyring) weak.push(...keyringProblems(keyring, env.REDFORGE_ENCRYPTION_KEYS_PREVIOUS));
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
    encryptionKey: keyring!,
    auditCheckpointKey: env.REDFORGE_AUDIT_CHECKPOINT_KEY || (production ? undefined : DEV_AUDIT_CHECKPOINT_KEY),
  };
}
