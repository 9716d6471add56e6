import { describe, expect, it } from "vitest";
import { withEarlierRelease } from "../../bridge/deploy/blueGreen.ts";

// A hold the bridge released on its own (control plane away) is reported with the deployment's next
// switch, so the control plane does not count the drain's held messages as lost.
describe("a bridge-released hold in the next switch's result", () => {
  const base = { from: "b", to: "g", switchedAt: "2026-12-02T17:00:00.000Z" };
  it("adds what the earlier release held and gave back", () => {
    const merged = withEarlierRelease(
      { ...base, replayed: 0, bufferedDuringSwitch: 1, httpReleased: 0, heldHttpReleasedOnBlue: 0 },
      { ...base, to: "b", replayed: 5, bufferedDuringSwitch: 2, httpReleased: 4, heldHttpReleasedOnBlue: 1, heldMqtt: 5, httpHeld: 4, httpRefused: 0, httpUnanswered: 0 },
    );
    expect(merged).toMatchObject({ to: "g", replayed: 5, bufferedDuringSwitch: 3, httpReleased: 4, heldHttpReleasedOnBlue: 1, heldMqtt: 5, httpHeld: 4 });
  });
  it("a count known for only the later hold is not known for both (the control plane then counts a lower bound)", () => {
    const merged = withEarlierRelease(
      { ...base, replayed: 3, bufferedDuringSwitch: 0, httpReleased: 0, heldHttpReleasedOnBlue: 0, heldMqtt: 3 },
      { ...base, replayed: 5, bufferedDuringSwitch: 0, httpReleased: 0, heldHttpReleasedOnBlue: 0 },
    );
    expect(merged.replayed).toBe(8);
    expect(merged.heldMqtt).toBeUndefined();
  });
});
