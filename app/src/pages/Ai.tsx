/** AI decisions and cost: the records with filters, totals and cost by model / flow / instance / team, usage over time, and the token budget. */
import { createResource, createSignal, For, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { caller, can } from "../api/me.ts";
import { useCursorList } from "../api/useCursorList.ts";
import { byTeam, groupLabel, hourlyBuckets, sumTotals, type Sum, type TotalsRow } from "../ai/aiTotals.ts";
import { Chart } from "../ui/Chart.tsx";
import { formatCount, formatInstant, formatUsd, localInputToIso, usageOf } from "../ui/format.ts";
import { ListFooter } from "../ui/ListFooter.tsx";

interface Filters { instanceId?: string; flowName?: string; model?: string; from?: string; to?: string }
type Group = "model" | "flow" | "instance";

export function Ai() {
  const [filters, setFilters] = createSignal<Filters>({});
  const [instances] = createResource(async () => (await api.GET("/api/instances", { params: { query: { limit: 200 } } })).data?.items ?? []);
  const instanceName = (id: string) => instances.latest?.find((i) => i.id === id)?.name ?? id.slice(0, 8);
  const teamOf = (id: string) => instances.latest?.find((i) => i.id === id)?.team;
  const list = useCursorList((cursor) => api.GET("/api/ai/decisions", { params: { query: { limit: 50, ...(cursor ? { cursor } : {}), ...filters() } } }));
  const totals = (groupBy: Group) => createResource(filters, async (f) => {
    const { data, error, response } = await api.GET("/api/ai/decisions/totals", { params: { query: { groupBy, limit: 50, ...f } } });
    if (!data) throw new Error(messageOf(error, response));
    return data.items;
  })[0];
  const byModel = totals("model");
  const byFlow = totals("flow");
  const byInstance = totals("instance");
  // The chart over time buckets the latest records (one page of 500): the API totals have no time axis.
  const [recent] = createResource(filters, async (f) => (await api.GET("/api/ai/decisions", { params: { query: { limit: 500, ...f } } })).data?.items ?? []);
  const hours = () => hourlyBuckets(recent.latest ?? []);
  const all = (): Sum => sumTotals(byModel.latest ?? []);

  const apply = (e: SubmitEvent) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim() || undefined;
    const next: Filters = {};
    for (const [k, v] of Object.entries({ instanceId: text("instanceId"), flowName: text("flowName"), model: text("model"), from: localInputToIso(String(f.get("from") ?? "")), to: localInputToIso(String(f.get("to") ?? "")) })) {
      if (v) next[k as keyof Filters] = v;
    }
    setFilters(next);
    void list.reload();
  };

  return (
    <section class="page">
      <div class="page-head"><h1>AI decisions and cost</h1></div>
      <form class="panel form" onSubmit={apply} aria-label="Filter AI decisions">
        <div class="form-grid">
          <label>Instance<select name="instanceId"><option value="">any</option><For each={instances.latest ?? []}>{(i) => <option value={i.id}>{i.name}</option>}</For></select></label>
          <label>Flow<input name="flowName" placeholder="any" /></label>
          <label>Model<input name="model" placeholder="any" /></label>
          <label>From<input name="from" type="datetime-local" /></label>
          <label>To<input name="to" type="datetime-local" /></label>
        </div>
        <div class="actions"><button type="submit" class="primary">Apply filters</button></div>
      </form>
      <Show when={byModel.error}><p class="error" role="alert">{String((byModel.error as Error).message)}</p></Show>

      <div class="kpis" data-testid="ai-totals">
        <div class="kpi"><div class="v">{formatCount(all().calls)}</div><div class="k">calls</div></div>
        <div class="kpi"><div class="v">{formatCount(all().inputTokens, true)}</div><div class="k">input tokens</div></div>
        <div class="kpi"><div class="v">{formatCount(all().outputTokens, true)}</div><div class="k">output tokens</div></div>
        <div class="kpi"><div class="v">{formatUsd(all().costUsd)}</div><div class="k">cost{all().unpricedCalls > 0 ? ` (+${all().unpricedCalls} unpriced calls)` : ""}</div></div>
        <TokenBudget />
      </div>

      <Show when={hours().x.length > 1}>
        <section class="panel" aria-labelledby="ai-time-title">
          <h2 id="ai-time-title">Over time <span class="muted small">(the latest {recent.latest?.length ?? 0} records, per hour)</span></h2>
          <Chart x={hours().x} ys={[hours().tokens, hours().costUsd]} height={160} testId="ai-time-chart"
            summary={`${recent.latest?.length ?? 0} recent calls over ${hours().x.length} hours`}
            series={[{ label: "tokens", color: "--accent", format: (v) => formatCount(v, true) }, { label: "cost", color: "--busy", scale: "usd", format: (v) => formatUsd(v) }]} />
        </section>
      </Show>

      <div class="two-col">
        <CostBreakdown title="By model" rows={byModel.latest ?? []} label={(r) => groupLabel(r)} />
        <CostBreakdown title="By flow" rows={byFlow.latest ?? []} label={(r) => groupLabel(r)} />
        <CostBreakdown title="By instance" rows={byInstance.latest ?? []} label={(r) => groupLabel(r, (_k, v) => instanceName(v))} />
        <TeamBreakdown rows={byTeam(byInstance.latest ?? [], teamOf)} />
      </div>

      <section class="panel" aria-labelledby="ai-list-title">
        <h2 id="ai-list-title">Decisions</h2>
        <Show when={!can("ai_prompts", "read")}><p class="muted small">Prompt and response text are hidden for your role (needs <code>ai_prompts:read</code>).</p></Show>
        <Show when={list.items().length > 0}>
          <table class="grid" data-testid="ai-decisions">
            <thead><tr><th>Time</th><th>Instance</th><th>Flow</th><th>Model</th><th class="num">In</th><th class="num">Out</th><th class="num">Latency</th><th class="num">Cost</th><th>Finish</th><th>Prompt</th></tr></thead>
            <tbody>
              <For each={list.items()}>{(d) => (
                <tr>
                  <td class="muted nowrap">{formatInstant(d.timestamp)}</td>
                  <td>{instanceName(d.instanceId)}</td>
                  <td>{d.flowName}</td>
                  <td>{d.model ?? "—"}<span class="muted"> {d.provider ?? ""}</span></td>
                  <td class="num">{formatCount(d.inputTokens)}</td>
                  <td class="num">{formatCount(d.outputTokens)}</td>
                  <td class="num muted">{d.latencyMs === null ? "—" : `${d.latencyMs} ms`}</td>
                  <td class="num">{formatUsd(d.costUsd)}</td>
                  <td class="muted">{d.finishReason ?? ""}</td>
                  <td class="details" title={d.prompt ?? ""}>{d.redacted || d.prompt === null ? <span class="muted">hidden</span> : d.prompt}</td>
                </tr>
              )}</For>
            </tbody>
          </table>
        </Show>
        <ListFooter list={list} empty={<p class="muted">No AI decisions match. A flow reports its LLM calls through the <code>redforge-ai-audit</code> node (docs/ai-decisions.md).</p>} />
      </section>
    </section>
  );
}

