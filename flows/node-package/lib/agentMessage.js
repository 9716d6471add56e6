/**
 * The agent message contract inside Node-RED: reads a msg_input, builds a
 * msg_output (protocol/agents/messageContract.ts is the definition; this is
 * the package's own check of the same rules, tested against it in
 * test/unit/agents-message.test.ts).
 */
"use strict";

const { CONTENT_TYPES, MESSAGE_STATUSES } = require("./agents.generated.js");

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** { input } when `body` follows msg_input, else { error } (a sentence naming the field). */
function readInput(body) {
  if (!isObject(body)) return { error: "the message is not a JSON object" };
  if (!("payload" in body) || body.payload === undefined) return { error: "payload is required" };
  const m = body.metadata;
  if (!isObject(m)) return { error: "metadata must be an object" };
  if (typeof m.flowId !== "string" || m.flowId.length === 0 || m.flowId.length > 200) return { error: "metadata.flowId must be a string of 1..200 characters" };
  if (typeof m.timestamp !== "string" || !ISO.test(m.timestamp) || Number.isNaN(Date.parse(m.timestamp))) return { error: "metadata.timestamp must be an ISO 8601 date-time" };
  if (m.source !== undefined && (typeof m.source !== "string" || m.source.length === 0 || m.source.length > 200)) return { error: "metadata.source must be a string of 1..200 characters" };
  if (m.contentType !== undefined && !CONTENT_TYPES.includes(m.contentType)) return { error: `metadata.contentType must be one of ${CONTENT_TYPES.join("|")}` };
  if (m.status !== undefined && !MESSAGE_STATUSES.includes(m.status)) return { error: `metadata.status must be one of ${MESSAGE_STATUSES.join("|")}` };
  if (body.config !== undefined && !isObject(body.config)) return { error: "config must be an object" };
  return { input: body };
}

/** HTTP status for an answer: what the caller should do (fix the input, try later, report). */
function httpStatusOf(error) {
  if (!error) return 200;
  if (error.code === "invalid_input") return 400;
  if (error.code === "model_not_approved") return 403;
  if (["model_unavailable", "target_unavailable", "store_unavailable", "converter_unavailable", "model_policy_stale"].includes(error.code)) return 503;
  if (["model_rejected", "model_bad_answer", "target_rejected", "target_bad_answer", "store_rejected"].includes(error.code)) return 502;
  return 500;
}

/**
 * A msg_output. `error` (when set) makes it status error with payload null;
 * `flowId` falls back to a fresh one when the input never had one (unreadable input).
 */
function buildOutput({ flowId, source, contentType, payload, error, config }) {
  const out = {
    payload: error ? null : payload === undefined ? null : payload,
    metadata: {
      flowId: flowId || `unknown-${Date.now().toString(36)}`,
      timestamp: new Date().toISOString(),
      source,
      contentType: CONTENT_TYPES.includes(contentType) ? contentType : "json",
      status: error ? "error" : "success",
    },
    error: error ? { code: String(error.code || "internal_error"), message: String(error.message || "failed").slice(0, 2000), ...(error.attempts !== undefined ? { attempts: error.attempts } : {}) } : null,
  };
  if (isObject(config) && Object.keys(config).length > 0) out.config = config;
  return out;
}

module.exports = { readInput, buildOutput, httpStatusOf };
