/**
 * Rotating REDFORGE_ENCRYPTION_KEY: seal under A, rotate to B with A as
 * previous (everything still opens), re-seal, drop A (everything still
 * opens). The Worker runs with per-test keys (a fresh A and B), so values
 * other suites sealed under the dev key are never touched: no key in these
 * rings opens them, and re-seal reports them instead of failing.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { clusters, instances } from "../../db/schema.ts";
import { fromBase64, randomBytes, toBase64 } from "../../protocol/encoding.ts";
import { keyId, open, seal, sealedKeyId, SealedSecretError } from "../../core/crypto/secretBox.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import worker from "../../functions/index.ts";
import { createUser, unique, withDb } from "./helpers.ts";

const newKey = () => toBase64(randomBytes(32));

/** The v1 format (no key id), as values written before rotation support look. */
async function sealV1(plaintext: string, keyB64: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", fromBase64(keyB64), "AES-GCM", false, ["encrypt"]);
  const iv = randomBytes(12);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, new TextEncoder().encode(plaintext));
  return `v1.${toBase64(iv)}.${toBase64(new Uint8Array(ct))}`;
}

/** The Worker with a given key configuration. */
async function call(keys: { current: string; previous?: string[] }, method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`http://redforge.test${path}`, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) }),
    { ...env, REDFORGE_ENCRYPTION_KEY: keys.current, REDFORGE_ENCRYPTION_KEYS_PREVIOUS: (keys.previous ?? []).join(",") },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A bridge trades a request signed with its cluster's webhook secret for a token: the secret opened. */
async function bridgeCanSignIn(keys: { current: string; previous?: string[] }, cluster: { id: string; webhookSecret: string }) {
  const body = JSON.stringify({});
  const headers = await webhookHeaders(cluster.webhookSecret, body);
  return (await call(keys, "POST", `/api/clusters/${cluster.id}/token`, { raw: body, headers: { ...headers, "Content-Type": "application/json" } })).status;
}

async function sealedRow(instanceId: string) {
  const [row] = await withDb((db) => db.select({ credential: instances.credentialSecretSealed, secrets: instances.secretsSealed }).from(instances).where(eq(instances.id, instanceId)));
  return row!;
}

describe("secretBox key ring", () => {
  it("seals under the current key with its id and opens with any key of the ring", async () => {
    const a = newKey(), b = newKey();
    const sealed = await seal("whsec_abc", a);
    expect(sealed).toMatch(new RegExp(`^v2\\.${await keyId(a)}\\.`));
    expect(sealedKeyId(sealed)).toBe(await keyId(a));
    expect(await open(sealed, { current: b, previous: [a] })).toBe("whsec_abc");
    await expect(open(sealed, b)).rejects.toMatchObject({ reason: "unknown_key" });
  });

  it("still opens v1 values (no key id) under the current or a previous key", async () => {
    const a = newKey(), b = newKey();
    const v1 = await sealV1("legacy", a);
    expect(await open(v1, a)).toBe("legacy");
    expect(await open(v1, { current: b, previous: [a] })).toBe("legacy");
    await expect(open(v1, b)).rejects.toBeInstanceOf(SealedSecretError);
  });

  it("a value relabelled with another key's id does not open", async () => {
    const a = newKey(), b = newKey();
    const sealed = await seal("x", a);
    const forged = sealed.replace(await keyId(a), await keyId(b));
    await expect(open(forged, { current: b, previous: [a] })).rejects.toThrow();
  });
});

