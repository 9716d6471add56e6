/**
 * AI totals for a person: the API's groups (by instance, flow or model) summed,
 * regrouped by team (an instance belongs to one team), and decisions bucketed
 * by hour for a chart over time. Costs are decimal strings from the API; sums
 * are done in micro-dollars so 0.1 + 0.2 stays 0.3.
 */
import type { components } from "../../../protocol/api/client.ts";

export type TotalsRow = components["schemas"]["AiTotals"]["items"][number];
export type Decision = components["schemas"]["AiDecision"];

export interface Sum { calls: number; inputTokens: number; outputTokens: number; costUsd: number; unpricedCalls: number }

const micro = (usd: string | null): number => (usd === null ? 0 : Math.round(Number(usd) * 1e6) || 0);

export function sumTotals(rows: readonly Pick<TotalsRow, "calls" | "inputTokens" | "outputTokens" | "costUsd" | "unpricedCalls">[]): Sum {
  let costMicro = 0;
  const s = { calls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, unpricedCalls: 0 };
  for (const r of rows) {
    s.calls += r.calls; s.inputTokens += r.inputTokens; s.outputTokens += r.outputTokens; s.unpricedCalls += r.unpricedCalls;
    costMicro += micro(r.costUsd);
  }
  return { ...s, costUsd: costMicro / 1e6 };
}

/** The name a group row is shown by: its key's values joined ("openai / gpt-4o-mini"). */
export function groupLabel(row: TotalsRow, nameOf: (key: string, value: string) => string = (_k, v) => v): string {
  return Object.entries(row.key).map(([k, v]) => (v === null ? "(none)" : nameOf(k, v))).join(" / ") || "(all)";
}

/** Instance totals regrouped by the instance's team (unknown instances under "(deleted)"). */
export function byTeam(instanceRows: readonly TotalsRow[], teamOf: (instanceId: string) => string | undefined): { team: string; sum: Sum }[] {
  const groups = new Map<string, TotalsRow[]>();
  for (const r of instanceRows) {
    const id = r.key.instanceId ?? r.key.instance ?? "";
    const team = (id && teamOf(id)) || "(deleted)";
    groups.set(team, [...(groups.get(team) ?? []), r]);
  }
  return [...groups].map(([team, rows]) => ({ team, sum: sumTotals(rows) })).sort((a, b) => b.sum.costUsd - a.sum.costUsd || b.sum.calls - a.sum.calls);
}

export interface HourBuckets { x: number[]; tokens: number[]; costUsd: number[]; calls: number[] }

/** Decisions per hour (seconds since the epoch at the hour's start), oldest first, with empty hours filled. */
export function hourlyBuckets(decisions: readonly Pick<Decision, "timestamp" | "inputTokens" | "outputTokens" | "tokensUsed" | "costUsd">[]): HourBuckets {
  const HOUR = 3600;
  const by = new Map<number, { tokens: number; cost: number; calls: number }>();
  for (const d of decisions) {
    const t = Math.floor(Date.parse(d.timestamp) / 1000 / HOUR) * HOUR;
    if (!Number.isFinite(t)) continue;
    const b = by.get(t) ?? { tokens: 0, cost: 0, calls: 0 };
    b.tokens += (d.inputTokens ?? 0) + (d.outputTokens ?? 0) || (d.tokensUsed ?? 0);
    b.cost += micro(d.costUsd);
    b.calls += 1;
    by.set(t, b);
  }
  if (by.size === 0) return { x: [], tokens: [], costUsd: [], calls: [] };
  const keys = [...by.keys()];
  const first = Math.min(...keys);
  const last = Math.max(...keys);
  const out: HourBuckets = { x: [], tokens: [], costUsd: [], calls: [] };
  for (let t = first; t <= last; t += HOUR) {
    const b = by.get(t);
    out.x.push(t); out.tokens.push(b?.tokens ?? 0); out.costUsd.push((b?.cost ?? 0) / 1e6); out.calls.push(b?.calls ?? 0);
  }
  return out;
}
