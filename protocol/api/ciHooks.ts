/**
 * CI webhooks (docs/ci.md): each hook has its own secret (shown once) and one
 * fixed action; a signed delivery (Standard Webhooks or GitHub's
 * X-Hub-Signature-256) carrying a flow file starts that action.
 */
import { z } from "zod";
import { flowsShape } from "../shapes.ts";
import { timestamp, uuid } from "./common.ts";
import { stageName, stageRolloutSchema } from "./pipelines.ts";

export const ciHookActionSchema = z.discriminatedUnion("kind", [
  /** A rollout of the delivered flows to every instance the selector picks. */
  z.strictObject({ kind: z.literal("rollout"), selector: z.string().min(1).max(1000), rollout: stageRolloutSchema.default({}) }),
  /** A promotion of the delivered flows to one stage of a pipeline (its approval rule applies). */
  z.strictObject({ kind: z.literal("promote"), pipelineId: z.uuid(), stage: stageName }),
]);
export type CiHookAction = z.infer<typeof ciHookActionSchema>;

export const createCiHookSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/, "hook names are letters, digits, space . _ - (at most 100)"),
  team: z.string().min(1).max(100).optional(),
  action: ciHookActionSchema,
});

export const ciHookSchema = z.object({
  id: uuid,
  name: z.string(),
  team: z.string().nullable(),
  action: ciHookActionSchema,
  /** The user the hook acts as (its creator): audited as them, with their permissions as they stand at delivery. */
  actorId: uuid,
  /** Where CI posts: /api/webhooks/ci/{id}. */
  url: z.string(),
  lastDeliveryAt: timestamp.nullable(),
  createdAt: timestamp,
}).meta({ id: "CiHook" });

export const ciHookWithSecretSchema = ciHookSchema.extend({
  /** whsec_…: shown only in this answer. Standard Webhooks: the key is the base64 after whsec_; GitHub: paste the whole string as the webhook secret. */
  secret: z.string(),
}).meta({ id: "CiHookWithSecret" });

/** What a delivery carries: the flow file, or a stored version. Nothing else (a GitHub push payload has no file contents). */
export const ciDeliverySchema = z.strictObject({
  flows: flowsShape.optional(),
  versionId: z.uuid().optional(),
  description: z.string().max(500).optional(),
}).refine((v) => (v.flows === undefined) !== (v.versionId === undefined), {
  message: "give exactly one of flows or versionId (a GitHub push payload carries no file: have the CI job post the flow file)", path: ["flows"],
});
export type CiDelivery = z.infer<typeof ciDeliverySchema>;

export const ciDeliveryAcceptedSchema = z.object({
  hookId: uuid,
  /** The rollout started (a `rollout` hook, or a promotion that needed no approval). */
  rolloutId: uuid.nullable(),
  /** The promotion made by a `promote` hook. */
  promotionId: uuid.nullable(),
  status: z.string(),
}).meta({ id: "CiDeliveryAccepted" });
