import { describe, expect, it } from "vitest";
import { settleWithin } from "../../core/platform/boundedAll.ts";

describe("settleWithin", () => {
  it("keeps at most `concurrency` calls in flight and returns every answer by index", async () => {
    let inFlight = 0, most = 0;
    const got = await settleWithin(Array.from({ length: 50 }, (_, i) => i), async (i) => {
      inFlight++; most = Math.max(most, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return i * 2;
    }, { concurrency: 4, deadlineMs: 60_000 });
    expect(most).toBe(4);
    expect(got.size).toBe(50);
    expect(got.get(49)).toBe(98);
  });

  it("answers at the deadline without the calls that never return, and drops the ones that fail", async () => {
    const never = new Promise<number>(() => {});
    const got = await settleWithin([0, 1, 2, 3], (i) => (i === 1 ? never : i === 2 ? Promise.reject(new Error("down")) : Promise.resolve(i)), { concurrency: 4, deadlineMs: 200 });
    expect([...got.keys()].sort()).toEqual([0, 3]);
  });

  it("starts nothing new once the deadline passed: a lane stuck on a silent call does not hold the rest", async () => {
    const never = new Promise<number>(() => {});
    const started: number[] = [];
    const got = await settleWithin([0, 1, 2], (i) => { started.push(i); return never; }, { concurrency: 1, deadlineMs: 100 });
    expect(got.size).toBe(0);
    expect(started).toEqual([0]);
  });
});
