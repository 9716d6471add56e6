import { describe, expect, it } from "vitest";
import { formatBytes, formatCount, formatInstant, formatUsd, localInputToIso, usageOf } from "../../../app/src/ui/format.ts";
import { healthColumns, readyShare, type HealthPoint } from "../../../app/src/instances/health.ts";

describe("formatting for people", () => {
  it("sizes in binary units with one decimal below 100", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(150 * 1024 * 1024)).toBe("150 MiB");
    expect(formatBytes(null)).toBe("—");
  });

  it("money from the API's decimal strings: cents, or two significant digits below a cent", () => {
    expect(formatUsd("12.3456")).toBe("$12.35");
    expect(formatUsd("0.000375")).toBe("$0.00038");
    expect(formatUsd(0)).toBe("$0.00");
    expect(formatUsd("1234567.1")).toBe("$1,234,567.10");
    expect(formatUsd(null)).toBe("—");
    expect(formatUsd("not a number")).toBe("—");
  });

  it("counts with separators, compact past ten thousand when asked", () => {
    expect(formatCount(1234)).toBe("1,234");
    expect(formatCount(1_250_000, true)).toBe("1.25M");
    expect(formatCount(45_600, true)).toBe("45.6k");
    expect(formatCount(9_999, true)).toBe("9,999");
  });

  it("usage against a limit, and no limit as such", () => {
    expect(usageOf(50, 200)).toEqual({ ratio: 0.25, words: "50 of 200 (25 %)" });
    expect(usageOf(300, 200).ratio).toBe(1);
    expect(usageOf(7, null)).toEqual({ ratio: null, words: "7 (no limit)" });
    expect(usageOf(0, 0).ratio).toBe(0);
  });

  it("instants as dense local date and time, and datetime-local input back to ISO", () => {
    const iso = new Date(2026, 11, 2, 9, 5, 7).toISOString();
    expect(formatInstant(iso)).toBe("2026-12-02 09:05:07");
    expect(formatInstant(null)).toBe("—");
    expect(localInputToIso("2026-12-02T09:05")).toBe(new Date(2026, 11, 2, 9, 5).toISOString());
    expect(localInputToIso("")).toBeUndefined();
  });
});

describe("health history as chart columns", () => {
  const p = (at: string, rss: number | null, ready: boolean, live = true): HealthPoint => ({
    checkedAt: at, state: "running", live, ready, rssBytes: rss, heapUsedBytes: rss === null ? null : rss / 2, flowsState: "started", missingNodeTypes: [], error: null,
  });

  it("orders by time, converts to MiB and seconds, and plots not-live as not ready", () => {
    const cols = healthColumns([p("2026-12-02T10:01:00Z", 200 * 1048576, true), p("2026-12-02T10:00:00Z", null, true, false)]);
    expect(cols.x).toEqual([Date.parse("2026-12-02T10:00:00Z") / 1000, Date.parse("2026-12-02T10:01:00Z") / 1000]);
    expect(cols.rssMiB).toEqual([null, 200]);
    expect(cols.heapMiB).toEqual([null, 100]);
    expect(cols.ready).toEqual([0, 1]);
  });

  it("the share of the window the instance was ready", () => {
    expect(readyShare([])).toBeNull();
    expect(readyShare([p("2026-12-02T10:00:00Z", 1, true), p("2026-12-02T10:01:00Z", 1, false)])).toBe(0.5);
  });
});
