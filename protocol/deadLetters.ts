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
