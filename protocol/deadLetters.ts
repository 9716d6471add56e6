/**
 * Dead letters: what an instance's redforge-dlq node publishes on MQTT
 * `redforge/dlq/{instanceId}` when a primitive gives up on a message
 * (docs/agents.md), and how the bridge forwards them to
 * POST /api/webhooks/clusters/:clusterId/dead-letters in signed batches.
 */
import { z } from "zod";

export const DLQ_TOPIC_FILTER = "redforge/dlq/+";
export const MAX_DEAD_LETTER_BATCH = 200;
/** Webhook bodies stay under the API's 1 MiB limit: an `input` larger than this is replaced by a note. */
export const MAX_DEAD_LETTER_INPUT_BYTES = 64 * 1024;

/** `redforge/dlq/{id}` → id; undefined for any other topic. */
export function instanceOfDlqTopic(topic: string): string | undefined {
  const m = /^redforge\/dlq\/([^/+#]+)$/.exec(topic);
  return m?.[1];
}

/** One dead letter as the node publishes it (instanceId comes from the topic). */
export const deadLetterSchema = z.object({
  instanceId: z.uuid(),
  flowId: z.string().max(255).optional(),
  primitive: z.string().max(100).optional(),
  nodeRedFlow: z.string().max(100).optional(),
  failedAt: z.iso.datetime({ offset: true }),
  error: z.object({
    code: z.string().min(1).max(100),
    message: z.string().max(4000),
    attempts: z.number().int().min(0).max(1_000_000).optional(),
  }),
  input: z.unknown().optional(),
});
export type DeadLetter = z.infer<typeof deadLetterSchema>;

/** A letter on the wire to the control plane: `letterId` (sha256 of topic + payload) makes a redelivery idempotent. */
export const forwardedDeadLetterSchema = deadLetterSchema.extend({ letterId: z.string().regex(/^[0-9a-f]{64}$/) });
export type ForwardedDeadLetter = z.infer<typeof forwardedDeadLetterSchema>;

export const deadLetterBatchSchema = z.object({
  letters: z.array(forwardedDeadLetterSchema).min(1).max(MAX_DEAD_LETTER_BATCH),
});
export type DeadLetterBatch = z.infer<typeof deadLetterBatchSchema>;

/**
 * Replays (POST /api/dead-letters/:id/replay): the control plane keeps an
 * operator's request pending on the letter's row; the bridge's forwarder
 * collects pending replays of its cluster (signed POST
 * bridgePaths.deadLetterReplays), sends each letter's `input` again to the
 * instance, and reports the outcome with its next collection.
 */
export const DEAD_LETTER_REPLAY_STATES = ["pending", "succeeded", "failed"] as const;
/** A primitive's name becomes a URL path segment (`/agents/{primitive}`): nothing else. */
export const REPLAYABLE_PRIMITIVE = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const MAX_REPLAYS_PER_COLLECT = 20;

export const deadLetterReplayTargetSchema = z.discriminatedUnion("kind", [
  /** The primitive's HTTP entry behind the instance's front door (its gate applies). */
  z.object({ kind: z.literal("http"), url: z.url({ protocol: /^https?$/ }) }),
  /** The instance's MQTT ingest (redforge/ingest/{instance}), for letters that name no primitive. */
  z.object({ kind: z.literal("mqtt"), topic: z.string().regex(/^redforge\/ingest\/[^/+#]+$/) }),
]);
export type DeadLetterReplayTarget = z.infer<typeof deadLetterReplayTargetSchema>;

export const deadLetterReplaySchema = z.object({
  id: z.number().int(),
  instanceId: z.uuid(),
  target: deadLetterReplayTargetSchema,
  /** The msg_input the primitive gave up on, sent again as it was. */
  input: z.unknown(),
});
export type DeadLetterReplay = z.infer<typeof deadLetterReplaySchema>;

export const deadLetterReplayResultSchema = z.object({
  id: z.number().int(),
  /** true: the instance answered 2xx (HTTP) or the broker acknowledged the publish (MQTT). */
  ok: z.boolean(),
  /** The HTTP status the instance answered. */
  status: z.number().int().min(100).max(599).optional(),
  /** The answer's msg_output error.code, or the bridge's (e.g. replay_unreachable). */
  code: z.string().max(100).optional(),
  message: z.string().max(2000).optional(),
});
export type DeadLetterReplayResult = z.infer<typeof deadLetterReplayResultSchema>;

/** The bridge's collect call: what it did with earlier replays. */
export const deadLetterReplayCollectSchema = z.object({
  results: z.array(deadLetterReplayResultSchema).max(MAX_DEAD_LETTER_BATCH).default([]),
});
export const deadLetterReplayCollectAnswerSchema = z.object({
  replays: z.array(deadLetterReplaySchema).max(MAX_REPLAYS_PER_COLLECT),
}).meta({ id: "DeadLetterReplays" });
