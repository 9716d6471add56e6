/**
 * One delivery attempt: sign the body the way QStash does and send it to the
 * (loopback) destination. The signature is what `Receiver.verify` checks: an
 * HS256 JWT over the raw signing-key bytes with iss "Upstash", sub = the
 * destination URL, a 5-minute lifetime and body = base64url(SHA-256(body)).
 */
import crypto from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { SignJWT } from "jose";
import { isLoopbackHost } from "./parse.ts";
import type { AttemptResult, StoredMessage } from "./types.ts";

const SIGNATURE_TTL_S = 5 * 60;
const MAX_CAPTURED_BODY = 1 << 20;
const MAX_RETRY_AFTER_MS = 86_400_000;

export async function signDelivery(signingKey: string, url: string, body: Buffer, nowMs = Date.now()): Promise<string> {
  const now = Math.floor(nowMs / 1000);
  const bodyHash = crypto.createHash("sha256").update(body).digest("base64url");
  return new SignJWT({ body: bodyHash })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("Upstash")
    .setSubject(url)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + SIGNATURE_TTL_S)
    .setJti(`jwt_${crypto.randomBytes(12).toString("base64url")}`)
    .sign(new TextEncoder().encode(signingKey));
}

// "localhost" must not reach DNS: pin it to the loopback addresses so nothing
// ever leaves the machine, and offer both families so a server bound to either works.
const loopbackLookup = ((hostname: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
  if (!isLoopbackHost(hostname)) {
    cb(Object.assign(new Error(`refusing to resolve non-loopback host ${hostname}`), { code: "ENOTFOUND" }));
    return;
  }
  const all = [
    { address: "127.0.0.1", family: 4 },
    { address: "::1", family: 6 },
  ];
  if (options?.all) cb(null, all);
  else cb(null, "127.0.0.1", 4);
}) as unknown as LookupFunction;

export interface Transport {
  http: http.Agent;
  https: https.Agent;
}
export function createTransport(): Transport {
  return { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
}
export function destroyTransport(t: Transport): void {
  t.http.destroy();
  t.https.destroy();
}

/** Retry-After & friends: seconds, an HTTP date, or a Go-style duration such as "6m5s". */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };
    ms = 0;
    for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  } else {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) ms = Math.max(0, t - nowMs);
  }
  // Beyond a day QStash falls back to its own backoff.
  return ms !== undefined && ms <= MAX_RETRY_AFTER_MS ? Math.round(ms) : undefined;
}

export async function attemptDelivery(
  msg: StoredMessage,
  signingKey: string,
  transport: Transport,
  signal: AbortSignal,
): Promise<AttemptResult> {
  const url = new URL(msg.url);
  // Checked at publish too; this also covers a hand-edited state file (IP literals skip the lookup guard).
  if (!isLoopbackHost(url.hostname)) return { ok: false, error: `refusing to deliver to non-loopback host ${url.hostname}` };
  const headers: Record<string, string> = {
    ...msg.headers,
    "User-Agent": "Upstash-QStash",
    "Upstash-Signature": await signDelivery(signingKey, msg.url, msg.body),
    "Upstash-Message-Id": msg.messageId,
    "Upstash-Retried": String(msg.retried),
    "Content-Length": String(msg.body.length),
  };
  if (msg.scheduleId) headers["Upstash-Schedule-Id"] = msg.scheduleId;
  const isHttps = url.protocol === "https:";
  const timeout = AbortSignal.timeout(msg.timeoutMs);
  const both = AbortSignal.any([signal, timeout]);

  return new Promise<AttemptResult>((resolve) => {
    const req = (isHttps ? https : http).request(
      url,
      { method: msg.method, headers, agent: isHttps ? transport.https : transport.http, lookup: loopbackLookup, signal: both },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          if (size < MAX_CAPTURED_BODY) chunks.push(c);
          size += c.length;
        });
        res.on("error", (err) => resolve({ ok: false, error: err.message }));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const respHeaders: Record<string, string[]> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) respHeaders[k] = Array.isArray(v) ? v : [v];
          }
          const ok = status >= 200 && status < 300;
          const h = (n: string) => res.headers[n] as string | undefined;
          const retryAfterMs = ok
            ? undefined
            : (parseRetryAfter(h("retry-after"), Date.now()) ??
              parseRetryAfter(h("x-ratelimit-reset"), Date.now()) ??
              parseRetryAfter(h("x-ratelimit-reset-requests"), Date.now()) ??
              parseRetryAfter(h("x-ratelimit-reset-tokens"), Date.now()));
          resolve({
            ok,
            status,
            headers: respHeaders,
            body: Buffer.concat(chunks).subarray(0, MAX_CAPTURED_BODY),
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
            ...(status === 489 && h("upstash-nonretryable-error") === "true" ? { nonRetryable: true } : {}),
          });
        });
      },
    );
    req.on("error", (err) => {
      const why = timeout.aborted ? `timed out after ${msg.timeoutMs} ms` : err.message;
      resolve({ ok: false, error: why });
    });
    req.end(msg.body);
  });
}
