/** Response bodies of /api/deployments: the view is protocol/deployments.ts's, named here for the document. */
import { z } from "zod";
import { deploymentViewSchema } from "../deployments.ts";
import { timestamp, uuid } from "./common.ts";

export const deploymentSchema = deploymentViewSchema.meta({ id: "Deployment" });

export const flowVersionSchema = z.object({
  id: uuid,
  instanceId: uuid,
  version: z.number().int(),
  /** SHA-256 of the flows' canonical JSON, hex. */
  digest: z.string(),
  createdBy: uuid.nullable(),
  createdAt: timestamp,
}).meta({ id: "FlowVersion" });

/** One stored version with its flows (GET /api/deployments/versions/:id): what a diff or a redeploy reads. */
export const flowVersionDetailSchema = flowVersionSchema.extend({ flows: z.array(z.unknown()) }).meta({ id: "FlowVersionDetail" });
