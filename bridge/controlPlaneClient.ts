/**
 * The bridge's one HTTP client for the control plane: every request is a
 * signed Standard Webhook POST (a NEW webhook-id and timestamp per attempt,
 * since the control plane refuses a seen id as a replay), and every caller
 * gets the same retry rules:
 * - network errors, timeouts, 5xx, 429 and 408 are retried with full-jitter
 *   backoff (backoff.ts), waiting at least what a Retry-After header asks
 *   (capped by the policy's cap);
 * - any other 4xx is final: retrying a refused signature or a bad body cannot help.
 *
 * p-retry runs the attempts (counting, stop on a final answer, rethrowing the
 * last problem); the wait between attempts is ours, because p-retry knows
 * neither full jitter nor Retry-After.
 */
import pRetry, { AbortError } from "p-retry";
import { controlPlaneUrl } from "../protocol/paths.ts";
import { webhookHeaders } from "../protocol/webhooks.ts";
import { backoffDelay, sleep, type BackoffPolicy } from "./backoff.ts";
import { errorMessage } from "./log.ts";

export interface RetryPolicy extends BackoffPolicy {
  /** Attempts in all, the first included; Infinity retries until the signal aborts. */
  attempts: number;
}

export interface ControlPlaneClientOptions {
  /** The control plane's base URL. */
  api: string;
  /** The cluster's webhook secret (whsec_...). */
  secret: string;
  /** Per attempt (default 15 s). */
  requestTimeoutMs?: number;
}

export interface PostOptions {
  retry: RetryPolicy;
  /** Aborting stops the attempt in flight and any wait: the post rejects with Undelivered (aborted). */
  signal?: AbortSignal;
  /** Before each wait: `attempt` attempts were made so far, the next comes after `delayMs`. */
  onRetry?: (retry: { attempt: number; delayMs: number; problem: string }) => void;
  /** After every attempt, with its round-trip time (benchmarks). */
  onAttempt?: (attempt: { ms: number; outcome: "delivered" | "retry" | "refused" }) => void;
}

/** What the control plane answered to an accepted request. */
export interface Accepted {
  status: number;
  text: string;
}

/** The control plane answered a final 4xx. */
export class Refused extends Error {
  constructor(readonly status: number, readonly code: string, readonly text: string) {
    super(`HTTP ${status} ${code}`);
    this.name = "Refused";
  }
}

/** Given up: attempts exhausted, or the signal aborted. */
export class Undelivered extends Error {
  constructor(readonly attempts: number, readonly problem: string, readonly aborted: boolean) {
    super(aborted ? `not sent: aborted (${problem || "before the first attempt"})` : `given up after ${attempts} attempt(s): ${problem}`);
    this.name = "Undelivered";
  }
}

class Transient extends Error {
  constructor(readonly problem: string, readonly retryAfterMs?: number) {
    super(problem);
    this.name = "Transient";
  }
}

export class ControlPlaneClient {
  constructor(private readonly opts: ControlPlaneClientOptions) {}

  /** POSTs `body` (JSON text) to `path` (see protocol/paths.ts bridgePaths), signed. */
  async post(path: string, body: string, options: PostOptions): Promise<Accepted> {
    const url = controlPlaneUrl(this.opts.api, path);
    const { retry, signal } = options;
    let attempts = 0;
    let problem = "";
    try {
      return await pRetry(async () => {
        if (signal?.aborted) throw new AbortError(new Undelivered(attempts, problem, true));
        attempts++;
        const t0 = performance.now();
        try {
          const accepted = await this.attempt(url, body, signal);
          options.onAttempt?.({ ms: performance.now() - t0, outcome: "delivered" });
          return accepted;
        } catch (err) {
          options.onAttempt?.({ ms: performance.now() - t0, outcome: err instanceof Refused ? "refused" : "retry" });
          if (err instanceof Refused) throw new AbortError(err);
          problem = (err as Transient).problem;
          throw err;
        }
      }, {
        retries: retry.attempts - 1,
        // The wait is ours (onFailedAttempt); p-retry's own would come on top of it.
        minTimeout: 0,
        maxTimeout: 0,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (!(error instanceof Transient) || retriesLeft <= 0 || signal?.aborted) return;
          const delayMs = Math.max(backoffDelay(attemptNumber - 1, retry), Math.min(error.retryAfterMs ?? 0, retry.capMs));
          options.onRetry?.({ attempt: attemptNumber, delayMs, problem: error.problem });
          await sleep(delayMs, signal);
        },
      });
    } catch (err) {
      if (err instanceof Refused || err instanceof Undelivered) throw err;
      if (err instanceof Transient) throw new Undelivered(attempts, err.problem, Boolean(signal?.aborted));
      throw err;
    }
  }

  private async attempt(url: string, body: string, signal: AbortSignal | undefined): Promise<Accepted> {
    let res: Response;
    try {
      const headers = await webhookHeaders(this.opts.secret, body);
      res = await fetch(url, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
        signal: withTimeout(this.opts.requestTimeoutMs ?? 15_000, signal),
      });
    } catch (err) {
      throw new Transient(`cannot reach the control plane (${errorMessage(err)})`);
    }
    const text = await res.text().catch(() => "");
    if (res.ok) return { status: res.status, text };
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      const wait = retryAfterMs(res.headers.get("retry-after"));
      throw new Transient(`HTTP ${res.status} ${errorCode(text)}`, wait);
    }
    throw new Refused(res.status, errorCode(text), text);
  }
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return seconds > 0 ? seconds * 1000 : undefined;
  const at = Date.parse(header);
  return Number.isFinite(at) && at > now ? at - now : undefined;
}

export function withTimeout(ms: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

/** The API's error code when the body is an API error, otherwise a short excerpt. */
export function errorCode(text: string): string {
  let body: { error?: { code?: unknown } } | undefined;
  try { body = JSON.parse(text) as typeof body; } catch { body = undefined; }
  const code = body?.error?.code;
  return typeof code === "string" ? code : text.slice(0, 120);
}