function CostBreakdown(props: { title: string; rows: TotalsRow[]; label: (r: TotalsRow) => string }) {
  const top = () => props.rows.slice(0, 12);
  const cost = () => top().map((r) => (r.costUsd === null ? 0 : Number(r.costUsd)));
  const tokens = () => top().map((r) => r.inputTokens + r.outputTokens);
  return (
    <section class="panel" aria-label={`Cost ${props.title.toLowerCase()}`}>
      <h2>{props.title}</h2>
      <Show when={top().length > 0} fallback={<p class="muted">No calls.</p>}>
        <Chart x={top().map((_, i) => i)} categories={top().map(props.label)} ys={[cost(), tokens()]} height={150}
          summary={`${props.title}: ${top().map((r, i) => `${props.label(r)} ${formatUsd(cost()[i])}`).join(", ")}`}
          series={[{ label: "cost", color: "--busy", bars: true, format: (v) => formatUsd(v) }, { label: "tokens", color: "--accent", scale: "tokens", format: (v) => formatCount(v, true) }]} />
        <table class="grid">
          <thead><tr><th>{props.title.replace("By ", "")}</th><th class="num">Calls</th><th class="num">Tokens in / out</th><th class="num">Cost</th></tr></thead>
          <tbody><For each={top()}>{(r) => <tr><td>{props.label(r)}</td><td class="num">{formatCount(r.calls)}</td><td class="num">{formatCount(r.inputTokens, true)} / {formatCount(r.outputTokens, true)}</td><td class="num">{formatUsd(r.costUsd)}{r.unpricedCalls > 0 ? <span class="muted" title="calls without a price"> +{r.unpricedCalls}?</span> : null}</td></tr>}</For></tbody>
        </table>
      </Show>
    </section>
  );
}

function TeamBreakdown(props: { rows: { team: string; sum: Sum }[] }) {
  return (
    <section class="panel" aria-label="Cost by team">
      <h2>By team</h2>
      <Show when={props.rows.length > 0} fallback={<p class="muted">No calls.</p>}>
        <table class="grid">
          <thead><tr><th>Team</th><th class="num">Calls</th><th class="num">Tokens in / out</th><th class="num">Cost</th></tr></thead>
          <tbody><For each={props.rows}>{(r) => <tr><td>{r.team}</td><td class="num">{formatCount(r.sum.calls)}</td><td class="num">{formatCount(r.sum.inputTokens, true)} / {formatCount(r.sum.outputTokens, true)}</td><td class="num">{formatUsd(r.sum.costUsd)}</td></tr>}</For></tbody>
        </table>
        <p class="muted small">From the per-instance totals (the API groups by instance, flow or model; each instance has one team).</p>
      </Show>
    </section>
  );
}

/** Today's LLM tokens against the team's daily quota (GET /api/quotas/:team/usage). */
function TokenBudget() {
  const [usage] = createResource(() => (can("quotas", "read") ? caller()?.team : undefined), async (team) => (await api.GET("/api/quotas/{team}/usage", { params: { path: { team } } })).data ?? null);
  return (
    <Show when={usage.latest}>{(u) => {
      const use = () => usageOf(u().usage.llmTokensToday, u().limits?.maxLlmTokensPerDay ?? null);
      return (
        <div class="kpi" data-testid="token-budget">
          <div class="v">{use().ratio === null ? formatCount(u().usage.llmTokensToday, true) : <><meter min="0" max="1" low={0.7} high={0.9} optimum={0} value={use().ratio ?? 0} aria-label="LLM tokens used today of the quota" /> {Math.round((use().ratio ?? 0) * 100)} %</>}</div>
          <div class="k">team {u().team}: {use().words} LLM tokens today</div>
        </div>
      );
    }}</Show>
  );
}
