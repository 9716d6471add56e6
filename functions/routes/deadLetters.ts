/**
 * Dead letters: the instances' `redforge/dlq/{instance}` messages, forwarded
 * by the bridge (bridge/deadLetterForwarder.ts).
 * - POST /api/webhooks/clusters/:id/dead-letters: a signed batch from the bridge.
 * - GET /api/dead-letters: dead_letters:read; filters instanceId, errorCode,
 *   primitive, flowId, from/to (failedAt); newest first, keyset pages. The
 *   message's `input` (it may hold what a user asked) only for callers who
 *   also hold ai_prompts:read, and such a read is audited.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { listDeadLetters, storeDeadLetters, type DeadLetterRow } from "../../core/agents/deadLetters.ts";
import { ApiError } from "../../core/errors.ts";
import { verifyClusterWebhook } from "../../core/fleet/signedRequest.ts";
import { describe } from "../../core/openapi/describe.ts";
import { decodeIdCursor, encodeIdCursor } from "../../core/platform/pagination.ts";
import { describeIssues, validate } from "../../core/validation.ts";
import { deadLetterBatchSchema } from "../../protocol/deadLetters.ts";
import { deadLetterBatchAcceptedSchema, deadLetterRecordSchema } from "../../protocol/api/deadLetters.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { recordRead } from "../middleware/auditRead.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { allows } from "../rbac/permissions.ts";

const clusterParam = z.object({ id: z.uuid() });
const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const listQuery = z.strictObject({
  instanceId: z.uuid().optional(),
  errorCode: z.string().min(1).max(100).optional(),
  primitive: z.string().min(1).max(100).optional(),
  flowId: z.string().min(1).max(255).optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

function view(row: DeadLetterRow, showInput: boolean) {
  const { letterId: _letterId, input, ...rest } = row;
  return { ...rest, input: showInput ? input : null, redacted: !showInput };
}

/** Signed by the cluster's webhook secret; mounted with the other bridge routes, before user authentication. */
export const deadLetterWebhookRoutes = new Hono<AppEnv>()
  .post("/webhooks/clusters/:id/dead-letters", describe("Bridge")({
    summary: "A batch of dead letters from the cluster's instances (at most 200)",
    description: "Stored once per `letterId` (the bridge's hash of the MQTT message): a redelivered letter counts as a duplicate. A letter of an instance of another cluster → 403 `instance_not_in_cluster`, nothing stored.",
    access: "clusterWebhook",
    body: deadLetterBatchSchema,
    responses: { 202: deadLetterBatchAcceptedSchema },
    errors: [403, 404],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    const hook = await verifyClusterWebhook(c, id);
    try {
      let raw: unknown;
      try { raw = JSON.parse(hook.body); } catch { throw new ApiError(400, "malformed_json", "request body is not valid JSON"); }
      const parsed = deadLetterBatchSchema.safeParse(raw);
      if (!parsed.success) throw new ApiError(400, "validation_failed", "dead-letter batch does not match the protocol", describeIssues(parsed.error.issues));
      const result = await storeDeadLetters(c.var.services.db, id, parsed.data, new Date());
      return c.json({ accepted: true as const, ...result }, 202);
    } catch (err) {
      // A batch we could not store may be retried under the same webhook id.
      await hook.release().catch(() => {});
      throw err;
    }
  });

export const deadLetterRoutes = new Hono<AppEnv>()
  .get("/", describe("AI")({
    summary: "List dead letters (messages a primitive gave up on), newest first",
    description: "Filters: `instanceId`, `errorCode` (e.g. model_unavailable), `primitive`, `flowId`, `from`/`to` on when it failed. `input` (the msg_input) only for callers who also hold ai_prompts:read; otherwise null and `redacted` is true.",
    responses: { 200: pageOf(deadLetterRecordSchema) },
  }), requirePermission("dead_letters", "read"), validate("query", listQuery), async (c) => {
    const { limit, cursor, ...f } = c.req.valid("query");
    const rows = await listDeadLetters(c.var.services.db, f, limit, decodeIdCursor(cursor));
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    const showInput = allows(c.var.principal!.permissions, "ai_prompts", "read");
    if (showInput && items.length) {
      await recordRead(c, { action: "DEAD_LETTER_INPUTS_READ", resourceType: "dead_letters", details: { count: items.length, firstId: items[0]!.id, lastId: last!.id, filters: f } });
    }
    return c.json({ items: items.map((r) => view(r, showInput)), nextCursor: rows.length > limit && last ? encodeIdCursor(last.id) : null });
  });
