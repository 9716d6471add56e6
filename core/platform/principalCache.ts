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
import type { KvOp, KvResults, KvStore } from "./kv.ts";

export const PRINCIPAL_CACHE_TTL_SECONDS = 60;
const STALE = "stale";

export type PrincipalSubject = { userId: string } | { role: string } | { apiKeyHash: string };

const keyOf = (s: PrincipalSubject) =>
  "userId" in s ? `principal:v1:user:${s.userId}` : "role" in s ? `principal:v1:role:${s.role}` : `principal:v1:key:${s.apiKeyHash}`;

/** The KV key of a subject's entry: a key tagged `{<this>}` lives on its shard (kv.ts shardOf), so both go in one batch. */
export const principalCacheKey = keyOf;

/**
 * The cached value of `subject`, or `load()`'s (then cached unless the subject
 * changed within the TTL). `undefined` from load (no such row) is not cached.
 * A KV that does not answer degrades to the database, never to an error.
 */
export async function cachedPrincipalPart<T>(kv: KvStore, subject: PrincipalSubject, load: () => Promise<T | undefined>): Promise<T | undefined> {
  const key = keyOf(subject);
  return fromHit(kv, key, await kv.get(key).catch(() => STALE), load);
}

/** What a cache read found (`STALE` also when the KV did not answer) turned into the value: the entry, or load()'s, cached unless stale. */
async function fromHit<T>(kv: KvStore, key: string, hit: string | null, load: () => Promise<T | undefined>): Promise<T | undefined> {
  if (hit !== null && hit !== STALE) return JSON.parse(hit) as T;
  const value = await load();
  if (hit === null && value !== undefined) {
    await kv.set(key, JSON.stringify(value), { nx: true, ex: PRINCIPAL_CACHE_TTL_SECONDS }).catch(() => false);
  }
  return value;
}

/**
 * cachedPrincipalPart, with `alongside` sent in the same KV round trip as the cache read (the
 * request's rate-limit take, middleware/authenticate.ts). `alongside` is null when that round trip
 * failed: the entry then comes from the database as above and the caller sends its commands
 * itself, so a KV failure behaves exactly as without the batch.
 */
export async function cachedPrincipalPartWith<T, const A extends readonly KvOp[]>(
  kv: KvStore, subject: PrincipalSubject, load: () => Promise<T | undefined>, alongside: A,
): Promise<{ value: T | undefined; alongside: KvResults<A> | null }> {
  const key = keyOf(subject);
  const answers = await kv.batch([{ op: "get", key }, ...alongside] as const).catch(() => null);
  const hit = answers ? (answers[0] as string | null) : STALE;
  return { value: await fromHit(kv, key, hit, load), alongside: answers ? (answers.slice(1) as KvResults<A>) : null };
}

/** Call after the change committed: the next request of anyone it affects reads the database. */
export async function forgetPrincipal(kv: KvStore, ...subjects: PrincipalSubject[]): Promise<void> {
  await Promise.all(subjects.map((s) => kv.set(keyOf(s), STALE, { ex: PRINCIPAL_CACHE_TTL_SECONDS })));
}
