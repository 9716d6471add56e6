/**
 * Login throttling, counted in the KV store (Upstash Redis or its Durable
 * Object stand-in) so every isolate sees the same numbers. An attempt is
 * reserved with one atomic INCR per bucket before the password is checked, so
 * parallel guesses cannot all pass a count read before any was recorded.
 *
 * Buckets: (username, client address), so an attacker elsewhere cannot lock a
 * user out; and the client address alone, so one address cannot spray a
 * password across usernames. A window opens at its first failure and only
 * expiry closes it; a successful login releases its own reservation but
 * forgives nothing, so guessing between the owner's logins gains nothing.
 * Without a known address (development without REDFORGE_TRUST_CLIENT_IP) only
 * the username bucket counts.
 */
import type { KvStore } from "../../core/platform/kv.ts";

export const MAX_FAILURES = 5;
export const MAX_CLIENT_FAILURES = 30;
export const WINDOW_SECONDS = 15 * 60;

interface Bucket {
  key: string;
  max: number;
}

/** Keys are digests: any string a username can be (separators, lone surrogates, 255 characters) makes one fixed-size key. */
async function keyOf(kind: string, ...parts: string[]): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(parts));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `login:${kind}:${[...digest].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function bucketsFor(username: string, client: string | null): Promise<Bucket[]> {
  const buckets = [{ key: await keyOf("user", username, client ?? "unknown"), max: MAX_FAILURES }];
  if (client !== null) buckets.push({ key: await keyOf("client", client), max: MAX_CLIENT_FAILURES });
  return buckets;
}

export interface LoginAttempt {
  /** Seconds until the fullest bucket's window ends when the attempt is refused, else null. */
  retryAfter: number | null;
  /** Gives the reservation back: for a login that succeeded (a failure keeps it). */
  release(): Promise<void>;
}

/** Reserves one attempt in every bucket; refused (and given back) when any bucket is past its limit. */
export async function reserveLoginAttempt(kv: KvStore, username: string, client: string | null, now = Date.now()): Promise<LoginAttempt> {
  const buckets = await bucketsFor(username, client);
  const counts = await Promise.all(buckets.map(async (b) => {
    await kv.set(`${b.key}:start`, String(now), { nx: true, ex: WINDOW_SECONDS });
    return kv.incr(b.key, WINDOW_SECONDS);
  }));
  const release = async () => {
    await Promise.all(buckets.map((b) => kv.incrBy(b.key, -1, WINDOW_SECONDS)));
  };
  const full = buckets.filter((b, i) => counts[i]! > b.max);
  if (full.length === 0) return { retryAfter: null, release };
  await release();
  const waits = await Promise.all(full.map(async (b) => secondsLeft(await kv.get(`${b.key}:start`), now)));
  return { retryAfter: Math.max(...waits), release: async () => {} };
}

function secondsLeft(start: string | null, now: number): number {
  const started = Number(start);
  // No start stamp (lost or expired a moment before the counter): a full window is the safe answer.
  const left = Number.isFinite(started) && started > 0 ? Math.ceil((started + WINDOW_SECONDS * 1000 - now) / 1000) : WINDOW_SECONDS;
  return Math.min(WINDOW_SECONDS, Math.max(1, left));
}
