import { randomBytes, sha256Hex, toBase64Url } from "../../protocol/encoding.ts";

/** API keys look like rf_<43 base64url chars> (256 random bits); only their SHA-256 is stored. */
export const API_KEY_PREFIX = "rf_";

export async function generateApiKey(): Promise<{ key: string; prefix: string; hash: string }> {
  const key = API_KEY_PREFIX + toBase64Url(randomBytes(32));
  return { key, prefix: key.slice(0, 10), hash: await sha256Hex(key) };
}

export const hashApiKey = sha256Hex;

export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}
