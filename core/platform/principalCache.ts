/**
 * What authentication reads on every request (a user's role, disabled flag
 * and sessions-valid-after; a custom role's permissions; an API key's row),
 * cached in the KV for a short TTL so the hot path reads no Postgres row.
 *
 * A change must still take effect at once, across isolates, and a request
 * that read the old row just before the change commits must not put it back:
 * every route that changes one of these writes a "stale" marker over the
 * entry after its transaction commits (forgetPrincipal), and a reader fills
 * the cache only with SET NX. Under the marker (one TTL) readers go to the
 * database and cannot fill; a fill that raced the change either landed
 * before the marker (overwritten) or after it (refused by NX).
 */
import type { KvStore } from "./kv.ts";

export const PRINCIPAL_CACHE_TTL_SECONDS = 60;
const STALE = "stale";

export type PrincipalSubject = { userId: string } | { role: string } | { apiKeyHash: string };

const keyOf = (s: PrincipalSubject) =>
  "userId" in s ? `principal:v1:user:${s.userId}` : "role" in s ? `principal:v1:role:${s.role}` : `principal:v1:key:${s.apiKeyHash}`;

/**
 * The cached value of `subject`, or `load()`'s (then cached unless the subject
 * changed within the TTL). `undefined` from load (no such row) is not cached.
 * A KV that does not answer degrades to the database, never to an error.
 */
export async function cachedPrincipalPart<T>(kv: KvStore, subject: PrincipalSubject, load: () => Promise<T | undefined>): Promise<T | undefined> {
  const key = keyOf(subject);
  const hit = await kv.get(key).catch(() => STALE);
  if (hit !== null && hit !== STALE) return JSON.parse(hit) as T;
  const value = await load();
  if (hit === null && value !== undefined) {
    await kv.set(key, JSON.stringify(value), { nx: true, ex: PRINCIPAL_CACHE_TTL_SECONDS }).catch(() => false);
  }
  return value;
}

/** Call after the change committed: the next request of anyone it affects reads the database. */
export async function forgetPrincipal(kv: KvStore, ...subjects: PrincipalSubject[]): Promise<void> {
  await Promise.all(subjects.map((s) => kv.set(keyOf(s), STALE, { ex: PRINCIPAL_CACHE_TTL_SECONDS })));
}
