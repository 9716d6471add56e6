/**
 * Streams (/ws/fleet, /ws/audit, /ws/deployments/:id, /ws/rollouts/:id; durable/watchers.ts) re-check their watchers' access:
 * each socket remembers who opened it and when; the users and API key routes
 * mark a principal whose access changed (disabled, role changed, password
 * changed, deleted, key revoked) in the KV; before an event goes out, a
 * socket opened before its principal's mark is closed with 4401 instead. The
 * watcher reconnects and passes authenticate again, or does not.
 */
import type { KvStore } from "./kv.ts";

export const ACCESS_REVOKED_CLOSE_CODE = 4401;
const WATCHER_HEADER = "X-RedForge-Watcher";
// Longer than any socket is expected to stay open; a socket older than its mark's expiry is not re-checked.
const MARK_TTL_SECONDS = 30 * 86_400;

export interface PrincipalRef {
  userId: string;
  apiKeyId?: string;
}

export interface Watcher extends PrincipalRef {
  openedAt: number;
  /**
   * Permissions (`resource:action`) the principal held when the socket opened, for events a stream sends
   * only to some watchers (`fleet:alert` needs `alerts:read`). A role change closes the socket (above), so
   * they cannot go stale while it is open.
   */
  grants?: string[];
}

/** The KV keys whose marks close a watcher of this principal. */
export const markKeys = (p: PrincipalRef) => [`access-changed:user:${p.userId}`, ...(p.apiKeyId ? [`access-changed:key:${p.apiKeyId}`] : [])];

/** Sockets of this user (or only of this key) opened before now close at their next event. */
export async function markAccessChanged(kv: KvStore, change: { userId: string } | { apiKeyId: string }, now = Date.now()): Promise<void> {
  const key = "userId" in change ? `access-changed:user:${change.userId}` : `access-changed:key:${change.apiKeyId}`;
  await kv.set(key, String(now), { ex: MARK_TTL_SECONDS });
}

/** The upgrade request passed to a stream's object, carrying the authenticated principal (a client's own header is replaced). */
export function asWatcherRequest(request: Request, p: PrincipalRef, grants: string[] = []): Request {
  const headers = new Headers(request.headers);
  headers.set(WATCHER_HEADER, JSON.stringify({ userId: p.userId, ...(p.apiKeyId ? { apiKeyId: p.apiKeyId } : {}), ...(grants.length ? { grants } : {}) }));
  return new Request(request, { headers });
}

/** Whether a socket's watcher may receive an event that needs `grant` (an event that needs none goes to every watcher). */
export function watcherMay(w: Watcher | null, grant: string | undefined): boolean {
  return !grant || Boolean(w?.grants?.includes(grant));
}

/** What a stream's object attaches to the socket it accepts. */
export function watcherOf(request: Request, now = Date.now()): Watcher | null {
  try {
    const p = JSON.parse(request.headers.get(WATCHER_HEADER) ?? "null") as (PrincipalRef & { grants?: unknown }) | null;
    if (!p || typeof p.userId !== "string") return null;
    const grants = Array.isArray(p.grants) ? p.grants.filter((g): g is string => typeof g === "string").slice(0, 20) : [];
    return { userId: p.userId, ...(typeof p.apiKeyId === "string" ? { apiKeyId: p.apiKeyId } : {}), ...(grants.length ? { grants } : {}), openedAt: now };
  } catch {
    return null;
  }
}
