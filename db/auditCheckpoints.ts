/**
 * Signed checkpoints of the audit chain. A retention purge removes a prefix
 * of the chain; before it does, it records the last removed row's id and hash
 * here, signed with HMAC-SHA256 (REDFORGE_AUDIT_CHECKPOINT_KEY). Verification
 * then starts at the latest checkpoint instead of genesis: the first kept
 * row must link to `up_to_hash`, and the checkpoint itself must carry a valid
 * signature, so neither the purge nor a forged checkpoint can hide an edit.
 */
import { desc, lt } from "drizzle-orm";
import { canonicalJson } from "./auditChain.ts";
import type { Db } from "./client.ts";
import { auditCheckpoints } from "./schema.ts";

export type AuditCheckpoint = typeof auditCheckpoints.$inferSelect;
type Signed = Pick<AuditCheckpoint, "upToId" | "upToHash" | "rowCount" | "fromId" | "rangeStart" | "rangeEnd" | "keyId">;
type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

const enc = new TextEncoder();
const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

function hmacKey(key: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", enc.encode(key), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

/** First 8 hex of SHA-256 of the key: names the key without revealing it. */
export async function checkpointKeyId(key: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(key))).slice(0, 8);
}

/** What the signature covers, in canonical JSON (docs/compliance.md). */
export function signedContent(c: Signed): string {
  return canonicalJson({
    upToId: c.upToId, upToHash: c.upToHash, rowCount: c.rowCount, fromId: c.fromId,
    rangeStart: c.rangeStart.toISOString(), rangeEnd: c.rangeEnd.toISOString(), keyId: c.keyId,
  });
}

export async function signCheckpoint(c: Omit<Signed, "keyId">, key: string): Promise<Signed & { signature: string }> {
  const full = { ...c, keyId: await checkpointKeyId(key) };
  const sig = await crypto.subtle.sign("HMAC", await hmacKey(key, "sign"), enc.encode(signedContent(full)));
  return { ...full, signature: hex(sig) };
}

export async function checkpointSignatureValid(c: AuditCheckpoint, key: string): Promise<boolean> {
  if (c.keyId !== (await checkpointKeyId(key)) || !/^[0-9a-f]{64}$/.test(c.signature)) return false;
  const sig = new Uint8Array(c.signature.match(/../g)!.map((h) => parseInt(h, 16)));
  // crypto.subtle.verify compares in constant time.
  return crypto.subtle.verify("HMAC", await hmacKey(key, "verify"), sig, enc.encode(signedContent(c)));
}

/** The newest checkpoint, or the newest one below an id (where a range's predecessor was purged). */
export async function latestCheckpoint(db: Db | Tx, belowId?: number): Promise<AuditCheckpoint | null> {
  const [row] = await db.select().from(auditCheckpoints)
    .where(belowId !== undefined ? lt(auditCheckpoints.upToId, belowId) : undefined)
    .orderBy(desc(auditCheckpoints.upToId)).limit(1);
  return row ?? null;
}
