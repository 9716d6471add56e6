import { fromBase64, randomBytes, timingSafeEqual, toBase64 } from "../../protocol/encoding.ts";

// workerd caps PBKDF2 at 100,000 iterations, which is also the floor.
const ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, HASH_BITS);
  return new Uint8Array(bits);
}

/** Format: pbkdf2-sha256$<iterations>$<salt b64>$<hash b64> (self-describing, so the cost can rise later). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, ITERATIONS);
  return `pbkdf2-sha256$${ITERATIONS}$${toBase64(salt)}$${toBase64(hash)}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iter, salt, hash] = stored.split("$");
  const iterations = Number(iter);
  if (scheme !== "pbkdf2-sha256" || !salt || !hash || !Number.isInteger(iterations) || iterations > ITERATIONS) return false;
  const actual = await derive(password, fromBase64(salt), iterations);
  return timingSafeEqual(actual, fromBase64(hash));
}

/** Spends the same time as a real check, so an unknown username is not faster to reject. */
let dummyHash: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword("redforge-timing-equaliser");
  await verifyPassword(password, await dummyHash);
}
