import type { Permission } from "../db/schema.ts";
import type { Env } from "./env.ts";
import type { Services } from "./platform/services.ts";

/** Who is calling, resolved once per request by middleware/authenticate.ts. */
export interface Principal {
  userId: string;
  username: string;
  team: string;
  /** Effective role: for an API key, the key's role (never wider than its owner's). */
  role: string;
  permissions: Permission[];
  /** ci_hook: a CI webhook acting as its creator (functions/routes/ciHooks.ts). */
  via: "token" | "api_key" | "ci_hook";
  apiKeyId?: string;
}

export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** The caller's address from the platform's trusted header, as Postgres's inet prints it; null when unknown. */
    clientAddress: string | null;
    services: Services;
    principal?: Principal;
    /** The principal bucket's answer when authenticate took from it already (middleware/rateLimit.ts). */
    principalWaitMs?: number;
    /** Set once a route's change and its audit row committed together. */
    audited?: boolean;
    /** Set once the QStash signature verified: the job routers' middleware can match one request twice. */
    qstashVerified?: boolean;
  };
}
