/**
 * Failed logins per username, counted in the KV store (Upstash Redis or its
 * Durable Object stand-in) so every isolate sees the same numbers. The window
 * opens at the first failure and only expiry closes it: a success does not
 * reset it, so guessing between the owner's own logins gains nothing.
 */
import type { KvStore } from "../../core/platform/kv.ts";

export const MAX_FAILURES = 5;
export const WINDOW_SECONDS = 15 * 60;

// Usernames are encoded so one cannot collide with another's key.
const countKey = (username: string) => `login:fail:${encodeURIComponent(username)}`;
const startKey = (username: string) => `login:fail-start:${encodeURIComponent(username)}`;

/** Seconds until the window ends when the username is locked, else null. */
export async function lockedFor(kv: KvStore, username: string, now = Date.now()): Promise<number | null> {
  const [count, start] = await Promise.all([kv.get(countKey(username)), kv.get(startKey(username))]);
  if (Number(count ?? 0) < MAX_FAILURES) return null;
  const started = Number(start);
  // No start stamp (lost or expired a moment before the counter): a full window is the safe answer.
  const left = Number.isFinite(started) && started > 0 ? Math.ceil((started + WINDOW_SECONDS * 1000 - now) / 1000) : WINDOW_SECONDS;
  return Math.min(WINDOW_SECONDS, Math.max(1, left));
}

/** Records one failure; the stamp is set only by the first one (NX), both keys expire with the window. */
export async function recordFailure(kv: KvStore, username: string, now = Date.now()): Promise<number> {
  await kv.set(startKey(username), String(now), { nx: true, ex: WINDOW_SECONDS });
  return kv.incr(countKey(username), WINDOW_SECONDS);
}
