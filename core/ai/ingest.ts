/**
 * Stores one verified batch of AI decision records: every instance must belong
 * to the sending cluster, cost comes from the price table, all rows go in one
 * multi-row INSERT, and each team's daily token counter grows by what its
 * instances used. A batch is stored once per batchId (the bridge keeps the id
 * across retries); the mark is set right after the insert commits, so only a
 * crash between the two can store a batch twice.
 */
import { and, eq, getTableColumns, inArray, sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { aiDecisionLogs, instances, modelPrices } from "../../db/schema.ts";
import { ApiError } from "../errors.ts";
import { addTokens } from "../governance/tokenUsage.ts";
import type { KvStore } from "../platform/kv.ts";
import type { AiDecisionBatch, AiDecisionRecord } from "../../protocol/aiDecisions.ts";
import { costUsd, priceBook, type PriceBook } from "./prices.ts";

const BATCH_MARK_TTL_SECONDS = 24 * 60 * 60;

export interface IngestResult {
  stored: number;
  duplicate: boolean;
  /** False when the rows were stored but a team's token counter could not be updated (logged). */
  tokensCounted: boolean;
  /** Tokens and priced cost of the stored records per model and team (GET /metrics counts them). */
  usage: Array<{ model: string; team: string; tokens: number; costUsd: number }>;
}

export async function ingestAiDecisions(
  services: { db: Db; kv: KvStore },
  clusterId: string,
  batch: AiDecisionBatch,
  receivedAt: Date,
): Promise<IngestResult> {
  const { db, kv } = services;
  const mark = `ai-batch:${clusterId}:${batch.batchId}`;
  // The KV and the database answer in parallel; database queries stay on one connection.
  const [seen, { teams, book }] = await Promise.all([kv.get(mark), lookUp(db, clusterId, batch.records)]);
  if (seen) return { stored: 0, duplicate: true, tokensCounted: true, usage: [] };
  const rows = batch.records.map((r) => toRow(r, book, receivedAt));
  await insertRows(db, rows);

  const [, tokensCounted] = await Promise.all([
    kv.set(mark, "1", { ex: BATCH_MARK_TTL_SECONDS }),
    countTokens(kv, batch.records, teams, receivedAt).then(() => true, (err: unknown) => {
      console.error(JSON.stringify({ msg: "ai decisions stored but token counters not updated", clusterId, batchId: batch.batchId, err: String(err) }));
      return false;
    }),
  ]);
  return { stored: batch.records.length, duplicate: false, tokensCounted, usage: usageOf(rows, teams) };
}

function usageOf(rows: Row[], teams: Map<string, string>): IngestResult["usage"] {
  const by = new Map<string, IngestResult["usage"][number]>();
  for (const r of rows) {
    const model = r.model ?? "unknown";
    const team = teams.get(r.instanceId) ?? "unknown";
    const key = `${model}\u0000${team}`;
    const u = by.get(key) ?? { model, team, tokens: 0, costUsd: 0 };
    u.tokens += r.tokensUsed ?? 0;
    u.costUsd += r.costUsd === null ? 0 : Number(r.costUsd);
    by.set(key, u);
  }
  return [...by.values()];
}

/**
 * Instance id → team and the price book, in one statement (one round trip
 * before the insert instead of two); 403 naming the ids that are not this cluster's.
 */
async function lookUp(db: Db, clusterId: string, records: AiDecisionRecord[]): Promise<{ teams: Map<string, string>; book: PriceBook }> {
  const ids = new Set<string>();
  const providers = new Set<string>();
  const models = new Set<string>();
  for (const r of records) { ids.add(r.instanceId); providers.add(r.provider); models.add(r.model); }
  const { rows: [found] } = await db.execute<{ teams: [string, string][]; prices: [string, string, number, number][] }>(sql`
    select
      (select coalesce(json_agg(json_build_array(${instances.id}, ${instances.team})), '[]'::json) from ${instances}
        where ${and(eq(instances.clusterId, clusterId), inArray(instances.id, [...ids]))}) as teams,
      (select coalesce(json_agg(json_build_array(${modelPrices.provider}, ${modelPrices.model}, ${modelPrices.inputUsdPerMtok}, ${modelPrices.outputUsdPerMtok})), '[]'::json)
        from ${modelPrices} where ${and(inArray(modelPrices.provider, [...providers]), inArray(modelPrices.model, [...models]))}) as prices`);
  const teams = new Map(found!.teams);
  const foreign = [...ids].filter((id) => !teams.has(id));
  if (foreign.length > 0) {
    throw new ApiError(403, "instance_not_in_cluster", `${foreign.length} instance(s) in this batch do not belong to cluster ${clusterId}; nothing was stored`, { instanceIds: foreign });
  }
  return { teams, book: priceBook(found!.prices.map(([provider, model, input, output]) => ({ provider, model, inputUsdPerMtok: input, outputUsdPerMtok: output }))) };
}

type Row = Omit<typeof aiDecisionLogs.$inferInsert, "id">;

/**
 * One INSERT … SELECT FROM json_to_recordset($1): the whole batch travels as
 * a single JSON parameter. The same batch as VALUES with ~12,000 bind
 * parameters took 120–500 ms per 500 rows through the Neon driver, which
 * capped ingest near 2,000 records/s on this machine (bench/ai-ingest).
 */
async function insertRows(db: Db, rows: Row[]): Promise<void> {
  const columns = getTableColumns(aiDecisionLogs);
  const keys = Object.keys(rows[0]!) as (keyof Row)[];
  const names = sql.raw(keys.map((k) => `"${columns[k].name}"`).join(", "));
  const shape = sql.raw(keys.map((k) => `"${columns[k].name}" ${columns[k].getSQLType()}`).join(", "));
  const columnNames = keys.map((k) => columns[k].name);
  // A loop, not Object.fromEntries(keys.map(…)) per row: two arrays fewer per record on the hot path.
  const renamed = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const o: Record<string, unknown> = {};
    for (let j = 0; j < keys.length; j++) o[columnNames[j]!] = row[keys[j]!];
    renamed[i] = o;
  }
  const json = JSON.stringify(renamed);
  await db.execute(sql`insert into ${aiDecisionLogs} (${names}) select ${names} from json_to_recordset(${json}::json) as r(${shape})`);
}

