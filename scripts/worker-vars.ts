import type { StackConfig } from "../dev/config.ts";

/** Where the local stand-ins ended up; the one mapping from the stack to the Worker's variables. */
export interface StackEndpoints {
  databaseUrl: string;
  neonRelay: string; // host:port
  qstashUrl: string;
  upstashRelayUrl?: string;
  publicUrl: string;
}

const PASSED_THROUGH = ["REDFORGE_WATCHERS_PER_OBJECT", "REDFORGE_DEPLOY_TIMEOUT_SCALE"] as const;

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
    // Local webhook receivers (tests, a new user's first channel) live on loopback; production refuses them.
    REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE: "true",
    // Tuning knobs a user (or a bench) sets in the shell that runs the stack.
    ...Object.fromEntries(PASSED_THROUGH.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : []))),
    ...(at.upstashRelayUrl
      ? { UPSTASH_REDIS_REST_URL: at.upstashRelayUrl, UPSTASH_REDIS_REST_TOKEN: cfg.upstashToken }
      : {}),
  };
}

/**
 * dotenv format for `wrangler dev --env-file` (keeps secrets out of argv).
 * wrangler (4.86 to 4.164) reads it with dotenv 16.3 then dotenv-expand 12, which
 * unescape nothing but `\n`/`\r` in double quotes and expand `$NAME`
 * everywhere, so JSON-style quoting would corrupt a password holding `$`, `"`
 * or `\`. A quote character absent from the value keeps it literal, and `\$`
 * is the one escape dotenv-expand undoes.
 */
export function toEnvFile(vars: Record<string, string>): string {
  return Object.entries(vars).map(([k, v]) => `${k}=${quoteEnvValue(k, v)}`).join("\n") + "\n";
}

function quoteEnvValue(key: string, value: string): string {
  if (!/^[\w.-]+$/.test(key)) throw new Error(`worker variable name ${JSON.stringify(key)} cannot be written to an env file`);
  // The parser turns CR into LF, and a backslash before the closing quote would escape it.
  const quote = value.includes("\r") || value.endsWith("\\") ? undefined
    : ["'", "`", '"'].find((q) => !value.includes(q) && (q !== '"' || !/\\[nr]/.test(value)));
  // Never echo the value: it may be a secret.
  if (!quote) throw new Error(`the value of ${key} cannot be passed to wrangler (it mixes all quote characters, a CR or a trailing backslash)`);
  return quote + value.replaceAll("$", "\\$") + quote;
}
