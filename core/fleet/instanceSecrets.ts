/**
 * Instance environment secrets: write-only. Values are sealed together
 * (AES-GCM, REDFORGE_ENCRYPTION_KEY) and leave the control plane only inside
 * the instance.create command to the bridge; the API shows their names.
 */
import { z } from "zod";
import { open, seal, type SealKeys } from "../crypto/secretBox.ts";

const secretName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "secret names are letters, digits and _").max(128);
const secretValue = z.string().min(1).max(32 * 1024);

export const secretsShape = z.record(secretName, secretValue)
  .refine((m) => Object.keys(m).length <= 100, "at most 100 secrets");
/** In a PATCH, null removes a secret. */
export const secretsPatchShape = z.record(secretName, secretValue.nullable())
  .refine((m) => Object.keys(m).length <= 100, "at most 100 secrets");

export interface SealedSecrets {
  secretsSealed: string | null;
  secretNames: string[];
}

export async function sealSecrets(secrets: Record<string, string>, key: SealKeys): Promise<SealedSecrets> {
  const names = Object.keys(secrets).sort();
  return { secretsSealed: names.length ? await seal(JSON.stringify(secrets), key) : null, secretNames: names };
}

export async function openSecrets(sealed: string | null, key: SealKeys): Promise<Record<string, string>> {
  return sealed ? (JSON.parse(await open(sealed, key)) as Record<string, string>) : {};
}

export function applySecretsPatch(current: Record<string, string>, patch: Record<string, string | null>): Record<string, string> {
  const next = { ...current };
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete next[name];
    else next[name] = value;
  }
  return next;
}
