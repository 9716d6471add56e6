/**
 * The message contract agent flows exchange (seed ARCHITECTURE.md §3.2):
 * `msg_input` is what a primitive accepts, `msg_output` what it answers.
 *
 *   { payload, metadata: { flowId, timestamp, source, contentType, status }, config, error }
 *
 * The JSON Schemas published beside this file (msg_input.schema.json,
 * msg_output.schema.json) are generated from these zod schemas
 * (`npx tsx protocol/agents/generateSchemas.mts`); test/unit/agents-contract.test.ts
 * fails when they are stale. The node package cannot import TypeScript: its
 * copy of the enums and the DLQ topic is flows/node-package/lib/agents.generated.js.
 *
 * Until December 2026 the contract's status was `pending|processing|completed|failed`
 * and contentType a free string (often a MIME type). `legacy: true` in
 * flowAnswerViolation accepts those answers so existing flows keep passing
 * smoke checks while they migrate (docs/agents.md, "Migrating existing flows").
 */
import { z } from "zod";

export const CONTENT_TYPES = ["text", "binary", "json"] as const;
export type ContentType = (typeof CONTENT_TYPES)[number];

/** `retrying`: the primitive answered, but its work is queued for another attempt (not final). */
export const MESSAGE_STATUSES = ["success", "error", "retrying"] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** The old enum and what each value means in the new one (no equivalent: drop the field on input). */
export const LEGACY_STATUSES = { completed: "success", failed: "error", pending: undefined, processing: undefined } as const;

/** Failure codes the primitives put in `error.code`; flows may add their own. */
export const AGENT_ERROR_CODES = [
  "invalid_input", // the message does not follow msg_input
  "model_unavailable", // the model endpoint did not answer (refused, timed out, 5xx) after every retry
  "model_rejected", // the model endpoint answered 4xx: retrying would not help
  "model_bad_answer", // the model answered 2xx with a body the primitive cannot read
  "target_unavailable", // error-handling: the primitive it calls did not answer (refused, timed out, 5xx without a msg_output)
  "target_rejected", // error-handling: the primitive it calls answered 4xx without a msg_output
  "target_bad_answer", // error-handling: the primitive it calls answered 2xx with something else than JSON
  "internal_error", // a node of the flow threw
  "store_unavailable", // storage/memory: the vector store, Postgres or Redis could not be reached (refused, timed out, down)
  "store_rejected", // storage/memory: the store answered an error (permission, bad credentials, Milvus code != 0)
  "converter_unavailable", // file converter: the Tika server could not be reached or answered 5xx
  "model_not_approved", // the team's approved_models policy does not list the model (or provider): refused before the call
  "model_policy_stale", // the instance's approved-model list expired (the bridge could not refresh it): every model call refused until it does
] as const;
export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

/** Dead letters of an instance: what a primitive gave up on, with its error and attempts (QoS 1). */
export const DLQ_TOPIC_TEMPLATE = "redforge/dlq/{instance}";
export const dlqTopic = (instanceId: string): string => {
  if (!/^[^/+#\u0000]{1,128}$/.test(instanceId)) throw new Error(`not a valid MQTT topic level: ${JSON.stringify(instanceId)}`);
  return DLQ_TOPIC_TEMPLATE.replace("{instance}", instanceId);
};

const timestamp = z.iso.datetime({ offset: true }).describe("When this message was created (ISO 8601)");

export const messageErrorSchema = z.object({
  code: z.string().min(1).max(100).describe("A snake_case failure code, e.g. model_unavailable"),
  message: z.string().max(2000).describe("A sentence for the flow author"),
  attempts: z.number().int().min(0).optional().describe("Calls made before giving up"),
  details: z.unknown().optional(),
}).describe("Why the work failed; present exactly when metadata.status is error");
export type MessageError = z.infer<typeof messageErrorSchema>;

const metadataFields = {
  flowId: z.string().min(1).max(200).describe("Identifies one workflow run; kept from input to output"),
  timestamp,
  source: z.string().min(1).max(200).describe("Who produced this message: a client, or the primitive that answered"),
  contentType: z.enum(CONTENT_TYPES).describe("How to read payload: text (a string), json (any JSON value), binary (a base64 string)"),
  status: z.enum(MESSAGE_STATUSES),
};

/** Flow-specific overrides (e.g. chunkSize, model): each primitive documents the keys it reads. */
const config = z.record(z.string(), z.unknown()).describe("Per-message overrides of the primitive's configuration");

export const msgInputSchema = z.object({
  payload: z.unknown().describe("The work: text, JSON, or base64 for binary"),
  metadata: z.object({
    flowId: metadataFields.flowId,
    timestamp: metadataFields.timestamp,
    source: metadataFields.source.optional(),
    contentType: metadataFields.contentType.optional(),
    status: metadataFields.status.optional().describe("The previous step's status, when chained"),
  }).passthrough(),
  config: config.optional(),
  error: messageErrorSchema.nullable().optional(),
}).passthrough().refine((m) => m.payload !== undefined, { message: "payload is required", path: ["payload"] })
  .meta({ title: "msg_input", description: "A message a RedForge agent primitive accepts (seed §3.2)" });
export type MsgInput = z.infer<typeof msgInputSchema>;

export const msgOutputSchema = z.object({
  payload: z.unknown().describe("The result (null when status is error)"),
  metadata: z.object(metadataFields).passthrough(),
  config: config.optional(),
  error: messageErrorSchema.nullable(),
}).passthrough().superRefine((m, ctx) => {
  if (m.payload === undefined) ctx.addIssue({ code: "custom", path: ["payload"], message: "payload is required" });
  if (m.metadata.status === "error" && !m.error) ctx.addIssue({ code: "custom", path: ["error"], message: "status error needs an error object" });
  if (m.metadata.status !== "error" && m.error) ctx.addIssue({ code: "custom", path: ["error"], message: `status ${m.metadata.status} must have error null` });
}).meta({ title: "msg_output", description: "A message a RedForge agent primitive answers (seed §3.2)" });
export type MsgOutput = z.infer<typeof msgOutputSchema>;

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  return `${issue.path.length ? issue.path.join(".") : "message"}: ${issue.message}`;
}

/**
 * Why an answer (a smoke check's HTTP body) breaks msg_output, or undefined.
 * `legacy`: also accept the old contract's statuses and any contentType string
 * (and a missing source / error), as the smoke check did before, for flows
 * not migrated yet.
 */
export function flowAnswerViolation(body: unknown, opts: { legacy?: boolean } = {}): string | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return "not an object";
  const parsed = msgOutputSchema.safeParse(body);
  if (parsed.success) return undefined;
  if (!opts.legacy) return firstIssue(parsed.error);
  const old = legacyAnswerSchema.safeParse(body);
  return old.success ? undefined : firstIssue(parsed.error);
}

/** The contract as flows/message-contract.schema.json stated it before the seed's enums. */
const legacyAnswerSchema = z.object({
  payload: z.unknown(),
  metadata: z.object({
    flowId: z.string(),
    timestamp: z.string().refine((t) => !Number.isNaN(Date.parse(t)), "not a date-time"),
    source: z.string().optional(),
    contentType: z.string().optional(),
    status: z.enum(["pending", "processing", "completed", "failed"]).optional(),
  }).passthrough(),
}).passthrough().refine((m) => "payload" in m);

/** True when an answer passes only as legacy: the smoke check can say "migrate". */
export function isLegacyAnswer(body: unknown): boolean {
  return flowAnswerViolation(body) !== undefined && flowAnswerViolation(body, { legacy: true }) === undefined;
}