function toRow(r: AiDecisionRecord, book: PriceBook, receivedAt: Date): Row & { receivedAt: Date; timestamp: Date } {
  const tokens = r.inputTokens === undefined && r.outputTokens === undefined ? null : (r.inputTokens ?? 0) + (r.outputTokens ?? 0);
  return {
    timestamp: r.timestamp ? new Date(r.timestamp) : receivedAt,
    receivedAt,
    instanceId: r.instanceId,
    flowName: r.flowName || "(unnamed)",
    flowId: r.flowId ?? null,
    provider: r.provider,
    model: r.model,
    responseModel: r.responseModel ?? null,
    operationName: r.operationName ?? "chat",
    prompt: r.prompt ?? null,
    response: r.response ?? null,
    confidence: r.confidence ?? null,
    inputTokens: r.inputTokens ?? null,
    outputTokens: r.outputTokens ?? null,
    tokensUsed: tokens,
    finishReason: r.finishReason ?? null,
    latencyMs: r.latencyMs ?? null,
    timeToFirstTokenMs: r.timeToFirstTokenMs ?? null,
    costUsd: costUsd(book, r),
    traceId: r.traceId ?? null,
    spanId: r.spanId ?? null,
    responseId: r.responseId ?? null,
    metadata: r.metadata ?? null,
  };
}

/**
 * Counted on the UTC day the control plane received the records, the day a
 * quota check looks at: a node with a skewed clock cannot book tokens on
 * another day's budget.
 */
async function countTokens(kv: KvStore, records: AiDecisionRecord[], teams: Map<string, string>, at: Date): Promise<void> {
  const perTeam = new Map<string, number>();
  for (const r of records) {
    const team = teams.get(r.instanceId)!;
    perTeam.set(team, (perTeam.get(team) ?? 0) + (r.inputTokens ?? 0) + (r.outputTokens ?? 0));
  }
  await Promise.all([...perTeam].filter(([, n]) => n > 0).map(([team, n]) => addTokens(kv, team, n, at)));
}
