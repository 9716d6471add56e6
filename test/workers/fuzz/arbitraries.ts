/**
 * fast-check arbitraries for the fuzz suite: values shaped by an operation's
 * JSON Schema (from the committed OpenAPI document), and the hostile values
 * and wire forms an attacker or a careless client sends instead.
 */
import fc from "fast-check";

export type JsonSchema = {
  type?: string | string[]; properties?: Record<string, JsonSchema>; required?: string[];
  items?: JsonSchema; anyOf?: JsonSchema[]; oneOf?: JsonSchema[]; allOf?: JsonSchema[];
  enum?: unknown[]; const?: unknown; format?: unknown; pattern?: string;
  minLength?: number; maxLength?: number; minimum?: number; maximum?: number; minItems?: number; maxItems?: number;
  additionalProperties?: boolean | JsonSchema; propertyNames?: JsonSchema; $ref?: string; default?: unknown;
};

/** Ids the generators prefer, so valid-ish requests reach past "not found" into the routes' logic. */
export interface KnownIds { uuids: string[] }

const lone = ["\ud800", "x\udc00", "\udbff\u0041", "a\ud83d"];
/** Strings that broke or could break something downstream: keys, URLs, logs, hashes, headers, CSV, SQL. */
export const hostileStrings = [
  ...lone, "\u0000", "a\u0000b", "\r\n", "line\r\nX-Injected: 1", "\u202e\u2066rtl", "\ufeffbom", "\u{1F600}",
  "", " ", "x".repeat(70_000), "é".repeat(300), "%00", "%ED%A0%80", "../../etc/passwd", "'; drop table users; --",
  "=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(1)", "${7*7}", "{{7*7}}", "javascript:alert(1)", "__proto__",
  "constructor", "null", "NaN", "1e309", "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
  "::ffff:1.2.3.4", "0000-00-00T00:00:00Z", "9999-99-99", "00000000-0000-0000-0000-000000000000",
];

const deep = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};

/** Any JSON value a hostile client might put where a field is expected. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...hostileStrings),
  fc.constantFrom(null, true, false, 0, -1, -0, 0.5, 1e308, -1e308, 2 ** 53 + 1, Number.MIN_VALUE, [], {}, [null], { "": "" }),
  fc.constantFrom(deep(30), deep(70), JSON.parse('{"__proto__":{"admin":true}}'), Array.from({ length: 600 }, (_, i) => i)),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(...lone, "\u0000", "\n", "a", "\u00e9"), maxLength: 8 }),
  fc.jsonValue({ maxDepth: 3 }),
);

function fromPattern(pattern: string): fc.Arbitrary<string> {
  try {
    return fc.stringMatching(new RegExp(pattern)).filter((s) => s.length <= 200);
  } catch {
    return fc.string({ maxLength: 20 });
  }
}

function stringFor(s: JsonSchema, known: KnownIds): fc.Arbitrary<string> {
  if (s.format === "uuid") return fc.oneof(fc.constantFrom(...known.uuids), fc.uuid());
  if (s.format === "date-time") return fc.date({ min: new Date("2020-01-01"), max: new Date("2030-01-01"), noInvalidDate: true }).map((d) => d.toISOString());
  if (s.format === "email") return fc.emailAddress();
  if (s.format === "uri") return fc.webUrl();
  if (s.pattern) return fromPattern(s.pattern);
  return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.max(s.minLength ?? 0, Math.min(s.maxLength ?? 24, 24)) });
}

/** A value that follows the schema closely enough to pass most of the time (types, enums, formats, bounds). */
export function validish(schema: JsonSchema | undefined, known: KnownIds, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 6) return fc.constant(null);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives?.length) return fc.oneof(...alternatives.map((a) => validish(a, known, depth + 1)));
  if (schema.allOf?.length) return validish(Object.assign({}, ...schema.allOf), known, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "string": return stringFor(schema, known);
    case "integer": return fc.integer({ min: schema.minimum ?? -10, max: Math.min(schema.maximum ?? 1000, 2 ** 31) });
    case "number": return fc.double({ min: schema.minimum ?? -10, max: schema.maximum ?? 1000, noNaN: true, noDefaultInfinity: true });
    case "boolean": return fc.boolean();
    case "array": {
      const min = schema.minItems ?? 0;
      return fc.array(validish(schema.items, known, depth + 1), { minLength: min, maxLength: Math.max(min, Math.min(schema.maxItems ?? 3, 3)) });
    }
    case "object": {
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of Object.entries(props)) record[k] = validish(v, known, depth + 1);
      if (Object.keys(props).length === 0 && schema.additionalProperties) {
        const value = typeof schema.additionalProperties === "object" ? schema.additionalProperties : {};
        const key = schema.propertyNames ? stringFor({ type: "string", ...schema.propertyNames }, known) : fc.string({ minLength: 1, maxLength: 12 });
        return fc.dictionary(key, validish(value, known, depth + 1), { maxKeys: 3 });
      }
      return fc.record(record, { requiredKeys: [...required].filter((k) => k in record) });
    }
    default: return fc.jsonValue({ maxDepth: 2 });
  }
}

