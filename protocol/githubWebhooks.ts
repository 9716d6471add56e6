/**
 * GitHub's webhook signature (also sent by Gitea and Forgejo): header
 * `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, keyed by
 * the secret's text exactly as typed into the webhook form (for a whsec_
 * secret: the whole string, prefix included). There is no timestamp: replay
 * protection is the receiver's, by `X-GitHub-Delivery`. WebCrypto only, so the
 * Worker verifies and Node tests and tools sign with the same code.
 */
import { timingSafeEqual, toHex } from "./encoding.ts";

export const GITHUB_SIGNATURE_HEADER = "x-hub-signature-256";
export const GITHUB_DELIVERY_HEADER = "x-github-delivery";

async function hmacHex(secret: string, body: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return toHex(await crypto.subtle.sign("HMAC", key, enc.encode(body)));
}

export async function githubSignature(secret: string, body: string): Promise<string> {
  return `sha256=${await hmacHex(secret, body)}`;
}

/** Constant-time over the hex digits; a malformed header simply does not verify. */
export async function verifyGitHubSignature(secrets: readonly string[], header: string, body: string): Promise<boolean> {
  const offered = /^sha256=([0-9a-f]{64})$/i.exec(header.trim())?.[1]?.toLowerCase();
  if (!offered) return false;
  const enc = new TextEncoder();
  let ok = false;
  for (const secret of secrets) ok = timingSafeEqual(enc.encode(offered), enc.encode(await hmacHex(secret, body))) || ok;
  return ok;
}
