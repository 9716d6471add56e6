/**
 * A rollout's plan, pure: cumulative wave targets resolved over the selection
 * taken at start, and the failure-budget rule. No I/O, so the waves a request
 * produces can be tested (and shown) without a fleet.
 */
import type { FailureBudget, WaveTarget } from "../../protocol/api/rollouts.ts";

export type PlanProblem = { code: "waves_incomplete" | "waves_not_cumulative"; message: string };

/** A target as an instance count over `total` instances: "N%" rounds up, so 10 % of 3 is 1, never 0. */
export function resolveTarget(target: WaveTarget, total: number): number {
  if (typeof target === "number") return Math.min(target, total);
  return Math.ceil((Number(target.slice(0, -1)) * total) / 100);
}

/**
 * The cumulative count after each wave. Targets that add nobody (10 % and 1 of 3 instances are both 1) are
 * dropped, so every wave has at least one instance. The last must cover the selection; a target smaller than
 * one before it is refused (the request then means something other than what it says).
 */
export function resolveWaves(targets: readonly WaveTarget[], total: number): number[] | PlanProblem {
  const out: number[] = [];
  let previous = 0;
  for (const [i, target] of targets.entries()) {
    const n = resolveTarget(target, total);
    const asked = typeof target === "number" ? target : n;
    if (asked < previous) {
      return { code: "waves_not_cumulative", message: `wave ${i + 1} (${target}) resolves to ${n} instances, fewer than the ${previous} before it; targets are cumulative` };
    }
    if (n > previous) out.push(n);
    previous = Math.max(previous, n);
  }
  if (previous < total) {
    return { code: "waves_incomplete", message: `the last wave (${targets.at(-1)}) covers ${previous} of the ${total} selected instances; end with "100%" or a count ≥ ${total}` };
  }
  return out;
}

/** The instance ids of each wave: the sorted selection cut at the cumulative counts. */
export function splitWaves<T>(sorted: readonly T[], cumulative: readonly number[]): T[][] {
  return cumulative.map((end, i) => sorted.slice(i === 0 ? 0 : cumulative[i - 1]!, end));
}

/** Whether `failed` of a wave's `size` instances is more than the budget allows (either limit). */
export function budgetExceeded(budget: FailureBudget, failed: number, size: number): boolean {
  if (budget.maxFailedInstances !== undefined && failed > budget.maxFailedInstances) return true;
  if (budget.maxFailedPercent !== undefined && size > 0 && (failed * 100) / size > budget.maxFailedPercent) return true;
  return false;
}
