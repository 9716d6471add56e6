/**
 * LLM tokens a team used per UTC day, counted in Redis (or the KV Durable
 * Object) as AI decision records arrive: key `llm-tokens:{team}:{YYYY-MM-DD}`.
 * The quota check reads the same key, so a budget reacts within one webhook.
 */
import type { KvStore } from "../platform/kv.ts";

// Two days: the counter outlives its UTC day long enough for late reads, then goes.
const COUNTER_TTL_SECONDS = 2 * 24 * 60 * 60;

export function tokenCounterKey(team: string, at: Date): string {
  return `llm-tokens:${team}:${at.toISOString().slice(0, 10)}`;
}

/** Adds `n` tokens to the team's counter for the UTC day of `at`; returns the day's total. */
export async function addTokens(kv: KvStore, team: string, n: number, at: Date): Promise<number> {
  if (n <= 0) return tokensUsed(kv, team, at);
  return kv.incrBy(tokenCounterKey(team, at), Math.round(n), COUNTER_TTL_SECONDS);
}

/** Tokens the team used on the UTC day of `at` (0 when nothing was counted). */
export async function tokensUsed(kv: KvStore, team: string, at: Date): Promise<number> {
  const value = await kv.get(tokenCounterKey(team, at));
  const n = value === null ? 0 : Number(value);
  return Number.isFinite(n) ? n : 0;
}
