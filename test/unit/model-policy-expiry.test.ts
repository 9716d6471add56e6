/**
 * The instance's approved-model check with lists that run out
 * (flows/node-package/lib/modelPolicy.js): a list is used until its
 * expiresAt, then every call is refused model_policy_stale (fail closed); an
 * older bridge's list without expiresAt runs out MODEL_POLICY_MAX_AGE_S after
 * fetchedAt; a withdrawn list refuses; an unknown model on a fresh list is
 * still model_not_approved; and the answer's HTTP status is 503 (try later).
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const { verdictFor, staleness } = require("../../flows/node-package/lib/modelPolicy.js") as {
  verdictFor: (current: unknown, call: { model: string; provider?: string }, opts: { now: number; maxAgeS?: string; required?: boolean }) => { allowed: boolean; code?: string; reason?: string; unchecked?: boolean };
  staleness: (current: unknown, now: number, maxAgeS?: string) => string | undefined;
};
const { httpStatusOf } = require("../../flows/node-package/lib/agentMessage.js") as { httpStatusOf: (e: { code: string }) => number };

const T = Date.parse("2026-12-03T08:00:00.000Z");
const list = (fetchedAt: number, expiresAt?: number) => ({
  instanceId: "i", policies: [{ name: "approved", models: ["llama3.2"] }],
  fetchedAt: new Date(fetchedAt).toISOString(), ...(expiresAt !== undefined ? { expiresAt: new Date(expiresAt).toISOString() } : {}),
});
const call = { model: "llama3.2", provider: "ollama" };

describe("approved-model lists expire", () => {
  it("a list is used up to its expiresAt and refused model_policy_stale after it", () => {
    const current = list(T, T + 600_000);
    expect(verdictFor(current, call, { now: T + 600_000 })).toEqual({ allowed: true });
    const after = verdictFor(current, call, { now: T + 600_001 });
    expect(after).toMatchObject({ allowed: false, code: "model_policy_stale" });
    expect(after.reason).toContain("expired at 2026-12-03T08:10:00.000Z");
    // Fail closed even when no list would have let the call pass unchecked.
    expect(verdictFor(current, call, { now: T + 600_001, required: false }).allowed).toBe(false);
  });

  it("a fresh list still refuses an unlisted model as model_not_approved", () => {
    expect(verdictFor(list(T, T + 1000), { model: "gpt-x" }, { now: T })).toMatchObject({ allowed: false, code: "model_not_approved", policy: "approved" });
  });

  it("an older bridge's list without expiresAt runs out MODEL_POLICY_MAX_AGE_S (default 600) after fetchedAt", () => {
    expect(staleness(list(T), T + 600_000)).toBeUndefined();
    expect(staleness(list(T), T + 600_001)).toContain("expired");
    expect(staleness(list(T), T + 61_000, "60")).toContain("expired");
    expect(staleness({ policies: [] }, T)).toContain("expired");
  });

  it("a withdrawn list refuses; no list at all passes unchecked unless required", () => {
    expect(verdictFor({ withdrawn: true, at: new Date(T).toISOString() }, call, { now: T })).toMatchObject({ allowed: false, code: "model_policy_stale" });
    expect(verdictFor(undefined, call, { now: T })).toEqual({ allowed: true, unchecked: true });
    expect(verdictFor(undefined, call, { now: T, required: true })).toMatchObject({ allowed: false, code: "model_not_approved" });
  });

  it("model_policy_stale answers 503: the caller may try later", () => {
    expect(httpStatusOf({ code: "model_policy_stale" })).toBe(503);
    expect(httpStatusOf({ code: "model_not_approved" })).toBe(403);
  });
});
