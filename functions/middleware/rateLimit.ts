/**
 * API rate limit: a token bucket per client address (before anything else
 * runs, anonymous callers included) and one per principal (after
 * authenticate: a user's sessions share one, each API key has its own), kept
 * in the KV so every isolate draws from the same bucket. The defaults are
 * far above what a console or CI needs and what the test suites send; they
 * exist to stop a runaway script or a flood, not to meter use.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../core/app-env.ts";
import type { Env } from "../../core/env.ts";
import { ApiError } from "../../core/errors.ts";
import { principalCacheKey } from "../../core/platform/principalCache.ts";

export interface RateLimit {
  perSecond: number;
  burst: number;
}

export const DEFAULT_PRINCIPAL_LIMIT: RateLimit = { perSecond: 50, burst: 3000 };
export const DEFAULT_CLIENT_LIMIT: RateLimit = { perSecond: 100, burst: 6000 };

/** "<requests per second>:<burst>"; "0" or "off" turns the limit off; anything unreadable keeps the default. */
export function parseRateLimit(text: string | undefined, fallback: RateLimit): RateLimit | null {
  if (text === undefined || text.trim() === "") return fallback;
  if (/^\s*(0|off)\s*$/i.test(text)) return null;
  const [rate, burst] = text.split(":").map((p) => Number(p.trim()));
  return rate !== undefined && burst !== undefined && rate > 0 && Number.isFinite(rate) && Number.isInteger(burst) && burst >= 1
    ? { perSecond: rate, burst }
    : fallback;
}

function refuseIfEmpty(waitMs: number, who: string): void {
  if (waitMs === 0) return;
  const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
  throw new ApiError(429, "rate_limited", `too many requests from ${who}; retry in ${retryAfter} s`, { retryAfter }, { "Retry-After": String(retryAfter) });
}

async function takeOrRefuse(c: Context<AppEnv>, key: string, limit: RateLimit | null, who: string): Promise<void> {
  if (!limit) return;
  refuseIfEmpty(await c.var.services.kv.take(key, limit.perSecond, limit.burst), who);
}

/**
 * The take from a principal's bucket, as a KV command; null when the limit is off. A user's bucket
 * carries the hash tag of the user's principal-cache entry, so authenticate sends this take in the
 * same KV round trip as its cache read (one Durable Object call instead of two per request).
 */
export function principalTake(env: Env, p: { userId: string; apiKeyId?: string }) {
  const limit = parseRateLimit(env.REDFORGE_RATE_LIMIT_PRINCIPAL, DEFAULT_PRINCIPAL_LIMIT);
  if (!limit) return null;
  const key = p.apiKeyId ? `rl:key:${p.apiKeyId}` : `rl:user:{${principalCacheKey({ userId: p.userId })}}`;
  return { op: "take", key, perSecond: limit.perSecond, burst: limit.burst } as const;
}

/** Per client address; without a trusted address (development) there is no client bucket. */
export const limitByClient = createMiddleware<AppEnv>(async (c, next) => {
  const address = c.var.clientAddress;
  if (address) await takeOrRefuse(c, `rl:client:${address}`, parseRateLimit(c.env.REDFORGE_RATE_LIMIT_CLIENT, DEFAULT_CLIENT_LIMIT), "this address");
  await next();
});

/** Per principal; mounted after authenticate, which may already have taken from the bucket (`principalWaitMs`). */
export const limitByPrincipal = createMiddleware<AppEnv>(async (c, next) => {
  const p = c.var.principal;
  const take = p && principalTake(c.env, p);
  if (take) refuseIfEmpty(c.var.principalWaitMs ?? await c.var.services.kv.take(take.key, take.perSecond, take.burst), "this caller");
  await next();
});
