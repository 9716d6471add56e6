/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff and Jitter"): the delay is uniform in [0, min(cap, base·2^attempt)].
 * Full jitter spreads a fleet of bridges that lost the control plane at the
 * same moment, so they do not all come back in the same instant.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  /** Source of jitter in [0, 1); tests pin it to make delays exact. */
  random?: () => number;
}

export const LINK_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 30_000 };

export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = policy.random ?? Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * ceiling);
}

/** Resolves after `ms`, or early (without error) when `signal` aborts: shutdown must never wait out a backoff. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
