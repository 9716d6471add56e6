/**
 * Request parsing for the QStash emulator: durations, destinations, cron and
 * the Upstash-* publish headers. Everything here throws ApiError(400) on bad
 * input so the API answers with a message instead of crashing.
 */
import crypto from "node:crypto";
import { CronExpressionParser } from "cron-parser";
import { compileRetryDelay } from "./retry-delay.ts";
import { ApiError, HTTP_METHODS, type DeliverySpec, type HttpMethod } from "./types.ts";

export const DEFAULT_RETRIES = 3;
/** The free plan's response-time limit; long enough that only a hung handler hits it. */
export const DEFAULT_TIMEOUT_MS = 15 * 60_000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "10s", "2m", "1h30m", "500ms" → milliseconds. QStash wants a unit, so a bare number is refused. */
export function parseDuration(value: string, what: string): number {
  const v = value.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(v)) {
    throw new ApiError(400, `invalid ${what} "${value}": use a number with a unit, e.g. 10s, 2m, 1h, 1d`);
  }
  let total = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(total);
}

const LOOPBACK_NAMES = new Set(["localhost", "[::1]"]);
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_NAMES.has(hostname.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * The destination as it appears after /v2/publish/ or /v2/schedules/. Proxies and
 * some clients collapse the "//" of an embedded URL, and some percent-encode the
 * whole thing; both are undone. Only loopback hosts pass: the emulator must never
 * send traffic off this machine.
 */
export function parseDestination(raw: string): string {
  let dest = raw;
  if (/^https?%3A/i.test(dest)) {
    try {
      dest = decodeURIComponent(dest);
    } catch {
      throw new ApiError(400, `invalid destination "${raw}"`);
    }
  }
  dest = dest.replace(/^(https?):\/+/i, "$1://");
  if (!/^https?:\/\//i.test(dest)) {
    throw new ApiError(
      400,
      `invalid destination "${raw}": the local QStash emulator only supports URL destinations (no URL groups, queues or APIs)`,
    );
  }
  let url: URL;
  try {
    url = new URL(dest);
  } catch {
    throw new ApiError(400, `invalid destination url "${dest}"`);
  }
  if (!isLoopbackHost(url.hostname)) {
    throw new ApiError(
      400,
      `invalid destination "${dest}": the local QStash emulator only delivers to loopback hosts (127.0.0.1, ::1, localhost)`,
    );
  }
  return dest;
}

/** content-type → Content-Type, x-api-key → X-Api-Key: the form QStash shows headers in. */
export function canonicalHeaderName(name: string): string {
  return name
    .toLowerCase()
    .split("-")
    .map((p) => (p ? p[0]!.toUpperCase() + p.slice(1) : p))
    .join("-");
}

/** Cron as QStash takes it: five fields, UTC unless prefixed with CRON_TZ=<zone>. */
export function parseCron(expr: string): { fields: string; tz: string } {
  const m = /^\s*(?:CRON_TZ=(\S+)\s+)?(.*?)\s*$/.exec(expr)!;
  const tz = m[1] ?? "UTC";
  const fields = m[2]!;
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
  } catch {
    throw new ApiError(400, `invalid cron "${expr}": unknown time zone "${tz}"`);
  }
  if (fields.split(/\s+/).length !== 5) {
    throw new ApiError(400, `invalid cron "${expr}": expected 5 fields (minute hour day-of-month month day-of-week)`);
  }
  try {
    CronExpressionParser.parse(fields, { tz, currentDate: Date.now() }).next();
  } catch (err) {
    throw new ApiError(400, `invalid cron "${expr}": ${(err as Error).message}`);
  }
  return { fields, tz };
}

/** First firing strictly after `afterMs`. */
export function nextCronTime(expr: string, afterMs: number): number {
  const { fields, tz } = parseCron(expr);
  return CronExpressionParser.parse(fields, { tz, currentDate: afterMs }).next().getTime();
}

export type HeaderBag = Record<string, string | string[] | undefined>;

