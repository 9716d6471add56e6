/** Response bodies of /api/dead-letters and of the bridge's dead-letter webhook. */
import { z } from "zod";
import { timestamp, uuid } from "./common.ts";

export const deadLetterRecordSchema = z.object({
  id: z.number().int(),
  instanceId: uuid,
  clusterId: uuid,
  /** The message's metadata.flowId (the workflow), not the Node-RED tab. */
  flowId: z.string().nullable(),
  primitive: z.string().nullable(),
  nodeRedFlow: z.string().nullable(),
  errorCode: z.string(),
  errorMessage: z.string(),
  attempts: z.number().int().nullable(),
  /** The msg_input the primitive gave up on; null unless the caller also holds ai_prompts:read (then `redacted` is false). */
  input: z.unknown(),
  redacted: z.boolean(),
  failedAt: timestamp,
  receivedAt: timestamp,
}).meta({ id: "DeadLetter" });

export const deadLetterBatchAcceptedSchema = z.object({
  accepted: z.literal(true),
  stored: z.number().int(),
  /** Letters already stored (a redelivery): not stored again. */
  duplicates: z.number().int(),
}).meta({ id: "DeadLetterBatchAccepted" });
