import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../db/auditChain.ts";

// The audit chain hashes canonicalJson(details) and verifies against what jsonb gave back.
describe("canonicalJson", () => {
  it("hashes a Date as the string it is stored as (a Date in audit details broke the chain)", () => {
    const from = new Date("2026-12-01T00:00:00.000Z");
    expect(canonicalJson({ filters: { from } })).toBe(canonicalJson(JSON.parse(JSON.stringify({ filters: { from } }))));
    expect(canonicalJson({ from })).toBe('{"from":"2026-12-01T00:00:00.000Z"}');
  });
  it("sorts keys at every level and drops undefined, as jsonb round trips do", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, undefined], c: undefined } })).toBe('{"a":{"d":[1,null]},"b":1}');
  });
});