/** Lower-cased, single-valued view of request headers (a batch entry's or a real request's). */
export function normalizeHeaders(h: HeaderBag): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out.set(k.toLowerCase(), Array.isArray(v) ? v.join(", ") : v);
  }
  return out;
}

export interface PublishOptions {
  spec: DeliverySpec;
  /** Absolute time of first delivery. */
  notBefore: number;
  delayMs: number;
  deduplicationId?: string;
  contentBasedDeduplication: boolean;
  /** Headers we accept but do not act on, reported through onLog. */
  ignored: string[];
}

const IGNORED_HEADERS = [
  "upstash-callback",
  "upstash-failure-callback",
  "upstash-flow-control-key",
  "upstash-flow-control-value",
  "upstash-redact-fields",
];

export function parsePublishHeaders(url: string, headers: Map<string, string>, body: Buffer, now: number): PublishOptions {
  const forwarded: Record<string, string> = {};
  for (const [k, v] of headers) {
    if (k.startsWith("upstash-forward-") && k.length > "upstash-forward-".length) {
      forwarded[canonicalHeaderName(k.slice("upstash-forward-".length))] = v;
    }
  }
  const contentType = headers.get("content-type");
  if (contentType) forwarded["Content-Type"] = contentType;

  const methodRaw = (headers.get("upstash-method") ?? "POST").toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(methodRaw)) {
    throw new ApiError(400, `invalid Upstash-Method "${methodRaw}": expected one of ${HTTP_METHODS.join(", ")}`);
  }

  let maxRetries = DEFAULT_RETRIES;
  const retries = headers.get("upstash-retries");
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries.trim())) throw new ApiError(400, `invalid Upstash-Retries "${retries}": expected a non-negative integer`);
    maxRetries = Number(retries);
  }

  const timeout = headers.get("upstash-timeout");
  const timeoutMs = timeout !== undefined ? parseDuration(timeout, "Upstash-Timeout") : DEFAULT_TIMEOUT_MS;
  if (timeoutMs <= 0) throw new ApiError(400, "Upstash-Timeout must be positive");

  const delay = headers.get("upstash-delay");
  const delayMs = delay !== undefined ? parseDuration(delay, "Upstash-Delay") : 0;
  let notBefore = now + delayMs;
  const nb = headers.get("upstash-not-before");
  if (nb !== undefined) {
    // Unix seconds, as the client sends; it wins over Upstash-Delay as in QStash.
    if (!/^\d+$/.test(nb.trim())) throw new ApiError(400, `invalid Upstash-Not-Before "${nb}": expected unix seconds`);
    notBefore = Number(nb) * 1000;
  }

  const retryDelay = headers.get("upstash-retry-delay");
  if (retryDelay !== undefined) compileRetryDelay(retryDelay);

  const label = headers.get("upstash-label");
  const labels = label ? label.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
  const dedup = headers.get("upstash-deduplication-id");

  return {
    spec: {
      url,
      method: methodRaw as HttpMethod,
      headers: forwarded,
      body,
      maxRetries,
      timeoutMs,
      ...(retryDelay !== undefined ? { retryDelay } : {}),
      ...(labels ? { labels } : {}),
    },
    notBefore,
    delayMs,
    ...(dedup ? { deduplicationId: dedup } : {}),
    contentBasedDeduplication: headers.get("upstash-content-based-deduplication") === "true",
    ignored: IGNORED_HEADERS.filter((h) => headers.has(h)),
  };
}

/** Key under which a publish is deduplicated (10-minute window), if it asked for it. */
export function dedupKey(p: PublishOptions): string | undefined {
  if (p.deduplicationId) return `id:${p.deduplicationId}`;
  if (!p.contentBasedDeduplication) return undefined;
  // Destination, body, Content-Type and forwarded headers: the fields QStash hashes.
  const h = crypto.createHash("sha256").update(p.spec.url).update("\0");
  for (const k of Object.keys(p.spec.headers).sort()) h.update(`${k}:${p.spec.headers[k]}\0`);
  return `content:${h.update(p.spec.body).digest("hex")}`;
}
