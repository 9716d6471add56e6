// GENERATED from protocol/agents/messageContract.ts by flows/node-package/scripts/generate-agents-contract.mts. Do not edit.
"use strict";

const CONTENT_TYPES = Object.freeze(["text","binary","json"]);
const MESSAGE_STATUSES = Object.freeze(["success","error","retrying"]);
const AGENT_ERROR_CODES = Object.freeze(["invalid_input","model_unavailable","model_rejected","model_bad_answer","target_unavailable","target_rejected","target_bad_answer","internal_error","store_unavailable","store_rejected","converter_unavailable","model_not_approved","model_policy_stale"]);
const DLQ_TOPIC_TEMPLATE = "redforge/dlq/{instance}";

module.exports = { CONTENT_TYPES, MESSAGE_STATUSES, AGENT_ERROR_CODES, DLQ_TOPIC_TEMPLATE };
