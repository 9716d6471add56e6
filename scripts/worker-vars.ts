import type { StackConfig } from "../dev/config.ts";

/** Where the local stand-ins ended up; the one mapping from the stack to the Worker's variables. */
export interface StackEndpoints {
  databaseUrl: string;
  neonRelay: string; // host:port
  qstashUrl: string;
  upstashRelayUrl?: string;
  publicUrl: string;
}

export function workerVars(cfg: StackConfig, at: StackEndpoints): Record<string, string> {
  return {
    ENVIRONMENT: "development",
    DATABASE_URL: at.databaseUrl,
    NEON_LOCAL_PROXY: at.neonRelay,
    JWT_SECRET: cfg.worker.jwtSecret,
    REDFORGE_ADMIN_PASSWORD: cfg.worker.adminPassword,
    REDFORGE_ENCRYPTION_KEY: cfg.worker.encryptionKey,
    QSTASH_URL: at.qstashUrl,
    QSTASH_TOKEN: cfg.qstash.token,
    QSTASH_CURRENT_SIGNING_KEY: cfg.qstash.currentSigningKey,
    QSTASH_NEXT_SIGNING_KEY: cfg.qstash.nextSigningKey,
    PUBLIC_URL: at.publicUrl,
    ...(at.upstashRelayUrl
      ? { UPSTASH_REDIS_REST_URL: at.upstashRelayUrl, UPSTASH_REDIS_REST_TOKEN: cfg.upstashToken }
      : {}),
  };
}

/** dotenv format for `wrangler dev --env-file` (keeps secrets out of argv). */
export function toEnvFile(vars: Record<string, string>): string {
  return Object.entries(vars).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n";
}
