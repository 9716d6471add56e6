import { SignJWT, jwtVerify, errors } from "jose";

const ISSUER = "redforge";
const AUDIENCE = "redforge-api";

export interface SessionClaims {
  sub: string;
  username: string;
  role: string;
}

const keyOf = (secret: string) => new TextEncoder().encode(secret);

export async function issueSessionToken(claims: SessionClaims, secret: string, ttlSeconds: number) {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + ttlSeconds;
  const token = await new SignJWT({ username: claims.username, role: claims.role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(keyOf(secret));
  return { token, expiresAt: new Date(exp * 1000).toISOString() };
}

export type TokenCheck = { ok: true; userId: string; issuedAt: number } | { ok: false; reason: "expired" | "invalid" };

export async function verifySessionToken(token: string, secret: string): Promise<TokenCheck> {
  try {
    const { payload } = await jwtVerify(token, keyOf(secret), { issuer: ISSUER, audience: AUDIENCE, algorithms: ["HS256"] });
    return payload.sub && typeof payload.iat === "number"
      ? { ok: true, userId: payload.sub, issuedAt: payload.iat }
      : { ok: false, reason: "invalid" };
  } catch (err) {
    return { ok: false, reason: err instanceof errors.JWTExpired ? "expired" : "invalid" };
  }
}
