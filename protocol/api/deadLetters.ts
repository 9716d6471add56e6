/** Response bodies of /api/dead-letters and of the bridge's dead-letter webhook. */
import { z } from "zod";
import { DEAD_LETTER_REPLAY_STATES } from "../deadLetters.ts";
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
  /** null: never replayed; pending until the cluster's bridge reports, then succeeded or failed. */
  replayState: z.enum(DEAD_LETTER_REPLAY_STATES).nullable(),
  /** Who asked for the last replay, and when. */
  replayedBy: uuid.nullable(),
  replayedAt: timestamp.nullable(),
  replayCount: z.number().int(),
  /** What the bridge reported: `ok`, the instance's HTTP `status`, the answer's error `code` and `message`. */
  replayResult: z.object({ ok: z.boolean(), status: z.number().int().optional(), code: z.string().optional(), message: z.string().optional(), at: timestamp }).nullable(),
}).meta({ id: "DeadLetter" });

export const deadLetterReplayCollectedSchema = z.object({
  /** Results of earlier replays applied by this call. */
  applied: z.number().int(),
  replays: z.array(z.object({
    id: z.number().int(),
    instanceId: uuid,
    target: z.union([z.object({ kind: z.literal("http"), url: z.string() }), z.object({ kind: z.literal("mqtt"), topic: z.string() })]),
    input: z.unknown(),
  })),
}).meta({ id: "DeadLetterReplaysCollected" });

export const deadLetterBatchAcceptedSchema = z.object({
  accepted: z.literal(true),
  stored: z.number().int(),
  /** Letters already stored (a redelivery): not stored again. */
  duplicates: z.number().int(),
}).meta({ id: "DeadLetterBatchAccepted" });
