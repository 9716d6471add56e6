import { SignJWT, jwtVerify } from "jose";

/**
 * Short-lived tokens a bridge uses to open its command channel. The bridge
 * proves itself for a token with a webhook signed by its cluster secret, so
 * the long-lived secret never travels and a leaked token dies in minutes.
 */
const AUDIENCE = "redforge-bridge";
const ISSUER = "redforge";
export const CLUSTER_TOKEN_TTL_SECONDS = 600;

const key = (secret: string) => new TextEncoder().encode(secret);

export async function issueClusterToken(clusterId: string, secret: string) {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + CLUSTER_TOKEN_TTL_SECONDS;
  const token = await new SignJWT({ kind: "cluster" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(clusterId).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(now).setExpirationTime(exp)
    .sign(key(secret));
  return { token, expiresAt: new Date(exp * 1000).toISOString() };
}

/** The cluster id the token was issued to, or null. */
export async function verifyClusterToken(token: string, secret: string): Promise<string | null> {
  try {
    const { payload } = await jwtVerify(token, key(secret), { issuer: ISSUER, audience: AUDIENCE, algorithms: ["HS256"] });
    return payload.kind === "cluster" && payload.sub ? payload.sub : null;
  } catch {
    return null;
  }
}
