/** The dead-letter page's replay rules (app/src/deadLetters/replayView.ts): the button the API would accept, and the outcome line. */
import { describe, expect, it } from "vitest";
import { replayAction, replayOutcome, type ReplayFacts } from "../../../app/src/deadLetters/replayView.ts";

const letter = (extra: Partial<ReplayFacts> = {}): ReplayFacts => ({ replayState: null, replayResult: null, input: { payload: "x" }, redacted: false, ...extra });

describe("dead-letter replay view", () => {
  it("offers Replay first, Replay again (forced, confirmed) after a replay, nothing while one is pending", () => {
    expect(replayAction(letter())).toEqual({ label: "Replay", force: false, confirm: false });
    expect(replayAction(letter({ replayState: "failed" }))).toEqual({ label: "Replay again", force: true, confirm: true });
    expect(replayAction(letter({ replayState: "succeeded" }))).toEqual({ label: "Replay again", force: true, confirm: true });
    expect(replayAction(letter({ replayState: "pending" }))).toBeNull();
  });

  it("offers nothing for a letter without input or with a truncated one, unless the input is only hidden from this role", () => {
    expect(replayAction(letter({ input: null }))).toBeNull();
    expect(replayAction(letter({ input: { truncated: true, bytes: 70_000 } }))).toBeNull();
    expect(replayAction(letter({ input: null, redacted: true }))).toEqual({ label: "Replay", force: false, confirm: false });
  });

  it("says the outcome in one line", () => {
    expect(replayOutcome(letter())).toBe("");
    expect(replayOutcome(letter({ replayState: "pending" }))).toBe("waiting for the cluster's bridge");
    expect(replayOutcome(letter({ replayState: "failed", replayResult: { ok: false, status: 503, code: "store_unavailable", message: "still down" } }))).toBe("HTTP 503 store_unavailable: still down");
    expect(replayOutcome(letter({ replayState: "succeeded", replayResult: { ok: true, status: 200 } }))).toBe("HTTP 200");
    expect(replayOutcome(letter({ replayState: "failed", replayResult: { ok: false, code: "replay_unreachable", message: "ECONNREFUSED" } }))).toBe("replay_unreachable: ECONNREFUSED");
  });
});
