/**
 * Dead letters: the instances' `redforge/dlq/{instance}` messages, forwarded
 * by the bridge (bridge/deadLetterForwarder.ts).
 * - POST /api/webhooks/clusters/:id/dead-letters: a signed batch from the bridge.
 * - GET /api/dead-letters: dead_letters:read; filters instanceId, errorCode,
 *   primitive, flowId, from/to (failedAt); newest first, keyset pages. The
 *   message's `input` (it may hold what a user asked) only for callers who
 *   also hold ai_prompts:read, and such a read is audited.
 * - POST /api/dead-letters/:id/replay: dead_letters:update (operators and
 *   admins); kept pending on the row (who, when; audited) until the
 *   cluster's bridge collects it (POST /api/webhooks/clusters/:id/dead-letters/replays),
 *   sends the input again and reports. A second replay is 409
 *   already_replayed unless ?force=true (core/agents/deadLetterReplay.ts).
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { listDeadLetters, storeDeadLetters, type DeadLetterRow } from "../../core/agents/deadLetters.ts";
import { collectReplays, requestReplay } from "../../core/agents/deadLetterReplay.ts";
import { ApiError } from "../../core/errors.ts";
import { verifyClusterWebhook } from "../../core/fleet/signedRequest.ts";
import { describe } from "../../core/openapi/describe.ts";
import { decodeIdCursor, encodeIdCursor } from "../../core/platform/pagination.ts";
import { describeIssues, validate } from "../../core/validation.ts";
import { DEAD_LETTER_REPLAY_STATES, deadLetterBatchSchema, deadLetterReplayCollectSchema } from "../../protocol/deadLetters.ts";
import { deadLetterBatchAcceptedSchema, deadLetterRecordSchema, deadLetterReplayCollectedSchema } from "../../protocol/api/deadLetters.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { recordRead } from "../middleware/auditRead.ts";
import { transact } from "../middleware/auditTrail.ts";
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
  replayState: z.enum(DEAD_LETTER_REPLAY_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(200).optional(),
});

const idParam = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });
const replayQuery = z.strictObject({ force: z.enum(["true", "false", "1", "0"]).optional().transform((v) => v === "true" || v === "1") });

function view(row: DeadLetterRow, showInput: boolean) {
  const { letterId: _letterId, replaySentAt: _sentAt, input, ...rest } = row;
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
  })
  .post("/webhooks/clusters/:id/dead-letters/replays", describe("Bridge")({
    summary: "Collect the operators' pending dead-letter replays for the cluster's instances (and report earlier ones)",
    description: "`results` say what the bridge did with replays it collected before (applied only to pending replays of this cluster). The answer holds at most 20 pending replays, each with the letter's input and where to send it; one collected and not reported within 180 s is handed out again.",
    access: "clusterWebhook",
    body: deadLetterReplayCollectSchema,
    responses: { 200: deadLetterReplayCollectedSchema },
    errors: [404],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    const hook = await verifyClusterWebhook(c, id);
    try {
      let raw: unknown;
      try { raw = JSON.parse(hook.body || "{}"); } catch { throw new ApiError(400, "malformed_json", "request body is not valid JSON"); }
      const parsed = deadLetterReplayCollectSchema.safeParse(raw);
      if (!parsed.success) throw new ApiError(400, "validation_failed", "replay collection does not match the protocol", describeIssues(parsed.error.issues));
      return c.json(await collectReplays(c.var.services.db, id, parsed.data.results, new Date()), 200);
    } catch (err) {
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
  })
  .post("/:id/replay", describe("AI")({
    summary: "Replay a dead letter: send its input again to the instance",
    description: "The cluster's bridge sends the letter's `input` again: to `/agents/{primitive}` on the instance's front door when the letter names a primitive, else on the instance's MQTT ingest. Answers 202 with `replayState: pending` (who and when recorded, audited as `DEAD_LETTER_REPLAY_REQUESTED`); the bridge reports within seconds and the state turns `succeeded` or `failed` with `replayResult`. 409 `already_replayed` for a letter replayed before (send it again with `?force=true`), `replay_pending` while a replay waits for the bridge, `input_unavailable` when no input was kept (none, or over 64 KB).",
    responses: { 202: deadLetterRecordSchema },
    errors: [404, 409],
  }), requirePermission("dead_letters", "update"), validate("param", idParam), validate("query", replayQuery), async (c) => {
    const { id } = c.req.valid("param");
    const { force } = c.req.valid("query");
    const p = c.var.principal!;
    const row = await transact(c, async (tx, record) => {
      const { before, after } = await requestReplay(tx as never, id, p.userId ?? null, force, new Date());
      record({
        action: "DEAD_LETTER_REPLAY_REQUESTED", resourceType: "dead_letters", resourceId: String(id),
        details: { instanceId: before.instanceId, flowId: before.flowId, primitive: before.primitive, errorCode: before.errorCode, force, previousState: before.replayState, replayCount: after.replayCount },
      });
      return after;
    });
    return c.json(view(row, allows(p.permissions, "ai_prompts", "read")), 202);
  });
