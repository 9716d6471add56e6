/**
 * The price table (USD per million tokens, per provider and request model) and
 * the cost of one call. A model missing from the table costs null, not 0: an
 * unknown price must not read as "free" in totals.
 */
import { and, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { modelPrices } from "../../db/schema.ts";

export interface Price {
  inputUsdPerMtok: number;
  outputUsdPerMtok: number;
}

export type PriceBook = Map<string, Price>;

const keyOf = (provider: string, model: string) => `${provider}\u0000${model}`;

/** Prices for the given (provider, model) pairs, in one query. */
export async function loadPrices(db: Db, pairs: Iterable<{ provider: string; model: string }>): Promise<PriceBook> {
  const providers = new Set<string>();
  const models = new Set<string>();
  for (const p of pairs) { providers.add(p.provider); models.add(p.model); }
  const book: PriceBook = new Map();
  if (models.size === 0) return book;
  const rows = await db.select().from(modelPrices)
    .where(and(inArray(modelPrices.provider, [...providers]), inArray(modelPrices.model, [...models])));
  return priceBook(rows);
}

/** A book from price rows (numeric columns as text or number). */
export function priceBook(rows: Iterable<{ provider: string; model: string; inputUsdPerMtok: string | number; outputUsdPerMtok: string | number }>): PriceBook {
  const book: PriceBook = new Map();
  for (const r of rows) {
    book.set(keyOf(r.provider, r.model), { inputUsdPerMtok: Number(r.inputUsdPerMtok), outputUsdPerMtok: Number(r.outputUsdPerMtok) });
  }
  return book;
}

/** Cost in USD as numeric(14,8) text, or null when the model has no price or the call reported no tokens. */
export function costUsd(book: PriceBook, call: { provider: string; model: string; inputTokens?: number | undefined; outputTokens?: number | undefined }): string | null {
  const price = book.get(keyOf(call.provider, call.model));
  if (!price || (call.inputTokens === undefined && call.outputTokens === undefined)) return null;
  const usd = ((call.inputTokens ?? 0) * price.inputUsdPerMtok + (call.outputTokens ?? 0) * price.outputUsdPerMtok) / 1_000_000;
  return usd.toFixed(8);
}
