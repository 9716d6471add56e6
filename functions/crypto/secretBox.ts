import { fromBase64, randomBytes, toBase64 } from "./encoding.ts";

/**
 * AES-256-GCM sealing for secrets at rest (cluster webhook secrets, instance
 * secrets). Format: v1.<iv b64>.<ciphertext b64>; the version prefix leaves
 * room for key rotation (a v2 sealed under the next key).
 */
const keyCache = new Map<string, Promise<CryptoKey>>();

function importKey(keyB64: string): Promise<CryptoKey> {
  let key = keyCache.get(keyB64);
  if (!key) {
    const raw = fromBase64(keyB64);
    if (raw.byteLength !== 32) throw new Error("REDFORGE_ENCRYPTION_KEY must be base64 of 32 bytes");
    key = crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    keyCache.set(keyB64, key);
  }
  return key;
}

export async function seal(plaintext: string, keyB64: string): Promise<string> {
  const iv = randomBytes(12);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await importKey(keyB64), new TextEncoder().encode(plaintext));
  return `v1.${toBase64(iv)}.${toBase64(new Uint8Array(ct))}`;
}

export async function open(sealed: string, keyB64: string): Promise<string> {
  const [version, iv, ct] = sealed.split(".");
  if (version !== "v1" || !iv || !ct) throw new Error("unrecognised sealed secret format");
  const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv) }, await importKey(keyB64), fromBase64(ct));
  return new TextDecoder().decode(pt);
}
