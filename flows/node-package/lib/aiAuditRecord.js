/**
 * Turns what a flow says about one LLM call (msg.aiDecision) into the wire
 * record the bridge forwards (protocol/aiDecisions.ts): known fields
 * only, text cut to MAX_TEXT, numbers checked, flow and instance filled in.
 * Returns { record } or { error } (a sentence for the flow author).
 */
"use strict";

// Same limit the control plane enforces (MAX_AI_TEXT); the rest of a long prompt is not kept.
const MAX_TEXT = 32768;
const STRINGS = { provider: 100, model: 100, responseModel: 100, operationName: 50, finishReason: 50, traceId: 64, spanId: 32, responseId: 255, flowName: 255, flowId: 100 };
const COUNTS = ["inputTokens", "outputTokens", "latencyMs", "timeToFirstTokenMs"];

function text(value) {
  if (value === undefined || value === null) return undefined;
  const s = typeof value === "string" ? value : JSON.stringify(value);
  return s.length > MAX_TEXT ? { text: s.slice(0, MAX_TEXT), cut: s.length } : { text: s };
}

function buildRecord(input, context) {
  if (!input || typeof input !== "object") return { error: "msg.aiDecision is missing or not an object" };
  for (const key of ["provider", "model"]) {
    if (typeof input[key] !== "string" || input[key].length === 0) return { error: `aiDecision.${key} must be a non-empty string` };
  }
  const record = { instanceId: context.instanceId, timestamp: new Date().toISOString(), operationName: "chat" };
  if (context.flowName) record.flowName = context.flowName;
  if (context.flowId) record.flowId = context.flowId;
  for (const [key, max] of Object.entries(STRINGS)) {
    const v = input[key];
    if (v === undefined || v === null || v === "") continue;
    record[key] = String(v).slice(0, max);
  }
  for (const key of COUNTS) {
    const v = input[key];
    if (v === undefined || v === null) continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) return { error: `aiDecision.${key} must be a non-negative number` };
    record[key] = Math.round(n);
  }
  if (input.confidence !== undefined && input.confidence !== null) {
    const c = Number(input.confidence);
    if (Number.isFinite(c) && c >= 0 && c <= 1) record.confidence = c;
  }
  if (input.timestamp) {
    const t = new Date(input.timestamp);
    if (!Number.isNaN(t.getTime())) record.timestamp = t.toISOString();
  }
  const metadata = input.metadata && typeof input.metadata === "object" ? { ...input.metadata } : {};
  for (const key of ["prompt", "response"]) {
    const t = text(input[key]);
    if (!t) continue;
    record[key] = t.text;
    if (t.cut) metadata[`${key}Truncated`] = t.cut;
  }
  if (Object.keys(metadata).length > 0) record.metadata = metadata;
  return { record };
}

module.exports = { buildRecord, MAX_TEXT };
