/**
 * Cluster tokens for the command channel. The bridge proves itself with a
 * request signed by the cluster's webhook secret and gets a short-lived JWT
 * back; the long-lived secret never travels. A token is reused while it has
 * comfortably long to live, so a reconnect storm does not hammer the token
 * endpoint, and refreshed before it expires, so an upgrade never races expiry.
 */
import { z } from "zod";
import { bridgePaths } from "../protocol/paths.ts";
import { ControlPlaneClient, Refused, Undelivered } from "./controlPlaneClient.ts";

const tokenResponse = z.object({ token: z.string().min(1), expiresAt: z.iso.datetime() });

/** The control plane refused our credentials: retrying soon will not help, a human must look. */
export class AuthError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = "AuthError";
  }
}

export interface TokenSourceOptions {
  api: string;
  clusterId: string;
  secret: string;
  bridgeVersion: string;
  /** Refresh when less than this is left (default 60 s). */
  refreshMarginMs?: number;
  requestTimeoutMs?: number;
}

export class TokenSource {
  private cached?: { token: string; expiresAt: number };
  private readonly client: ControlPlaneClient;

  constructor(private readonly opts: TokenSourceOptions) {
    this.client = new ControlPlaneClient({ api: opts.api, secret: opts.secret, ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}) });
  }

  async get(signal?: AbortSignal): Promise<string> {
    const margin = this.opts.refreshMarginMs ?? 60_000;
    if (this.cached && this.cached.expiresAt - Date.now() > margin) return this.cached.token;
    this.cached = await this.request(signal);
    return this.cached.token;
  }

  /** Drops the cached token (the link refused it: maybe the control plane's signing key changed). */
  invalidate(): void {
    this.cached = undefined;
  }

  /**
   * One attempt: the link's reconnect loop is the retry (with its own backoff
   * and log line), so a token request never waits out a second backoff inside it.
   */
  private async request(signal?: AbortSignal): Promise<{ token: string; expiresAt: number }> {
    const body = JSON.stringify({ bridgeVersion: this.opts.bridgeVersion });
    let text: string;
    try {
      ({ text } = await this.client.post(bridgePaths.token(this.opts.clusterId), body, { retry: { attempts: 1, baseMs: 0, capMs: 0 }, ...(signal ? { signal } : {}) }));
    } catch (err) {
      if (err instanceof Refused && (err.status === 401 || err.status === 403)) {
        throw new AuthError(
          `control plane refused the token request (${err.status} ${err.code}): ` +
            "check the cluster id and the cluster secret (--secret-file / REDFORGE_CLUSTER_SECRET), and that this host's clock is right",
          err.status,
        );
      }
      if (err instanceof Refused || err instanceof Undelivered) throw new Error(`token request failed: ${err instanceof Refused ? err.message : err.problem}`);
      throw err;
    }
    const parsed = tokenResponse.safeParse(safeJson(text));
    if (!parsed.success) throw new Error("token response does not have {token, expiresAt}");
    return { token: parsed.data.token, expiresAt: Date.parse(parsed.data.expiresAt) };
  }
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return undefined; }
}
