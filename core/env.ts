import type { ClusterLinkApi, DeploymentRunApi, FleetEventsApi, KvStoreApi, MetricsSinkApi, RolloutRunApi, WatcherShardApi } from "./objects.ts";

/** Every binding and variable the Worker reads, declared once (see wrangler.toml). */
export interface Env {
  /** "production" (the default in wrangler.toml) or "development" (set by `npm start`). */
  ENVIRONMENT?: string;
  DATABASE_URL?: string;
  /** Dev only: host:port of dev/neon-relay, which speaks Neon's protocols to a local Postgres. */
  NEON_LOCAL_PROXY?: string;
  JWT_SECRET?: string;
  JWT_TTL_SECONDS?: string;
  REDFORGE_ADMIN_PASSWORD?: string;
  /** base64 of 32 bytes; seals cluster webhook secrets and instance secrets (AES-GCM). */
  REDFORGE_ENCRYPTION_KEY?: string;
  /** Comma-separated older keys that still open values sealed under them (key rotation). */
  REDFORGE_ENCRYPTION_KEYS_PREVIOUS?: string;
  /** HMAC-SHA256 key that signs audit checkpoints written by retention purges. */
  REDFORGE_AUDIT_CHECKPOINT_KEY?: string;
  UPSTASH_REDIS_REST_URL?: string;
  UPSTASH_REDIS_REST_TOKEN?: string;
  QSTASH_URL?: string;
  QSTASH_TOKEN?: string;
  QSTASH_CURRENT_SIGNING_KEY?: string;
  QSTASH_NEXT_SIGNING_KEY?: string;
  /**
   * "true": trust CF-Connecting-IP outside production too. Production always trusts it (Cloudflare
   * sets it); `wrangler dev` passes on whatever the client sent, so development ignores it by default.
   */
  REDFORGE_TRUST_CLIENT_IP?: string;
  /** API rate limit per principal / per client address: "<requests per second>:<burst>", "0" turns it off. */
  REDFORGE_RATE_LIMIT_PRINCIPAL?: string;
  REDFORGE_RATE_LIMIT_CLIENT?: string;
  /** Where QStash and bridges reach this Worker. */
  PUBLIC_URL?: string;
  /** Multiplies every deployment step's deadline (0.5–20, default 1) for slow clusters; core/deployments/timeouts.ts. */
  REDFORGE_DEPLOY_TIMEOUT_SCALE?: string;
  /**
   * A bearer token Prometheus may scrape GET /metrics with (at least 32 characters), for setups
   * that do not want an API key; an API key or session with metrics:read always works.
   */
  REDFORGE_METRICS_TOKEN?: string;
  /**
   * "true" with ENVIRONMENT=development: alert channels may point at loopback and private addresses
   * (local receivers in tests and `npm start`). Production always refuses them (core/alerts/channelUrl.ts).
   */
  REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE?: string;
  /** "off": API requests are not timed into redforge_http_request_duration_seconds (bench/observability compares both). */
  REDFORGE_REQUEST_METRICS?: string;
  /**
   * Watchers one Durable Object holds before the next goes to a WatcherShard (/ws/fleet,
   * /ws/deployments/:id; durable/watcherShards.ts): an integer 1–100000, default 500.
   */
  REDFORGE_WATCHERS_PER_OBJECT?: string;
  KV_STORE: DurableObjectNamespace<KvStoreApi>;
  CLUSTER_LINK: DurableObjectNamespace<ClusterLinkApi>;
  FLEET_EVENTS: DurableObjectNamespace<FleetEventsApi>;
  DEPLOYMENT_RUN: DurableObjectNamespace<DeploymentRunApi>;
  METRICS: DurableObjectNamespace<MetricsSinkApi>;
  ROLLOUTS: DurableObjectNamespace<RolloutRunApi>;
  /** Overflow watchers of /ws/fleet and /ws/deployments/:id (durable/watcherShards.ts). */
  WATCHER_SHARDS: DurableObjectNamespace<WatcherShardApi>;
  ASSETS?: Fetcher;
  /** Compliance reports (R2; emulated locally by Miniflare / wrangler dev). */
  REPORTS: R2Bucket;
}
