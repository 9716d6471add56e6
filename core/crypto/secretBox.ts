import { fromBase64, randomBytes, toBase64, toHex } from "../../protocol/encoding.ts";

/**
 * AES-256-GCM sealing for secrets at rest (cluster webhook secrets, instance
 * credential secrets, instance environment secrets).
 *
 * Format v2: `v2.<kid>.<iv b64>.<ciphertext b64>`, where kid is the first 8
 * hex of SHA-256 of the raw key, also bound to the ciphertext as additional
 * data (a value cannot be relabelled to another key). v1 (`v1.<iv>.<ct>`, no
 * key id) is still read: every key of the ring is tried. Sealing always uses
 * the current key; POST /api/admin/reseal moves old values onto it
 * (docs/compliance.md, "Encryption key rotation").
 */
export interface Keyring {
  /** base64 of 32 bytes: REDFORGE_ENCRYPTION_KEY. */
  current: string;
  /** Older keys that may still open values: REDFORGE_ENCRYPTION_KEYS_PREVIOUS. */
  previous: readonly string[];
}

/** A bare key is a ring of one. */
export type SealKeys = Keyring | string;

export class SealedSecretError extends Error {
  constructor(readonly reason: "format" | "unknown_key" | "no_key_opens", message: string) {
    super(message);
    this.name = "SealedSecretError";
  }
}

interface LoadedKey { kid: string; key: CryptoKey }
const keyCache = new Map<string, Promise<LoadedKey>>();

function loadKey(keyB64: string): Promise<LoadedKey> {
  let loaded = keyCache.get(keyB64);
  if (!loaded) {
    loaded = (async () => {
      const raw = fromBase64(keyB64);
      if (raw.byteLength !== 32) throw new Error("encryption keys must be base64 of 32 bytes");
      const kid = toHex(await crypto.subtle.digest("SHA-256", raw)).slice(0, 8);
      return { kid, key: await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]) };
    })();
    keyCache.set(keyB64, loaded);
    loaded.catch(() => keyCache.delete(keyB64));
  }
  return loaded;
}

const ring = (keys: SealKeys): Keyring => (typeof keys === "string" ? { current: keys, previous: [] } : keys);

/** Current key first: a v1 value is most likely under it. */
const ringKeys = (keys: SealKeys): string[] => {
  const r = ring(keys);
  return [r.current, ...r.previous.filter((k) => k !== r.current)];
};

/** The key id a key's values carry. */
export async function keyId(keyB64: string): Promise<string> {
  return (await loadKey(keyB64)).kid;
}

/** The key id of a sealed value, or "v1" for values sealed before key ids existed. */
export function sealedKeyId(sealed: string): string {
  return sealed.startsWith("v2.") ? sealed.split(".")[1] ?? "" : "v1";
}

const additionalData = (kid: string) => new TextEncoder().encode(`v2.${kid}`);

export async function seal(plaintext: string, keys: SealKeys): Promise<string> {
  const { kid, key } = await loadKey(ring(keys).current);
  const iv = randomBytes(12);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: additionalData(kid) }, key, new TextEncoder().encode(plaintext));
  return `v2.${kid}.${toBase64(iv)}.${toBase64(new Uint8Array(ct))}`;
}

export async function open(sealed: string, keys: SealKeys): Promise<string> {
  const parts = sealed.split(".");
  if (parts[0] === "v2" && parts.length === 4 && parts[1] && parts[2] && parts[3]) {
    const [, kid, iv, ct] = parts as [string, string, string, string];
    for (const k of ringKeys(keys)) {
      const loaded = await loadKey(k);
      if (loaded.kid !== kid) continue;
      const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv), additionalData: additionalData(kid) }, loaded.key, fromBase64(ct));
      return new TextDecoder().decode(pt);
    }
    throw new SealedSecretError("unknown_key", `sealed with key ${kid}, which is neither the current nor a previous key`);
  }
  if (parts[0] === "v1" && parts.length === 3 && parts[1] && parts[2]) {
    const [, iv, ct] = parts as [string, string, string];
    // v1 names no key: GCM's tag tells the right one from the wrong ones.
    for (const k of ringKeys(keys)) {
      const { key } = await loadKey(k);
      try {
        return new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv) }, key, fromBase64(ct)));
      } catch { /* try the next key */ }
    }
    throw new SealedSecretError("no_key_opens", "no configured key opens this v1 value");
  }
  throw new SealedSecretError("format", "unrecognised sealed secret format");
}

/** REDFORGE_ENCRYPTION_KEY + REDFORGE_ENCRYPTION_KEYS_PREVIOUS (comma separated, blanks ignored). */
export function parseKeyring(current: string, previous: string | undefined): Keyring {
  return { current, previous: (previous ?? "").split(",").map((k) => k.trim()).filter(Boolean) };
}

/** Which keys are not base64 of 32 bytes (by position, never by value). */
export function invalidKeys(keys: Keyring): string[] {
  const bad: string[] = [];
  const check = (k: string, name: string) => {
    try {
      if (fromBase64(k).byteLength !== 32) bad.push(name);
    } catch {
      bad.push(name);
    }
  };
  check(keys.current, "REDFORGE_ENCRYPTION_KEY");
  keys.previous.forEach((k, i) => check(k, `REDFORGE_ENCRYPTION_KEYS_PREVIOUS[${i}]`));
  return bad;
}
