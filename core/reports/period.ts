/** The complete UTC period before `now` that a scheduled export covers: [from, to). */
export type Period = "day" | "week" | "month";

export function previousPeriod(period: Period, now: Date): { from: Date; to: Date } {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  if (period === "day") return { from: new Date(midnight - 86_400_000), to: new Date(midnight) };
  if (period === "week") {
    // ISO weeks start on Monday.
    const sinceMonday = (now.getUTCDay() + 6) % 7;
    const to = midnight - sinceMonday * 86_400_000;
    return { from: new Date(to - 7 * 86_400_000), to: new Date(to) };
  }
  return {
    from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)),
    to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
  };
}
