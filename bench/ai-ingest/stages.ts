/**
 * bench/ai-ingest/stages: CPU per 500-record batch of each step the Worker
 * runs for one AI-decision webhook, in this process (Node's V8, the engine
 * workerd runs): where bench/ai-ingest's "workerd ms per 1,000 records" goes.
 *   JITLESS=1 npx tsx bench/ai-ingest/stages.ts   (JITLESS: zod without eval, as in workerd)
 */
import { aiDecisionBatchSchema, type AiDecisionRecord } from "../../protocol/aiDecisions.ts";
import { assertJsonWithinLimits } from "../../core/jsonLimits.ts";
import { sessionUpdates } from "../../core/coordination/recordSessions.ts";
import { webhookHeaders, verifyWebhook } from "../../protocol/webhooks.ts";
import { parseAiDecisionBatch } from "../../core/ai/parseBatch.ts";

const PROMPT = "Summarise the customer's last three tickets and suggest a reply. ".repeat(3);
const RESPONSE = "The customer reported a billing error twice; suggest a refund and an apology. ".repeat(3);
const records: AiDecisionRecord[] = Array.from({ length: 500 }, (_, i) => ({
  instanceId: crypto.randomUUID(), timestamp: new Date().toISOString(), provider: "openai", model: i % 5 === 0 ? "gpt-4o" : "gpt-4o-mini",
  operationName: "chat", flowName: `flow-${i % 7}`, prompt: PROMPT, response: RESPONSE,
  inputTokens: 800 + (i % 400), outputTokens: 200 + (i % 100), finishReason: "stop", latencyMs: 900, timeToFirstTokenMs: 150,
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
}));
const body = JSON.stringify({ batchId: crypto.randomUUID(), records });
const secret = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;

async function time(label: string, fn: () => unknown, n = 200): Promise<number> {
  for (let i = 0; i < 20; i++) await fn();
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const u = process.cpuUsage(t0);
  const ms = (u.user + u.system) / 1000 / n;
  console.log(`  ${label.padEnd(44)} ${ms.toFixed(2).padStart(7)} ms CPU per batch`);
  return ms;
}

async function main() {
  if (process.env.JITLESS) (await import("zod")).z.config({ jitless: true });
  console.log(`one batch: 500 records, ${(body.length / 1024).toFixed(0)} KiB of JSON`);
  const headers = new Headers(await webhookHeaders(secret, body));
  await time("verify the signature (HMAC-SHA256)", () => verifyWebhook([secret], headers, body));
  await time("assertJsonWithinLimits (shape scan)", () => assertJsonWithinLimits(body));
  await time("JSON.parse", () => JSON.parse(body));
  const raw = JSON.parse(body);
  await time("zod: aiDecisionBatchSchema.safeParse", () => aiDecisionBatchSchema.safeParse(raw));
  await time("parseAiDecisionBatch (hot-path check)", () => parseAiDecisionBatch(raw));
  await time("sessionUpdates (coordination scan)", () => sessionUpdates(records));
  await time("JSON.stringify rows for json_to_recordset", () => JSON.stringify(records));
}

main();
