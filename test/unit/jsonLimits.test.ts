/** The one JSON scan of core/jsonLimits.ts agrees with a parser's view of depth, breadth and well-formed strings. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../core/errors.ts";
import { MAX_JSON_DEPTH, MAX_JSON_MEMBERS, assertJsonWithinLimits, hasLoneSurrogate } from "../../core/jsonLimits.ts";

function depthOf(v: unknown): number {
  if (v === null || typeof v !== "object") return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}

function widthOf(v: unknown): number {
  if (v === null || typeof v !== "object") return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return Math.max(children.length, ...children.map(widthOf));
}

function codeOf(text: string): string | null {
  try { assertJsonWithinLimits(text); return null; } catch (err) { return err instanceof ApiError ? err.code : "crash"; }
}

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

describe("JSON limits", () => {
  it("accept any JSON within the limits and refuse exactly those holding a lone surrogate (seed 1212)", () => {
    // Code points, lone halves of a pair, whole pairs and JSON's own structural characters inside strings.
    const unit = fc.oneof(
      { weight: 20, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
      fc.constantFrom("\ud800", "\udfff", "\ud83d\ude00", "\\", '"', "[", "{", ","),
    );
    const value = fc.jsonValue({ maxDepth: 6, stringUnit: unit });
    fc.assert(fc.property(value, fc.constantFrom("", " ", "\n\t"), (v, space) => {
      expect(depthOf(v)).toBeLessThanOrEqual(MAX_JSON_DEPTH);
      expect(widthOf(v)).toBeLessThanOrEqual(MAX_JSON_MEMBERS);
      const strings = JSON.stringify(v).match(/"(?:[^"\\]|\\.)*"/g) ?? [];
      const lone = strings.some((s) => hasLoneSurrogate(JSON.parse(s)));
      expect(codeOf(JSON.stringify(v, null, space))).toBe(lone ? "validation_failed" : null);
    }), { seed: 1212, numRuns: 2000 });
  });

  it("the exact boundaries: depth 64 and 10,000 members pass, one more does not", () => {
    expect(codeOf(nested(MAX_JSON_DEPTH))).toBeNull();
    expect(codeOf(nested(MAX_JSON_DEPTH + 1))).toBe("json_too_deep");
    expect(codeOf(nested(100_000))).toBe("json_too_deep");
    expect(codeOf(`[${Array(MAX_JSON_MEMBERS).fill(0).join(",")}]`)).toBeNull();
    expect(codeOf(`[${Array(MAX_JSON_MEMBERS + 1).fill(0).join(",")}]`)).toBe("json_too_wide");
    expect(codeOf(`{${Array.from({ length: MAX_JSON_MEMBERS + 1 }, (_, i) => `"k${i}":[]`).join(",")}}`)).toBe("json_too_wide");
  });

  it("brackets, commas and escapes inside strings are text, not structure", () => {
    expect(codeOf(JSON.stringify({ a: nested(1000), b: ",".repeat(20_000), c: '\\"[[[' }))).toBeNull();
  });

  it("lone surrogates are refused raw or escaped, in keys and values; pairs pass", () => {
    for (const bad of ['"\\ud800"', '"\\udc00"', '{"\\udbff":1}', '"\\ud800\\u0041"', '"\\ud800"', JSON.stringify("x\ud800"), '"\ud800"', '"\\ud83d\\ud83d"']) {
      expect(codeOf(bad), bad).toBe("validation_failed");
    }
    for (const good of ['"\\ud83d\\ude00"', '"\ud83d\ude00"', '"\\ud83d\ude00"', '"\\\\ud800"', '"\\u0000"']) {
      expect(codeOf(good), good).toBeNull();
    }
  });
});
