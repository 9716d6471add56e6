import { SignJWT, jwtVerify, errors } from "jose";

const ISSUER = "redforge";
const AUDIENCE = "redforge-api";

export interface SessionClaims {
  sub: string;
  username: string;
  role: string;
}

// The HMAC key imported once per secret for the isolate, not on every request's verify (jose imports raw bytes each time).
// Spelled through importKey, not the global CryptoKey type: this module is also type-checked for Node (its unit tests).
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const imported = new Map<string, Promise<HmacKey>>();
function keyOf(secret: string): Promise<HmacKey> {
  let key = imported.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    if (imported.size >= 8) imported.clear();
    imported.set(secret, key);
    key.catch(() => imported.delete(secret));
  }
  return key;
}

export async function issueSessionToken(claims: SessionClaims, secret: string, ttlSeconds: number) {
  const nowMs = Date.now();
  const now = Math.floor(nowMs / 1000);
  const exp = now + ttlSeconds;
  // iat has whole seconds; revocation (a password change, disabling) compares milliseconds, so a
  // token from before a disable stays revoked however soon the user is enabled again.
  const token = await new SignJWT({ username: claims.username, role: claims.role, iat_ms: nowMs })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(await keyOf(secret));
  return { token, expiresAt: new Date(exp * 1000).toISOString() };
}

/** `issuedAtMs`: iat_ms, or for a token without it the last millisecond of its iat second. */
export type TokenCheck = { ok: true; userId: string; issuedAtMs: number } | { ok: false; reason: "expired" | "invalid" };

/**
 * Tokens this isolate has verified, per secret: a request that presents the same token again is
 * answered from here, its expiry checked against the clock each time, as jose checks it (exp <=
 * now in whole seconds is expired). Why: jose's verify (header and payload decoding, the HMAC,
 * the claims) was ~4 % of the Worker's samples per instance creation, repeated for the same bytes
 * on every request of a session (docs/performance-writes.md "Session 11"). Only a success is kept,
 * only for the exact token text and secret that verified, so it answers exactly as verifying again;
 * revocation is not jose's business either way (the principal's sessionsValidAfter, per request).
 */
const VERIFIED_MAX = 4_096;
const verified = new Map<string, Map<string, { userId: string; issuedAtMs: number; exp: number }>>();

export async function verifySessionToken(token: string, secret: string): Promise<TokenCheck> {
  const known = verified.get(secret)?.get(token);
  if (known) {
    if (known.exp <= Math.floor(Date.now() / 1000)) return { ok: false, reason: "expired" };
    return { ok: true, userId: known.userId, issuedAtMs: known.issuedAtMs };
  }
  try {
    const { payload } = await jwtVerify(token, await keyOf(secret), { issuer: ISSUER, audience: AUDIENCE, algorithms: ["HS256"] });
    if (!payload.sub || typeof payload.iat !== "number") return { ok: false, reason: "invalid" };
    const ms = payload.iat_ms;
    const issuedAtMs = typeof ms === "number" && Number.isSafeInteger(ms) && Math.floor(ms / 1000) === payload.iat ? ms : payload.iat * 1000 + 999;
    // Only tokens whose one time-dependent claim is exp (ours): nbf would need its own check on each hit.
    if (typeof payload.exp === "number" && payload.nbf === undefined) remember(secret, token, { userId: payload.sub, issuedAtMs, exp: payload.exp });
    return { ok: true, userId: payload.sub, issuedAtMs };
  } catch (err) {
    return { ok: false, reason: err instanceof errors.JWTExpired ? "expired" : "invalid" };
  }
}

function remember(secret: string, token: string, entry: { userId: string; issuedAtMs: number; exp: number }): void {
  let bySecret = verified.get(secret);
  if (!bySecret) {
    if (verified.size >= 8) verified.clear();
    verified.set(secret, (bySecret = new Map()));
  }
  if (bySecret.size >= VERIFIED_MAX) bySecret.clear();
  bySecret.set(token, entry);
}
