/**
 * An INSERT for a Neon HTTP batch (db/client.ts Batch) whose SQL text drizzle
 * builds once per isolate and set of columns; each call only encodes its
 * values. Why: building `db.insert(instances).values(…).returning()` walks
 * every column twice (VALUES and RETURNING) through drizzle's `is()` checks,
 * ~12 % of the Worker's samples in a profile of instance creation, the largest
 * JavaScript cost left in it (docs/performance-writes.md "Session 11").
 *
 * Same statement as drizzle's own: the text is drizzle's, built with a
 * placeholder per column given; a column whose value is undefined is left out
 * of the key, so it takes its DEFAULT exactly as drizzle does; a value goes
 * through its column's encoder (jsonb → JSON text) and null stays NULL, as in
 * drizzle's buildQueryFromSourceParams; the RETURNING row comes back through
 * drizzle's own mapper. test/unit/compiledInsert.test.ts holds it to
 * drizzle's toSQL() for the same values.
 */
import { is, Param, Placeholder, SQL, sql } from "drizzle-orm";
import type { Db } from "./client.ts";

/** What drizzle's neon-http batch asks of each item (session.js `batch`): the built query, its result mode and mapper. */
interface PreparedForBatch {
  getQuery(): { sql: string; params: unknown[]; typings?: unknown[] };
  isResponseInArrayMode(): boolean;
  mapResult(result: unknown, isFromBatch?: boolean): unknown;
}

/** A compiled statement: drizzle's prepared query, and per parameter either its column's placeholder or a fixed value. */
interface Compiled {
  prepared: PreparedForBatch;
  slots: ({ name: string; encode: (value: unknown) => unknown } | { fixed: unknown })[];
}

/** A key set this isolate has seen stays compiled; past this many (not expected: routes send fixed shapes) start over. */
const MAX_SHAPES = 32;

/**
 * `build` makes the drizzle builder for some values (its type is what the batch item is typed as);
 * the result compiles it once per set of defined columns and answers a batch item with `values` bound.
 * Only for `Batch` (neon-http): the item is not a builder, it cannot be awaited or run by itself.
 */
export function compiledInsert<V extends Record<string, unknown>, Q extends { prepare(name: string): unknown }>(build: (db: Db, values: V) => Q): (db: Db, values: V) => Q {
  const shapes = new Map<string, Compiled>();
  return (db, values) => {
    const defined = Object.keys(values).filter((k) => values[k] !== undefined).sort();
    // A value drizzle would inline as SQL (sql`now()`) is not a parameter: build it as drizzle does.
    if (defined.some((k) => is(values[k], SQL))) return build(db, values);
    const shape = defined.join("\u0000");
    let compiled = shapes.get(shape);
    if (!compiled) {
      const prepared = build(db, Object.fromEntries(defined.map((k) => [k, sql.placeholder(k)])) as V).prepare(`compiled:${shape}`) as PreparedForBatch;
      const slots = prepared.getQuery().params.map((p) => is(p, Param) && is(p.value, Placeholder)
        ? { name: p.value.name, encode: (v: unknown) => p.encoder.mapToDriverValue(v) }
        : { fixed: p });
      compiled = { prepared, slots };
      if (shapes.size >= MAX_SHAPES) shapes.clear();
      shapes.set(shape, compiled);
    }
    const { prepared, slots } = compiled;
    const params = slots.map((s) => {
      if ("fixed" in s) return s.fixed;
      const value = values[s.name];
      return value === null ? null : s.encode(value);
    });
    // An encoder that answers SQL (none of our columns' types does) is inlined by drizzle: leave it to drizzle.
    if (params.some((p) => is(p, SQL))) return build(db, values);
    const bound: PreparedForBatch = {
      getQuery: () => ({ ...prepared.getQuery(), params }),
      isResponseInArrayMode: () => prepared.isResponseInArrayMode(),
      mapResult: (result, isFromBatch) => prepared.mapResult(result, isFromBatch),
    };
    // The batch calls `_prepare()` on each item (drizzle-orm/neon-http/session.js); nothing else is read.
    return { _prepare: () => bound } as unknown as Q;
  };
}
