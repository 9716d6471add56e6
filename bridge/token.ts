/**
 * Cluster tokens for the command channel. The bridge proves itself with a
 * request signed by the cluster's webhook secret and gets a short-lived JWT
 * back; the long-lived secret never travels. A token is reused while it has
 * comfortably long to live, so a reconnect storm does not hammer the token
 * endpoint, and refreshed before it expires, so an upgrade never races expiry.
 */
import { z } from "zod";
import { webhookHeaders } from "../protocol/webhooks.ts";

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

  constructor(private readonly opts: TokenSourceOptions) {}

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

  private async request(signal?: AbortSignal): Promise<{ token: string; expiresAt: number }> {
    const url = `${this.opts.api}/api/clusters/${encodeURIComponent(this.opts.clusterId)}/token`;
    const body = JSON.stringify({ bridgeVersion: this.opts.bridgeVersion });
    const headers = await webhookHeaders(this.opts.secret, body);
    const res = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body,
      signal: withTimeout(this.opts.requestTimeoutMs ?? 15_000, signal),
    });
    const text = await res.text();
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(
        `control plane refused the token request (${res.status} ${errorCode(text)}): ` +
          "check the cluster id and the cluster secret (--secret-file / REDFORGE_CLUSTER_SECRET), and that this host's clock is right",
        res.status,
      );
    }
    if (!res.ok) throw new Error(`token request failed: HTTP ${res.status} ${errorCode(text)}`);
    const parsed = tokenResponse.safeParse(safeJson(text));
    if (!parsed.success) throw new Error("token response does not have {token, expiresAt}");
    return { token: parsed.data.token, expiresAt: Date.parse(parsed.data.expiresAt) };
  }
}

export function withTimeout(ms: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return undefined; }
}

/** The API's error code when the body is an API error, otherwise a short excerpt. */
export function errorCode(text: string): string {
  const body = safeJson(text) as { error?: { code?: unknown } } | undefined;
  const code = body?.error?.code;
  return typeof code === "string" ? code : text.slice(0, 120);
}