describe("rotating REDFORGE_ENCRYPTION_KEY", () => {
  it("seal with A, rotate to B (A previous), re-seal, drop A: every secret still opens", async () => {
    const A = newKey(), B = newKey();
    const onlyA = { current: A }, rotated = { current: B, previous: [A] }, onlyB = { current: B };
    const admin = await createUser("admin");

    // Under A: a cluster (webhook secret), an instance (credential secret, env secrets).
    const created = await call(onlyA, "POST", "/api/clusters", { token: admin.token, body: { name: unique("rot") } });
    expect(created.status).toBe(201);
    const cluster = created.body as { id: string; webhookSecret: string };
    const inst = await call(onlyA, "POST", "/api/instances", { token: admin.token, body: { name: unique("rot"), clusterId: cluster.id, secrets: { OPENAI_API_KEY: "sk-test-1" } } });
    expect(inst.status, JSON.stringify(inst.body)).toBe(201);
    const instanceId = inst.body.id as string;
    // A second cluster whose secret is still in the v1 format (written before key ids).
    const legacy = (await call(onlyA, "POST", "/api/clusters", { token: admin.token, body: { name: unique("rot-v1") } })).body as { id: string; webhookSecret: string };
    await withDb((db) => sealV1(legacy.webhookSecret, A).then((v1) => db.update(clusters).set({ webhookSecretSealed: v1 }).where(eq(clusters.id, legacy.id))));
    expect(await bridgeCanSignIn(onlyA, cluster)).toBe(200);
    expect(await bridgeCanSignIn(onlyA, legacy)).toBe(200);

    // Rotate: B seals, A still opens.
    expect(await bridgeCanSignIn(rotated, cluster)).toBe(200);
    expect(await bridgeCanSignIn(rotated, legacy)).toBe(200);
    // Without A, A's values are unreadable (503 sealed_secret_unreadable): what re-seal prevents.
    expect(await bridgeCanSignIn(onlyB, cluster)).toBe(503);

    const viewer = await createUser("viewer");
    expect((await call(rotated, "POST", "/api/admin/reseal", { token: viewer.token, body: {} })).status).toBe(403);
    const resealed = await call(rotated, "POST", "/api/admin/reseal", { token: admin.token, body: { batchSize: 2 } });
    expect(resealed.status, JSON.stringify(resealed.body)).toBe(200);
    expect(resealed.body.keyId).toBe(await keyId(B));
    // Ours: 2 cluster secrets, 1 credential secret, 1 secrets map (other suites' rows are under the dev key: failed, untouched).
    expect(resealed.body.columns["clusters.webhook_secret_sealed"].resealed).toBeGreaterThanOrEqual(2);
    expect(resealed.body.columns["instances.credential_secret_sealed"].resealed).toBeGreaterThanOrEqual(1);
    expect(resealed.body.columns["instances.secrets_sealed"].resealed).toBeGreaterThanOrEqual(1);
    for (const col of Object.values(resealed.body.columns) as { failedIds: string[] }[]) {
      expect(col.failedIds).not.toContain(cluster.id);
      expect(col.failedIds).not.toContain(instanceId);
    }

    // Drop A: everything opens under B alone.
    expect(await bridgeCanSignIn(onlyB, cluster)).toBe(200);
    expect(await bridgeCanSignIn(onlyB, legacy)).toBe(200);
    const row = await sealedRow(instanceId);
    expect(sealedKeyId(row.credential!)).toBe(await keyId(B));
    expect(JSON.parse(await open(row.secrets!, B))).toEqual({ OPENAI_API_KEY: "sk-test-1" });
    expect((await open(row.credential!, B)).length).toBeGreaterThan(20);

    // A second run finds ours already current; the audit log has both runs.
    const again = await call(onlyB, "POST", "/api/admin/reseal", { token: admin.token, body: {} });
    expect(again.body.columns["clusters.webhook_secret_sealed"].current).toBeGreaterThanOrEqual(2);
    const audit = await call(onlyB, "GET", "/api/audit?action=SECRETS_RESEALED&limit=5", { token: admin.token });
    expect(audit.body.items[0].details).toMatchObject({ keyId: await keyId(B) });
  });

  it("a malformed previous key makes the Worker refuse to serve (503 misconfigured), naming the variable only", async () => {
    const admin = await createUser("admin");
    const res = await call({ current: env.REDFORGE_ENCRYPTION_KEY!, previous: ["not-a-key"] }, "GET", "/api/auth/me", { token: admin.token });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("misconfigured");
    expect(JSON.stringify(res.body)).toContain("REDFORGE_ENCRYPTION_KEYS_PREVIOUS[0]");
    expect(JSON.stringify(res.body)).not.toContain("not-a-key\"");
  });
});