/** The valid-ish value with one field (or the whole value) replaced by something hostile, or an unknown field added. */
export function mutated(base: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.tuple(base, hostileValue, fc.nat(), fc.boolean()).map(([value, bad, pick, addKey]) => {
    if (!value || typeof value !== "object" || Array.isArray(value)) return bad;
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    if (addKey || keys.length === 0) copy[hostileStrings[pick % hostileStrings.length]!] = bad;
    else copy[keys[pick % keys.length]!] = bad;
    return copy;
  });
}

/**
 * The valid-ish value as text with one field replaced by nesting thousands
 * deep (or a field of its first list element): valid JSON that only a depth
 * limit stops (5,000 levels inside a flow node were a 500).
 */
export function deepInside(base: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.tuple(base, fc.constantFrom(1_000, 5_000, 20_000), fc.nat()).map(([value, depth, pick]) => {
    if (!value || typeof value !== "object" || Array.isArray(value)) return "[".repeat(depth) + "]".repeat(depth);
    const keys = Object.keys(value);
    // Fields holding objects pass unknown content through more often than scalars do.
    const containers = keys.filter((k) => typeof (value as Record<string, unknown>)[k] === "object");
    const pool = containers.length ? containers : keys;
    return nestedAt(value as Record<string, unknown>, pool.length ? pool[pick % pool.length]! : "x", depth);
  });
}

/** `value` as JSON text with field `key` (or a field of its first list element) nested `depth` deep. */
export function nestedAt(value: Record<string, unknown>, key: string, depth: number): string {
  const marker = "\u0001deep\u0001";
  const copy: Record<string, unknown> = { ...value };
  const inner = copy[key];
  // Inside the first element of a list of objects (a flow node's own field), where schemas pass unknown fields through.
  copy[key] = Array.isArray(inner) && inner[0] && typeof inner[0] === "object" ? [{ ...inner[0], nested: marker }, ...inner.slice(1)] : marker;
  return JSON.stringify(copy).replace(JSON.stringify(marker), "[".repeat(depth) + "]".repeat(depth));
}

/** Bodies as text: what JSON.stringify cannot produce (deep, wide, malformed, duplicate keys). */
export const hostileBodyText = fc.constantFrom(
  "[".repeat(5_000) + "]".repeat(5_000),
  '{"a":'.repeat(2_000) + "1" + "}".repeat(2_000),
  `[${"0,".repeat(20_000)}0]`,
  '{"name":"x",', "{", "}", "[", "nul", "{'a':1}", '{"a":1,"a":2}', '{"__proto__":{"role":"admin"}}',
  '{"name":"\\ud800"}', '{"\\udc00":1}', '"\\u0000"', "\ufeff{}", "{}garbage", "1e99999", "-", "",
  '{"flows":[{"id":"a","type":"b","x":' + "[".repeat(100) + "]".repeat(100) + "}]}",
);

/** Path segments, already percent-encoded: hostile ones and the ids the fixtures made. */
export function pathSegment(known: KnownIds): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known.uuids) },
    { weight: 1, arbitrary: fc.uuid() },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        `%00${known.uuids[0]}`, "a".repeat(300), "%ED%A0%80", "%0D%0Ax", "%E2%80%AE", "..", "%2F..%2Fetc", "%25",
        "%F0%9F%98%80", "null", "0", "-1", "admin", "default", encodeURIComponent("=cmd|' /C calc'!A0"), "%C0%AF",
      ),
    },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 12, unit: "grapheme" }).map(encodeURIComponent) },
  );
}

/** A query value, percent-encoded: schema-shaped or hostile. */
export function queryValue(schema: JsonSchema | undefined, known: KnownIds): fc.Arbitrary<string> {
  const safe = (v: unknown) => {
    const s = typeof v === "string" ? v : JSON.stringify(v) ?? "";
    try { return encodeURIComponent(s); } catch { return "%ED%A0%80"; }
  };
  return fc.oneof(
    { weight: 6, arbitrary: validish(schema, known).map(safe) },
    { weight: 1, arbitrary: hostileValue.map(safe) },
    { weight: 1, arbitrary: fc.constantFrom("%00", "%ED%A0%80", "%", "%zz", "a&b=c", "x".repeat(5000), "-1", "1e999", "9".repeat(40)) },
  );
}
