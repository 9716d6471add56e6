/**
 * Operations that act on the whole control plane's data, admin only
 * (config:update): re-sealing secrets after an encryption key rotation.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { keyId } from "../../core/crypto/secretBox.ts";
import { resealAll, sealedKeyCounts } from "../../core/governance/reseal.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { encryptionStatusSchema, resealResultSchema } from "../../protocol/api/governance.ts";

const resealBody = z.strictObject({ batchSize: z.number().int().min(1).max(1000).default(200) });

const doc = describe("Admin");

export const adminRoutes = new Hono<AppEnv>()
  .get("/encryption", doc({
    summary: "Encryption key rotation status: the current and previous key ids and how many stored values each seals",
    responses: { 200: encryptionStatusSchema },
  }), requirePermission("config", "read"), async (c) => {
    const keys = c.var.services.config.encryptionKey;
    const currentKeyId = await keyId(keys.current);
    const previousKeyIds = await Promise.all(keys.previous.map((k) => keyId(k)));
    const columns = await sealedKeyCounts(c.var.services.db);
    const notCurrent = Object.values(columns).flatMap((byKid) => Object.entries(byKid)).filter(([kid]) => kid !== currentKeyId).reduce((n, [, v]) => n + v, 0);
    return c.json({ currentKeyId, previousKeyIds, columns, notCurrent });
  })
  // Idempotent: a second run finds everything current. Values no key opens are reported, not fatal.
  .post("/reseal", doc({
    summary: "Re-seal every stored secret under the current encryption key",
    description: "Idempotent: a second run finds everything current. Values no configured key opens are counted under `failed`, not fatal.",
    responses: { 200: resealResultSchema },
  }), requirePermission("config", "update"), validate("json", resealBody.default({ batchSize: 200 })), async (c) => {
    const { batchSize } = c.req.valid("json");
    const keys = c.var.services.config.encryptionKey;
    const columns = await resealAll(c.var.services.db, keys, batchSize);
    const kid = await keyId(keys.current);
    const totals = Object.values(columns).reduce(
      (t, col) => ({ current: t.current + col.current, resealed: t.resealed + col.resealed, failed: t.failed + col.failed }),
      { current: 0, resealed: 0, failed: 0 },
    );
    await transact(c, async (_tx, record) => record({
      action: "SECRETS_RESEALED", resourceType: "config", resourceId: "encryption_key",
      details: { keyId: kid, ...totals, columns: Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, { current: v.current, resealed: v.resealed, failed: v.failed }])) },
    }));
    return c.json({ keyId: kid, ...totals, columns });
  });
