/**
 * AI decision logs and the model price table.
 * - GET /decisions, GET /decisions/totals: ai_decisions:read. Prompt and
 *   response text is returned only to callers who also hold ai_prompts:read
 *   (admins, operators); for everyone else both are null and `redacted` is true.
 * - GET /prices: ai_prices:read; PUT /prices (upsert by provider + model) and
 *   DELETE /prices/:id: ai_prices:update / delete. A price change applies to
 *   records that arrive after it; stored costs are never recomputed.
 */
import { eq, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { modelPrices } from "../../db/schema.ts";
import { decisionTotals, listDecisions, type DecisionRow } from "../../core/ai/decisionQueries.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { notFound } from "../../core/errors.ts";
import { transact } from "../middleware/auditTrail.ts";
import { recordRead } from "../middleware/auditRead.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeIdCursor, encodeIdCursor } from "../../core/platform/pagination.ts";
import { allows } from "../rbac/permissions.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { aiDecisionSchema, aiTotalsSchema, modelPriceSchema } from "../../protocol/api/ai.ts";
import { listOf, pageOf } from "../../protocol/api/common.ts";

const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const filters = {
  instanceId: z.uuid().optional(),
  flowName: z.string().min(1).max(255).optional(),
  model: z.string().min(1).max(100).optional(),
  provider: z.string().min(1).max(100).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
};
const listQuery = z.strictObject({
  ...filters,
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});
const totalsQuery = z.strictObject({
  ...filters,
  groupBy: z.enum(["instance", "flow", "model"]),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const usdPerMtok = z.number().min(0).max(100_000_000);
const priceBody = z.strictObject({
  provider: z.string().min(1).max(100),
  model: z.string().min(1).max(100),
  inputUsdPerMtok: usdPerMtok,
  outputUsdPerMtok: usdPerMtok,
});
const idParam = z.object({ id: z.uuid() });

function view(row: DecisionRow, showText: boolean) {
  const { prompt, response, ...rest } = row;
  return showText ? { ...rest, prompt, response, redacted: false } : { ...rest, prompt: null, response: null, redacted: true };
}

const priceView = (r: typeof modelPrices.$inferSelect) => ({
  ...r, inputUsdPerMtok: Number(r.inputUsdPerMtok), outputUsdPerMtok: Number(r.outputUsdPerMtok),
});

const doc = describe("AI");

export const aiRoutes = new Hono<AppEnv>()
  .get("/decisions", doc({
    summary: "List AI decision records, newest first",
    description: "Prompt and response text only for callers who also hold ai_prompts:read; otherwise both are null and `redacted` is true.",
    responses: { 200: pageOf(aiDecisionSchema) },
  }), requirePermission("ai_decisions", "read"), validate("query", listQuery), async (c) => {
    const { limit, cursor, ...f } = c.req.valid("query");
    const rows = await listDecisions(c.var.services.db, f, limit, decodeIdCursor(cursor));
    const showText = allows(c.var.principal!.permissions, "ai_prompts", "read");
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    // One row per page that showed prompt or response text, naming the records (first and last id) and the filters.
    if (showText && items.length) {
      await recordRead(c, { action: "AI_PROMPTS_READ", resourceType: "ai_prompts", details: { count: items.length, firstId: items[0]!.id, lastId: last!.id, filters: f } });
    }
    return c.json({ items: items.map((r) => view(r, showText)), nextCursor: rows.length > limit && last ? encodeIdCursor(last.id) : null });
  })
  .get("/decisions/totals", doc({ summary: "Calls, tokens and cost grouped by instance, flow or model", responses: { 200: aiTotalsSchema } }), requirePermission("ai_decisions", "read"), validate("query", totalsQuery), async (c) => {
    const { groupBy, limit, ...f } = c.req.valid("query");
    return c.json({ groupBy, items: await decisionTotals(c.var.services.db, f, groupBy, limit) });
  })
  .get("/prices", doc({ summary: "The model price table", responses: { 200: listOf(modelPriceSchema) } }), requirePermission("ai_prices", "read"), async (c) => {
    const rows = await c.var.services.db.select().from(modelPrices).orderBy(modelPrices.provider, modelPrices.model);
    return c.json({ items: rows.map(priceView) });
  })
  .put("/prices", doc({
    summary: "Set a model's price (upsert by provider and model)",
    description: "Applies to records that arrive after it; stored costs are never recomputed.",
    responses: { 200: modelPriceSchema },
  }), requirePermission("ai_prices", "update"), validate("json", priceBody), async (c) => {
    const p = c.req.valid("json");
    const row = await transact(c, async (tx, record) => {
      const values = { ...p, inputUsdPerMtok: String(p.inputUsdPerMtok), outputUsdPerMtok: String(p.outputUsdPerMtok) };
      const [saved] = await tx.insert(modelPrices).values(values).onConflictDoUpdate({
        target: [modelPrices.provider, modelPrices.model],
        set: { inputUsdPerMtok: values.inputUsdPerMtok, outputUsdPerMtok: values.outputUsdPerMtok, updatedAt: sql`now()` },
      }).returning();
      record({ action: "AI_PRICE_SET", resourceType: "ai_prices", resourceId: saved!.id, details: p });
      return saved!;
    });
    return c.json(priceView(row));
  })
  .delete("/prices/:id", doc({ summary: "Delete a model price", responses: { 204: null }, errors: [404] }), requirePermission("ai_prices", "delete"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    await transact(c, async (tx, record) => {
      const [gone] = await tx.delete(modelPrices).where(eq(modelPrices.id, id)).returning();
      if (!gone) throw notFound("price", id);
      record({ action: "AI_PRICE_DELETED", resourceType: "ai_prices", resourceId: id, details: { provider: gone.provider, model: gone.model } });
    });
    return c.body(null, 204);
  });
