/**
 * Blueprints (docs/agents.md "Blueprints"): the importable agent primitives and
 * the RAG pipeline, with the environment variables each reads. Read-only; the
 * catalog is generated into the Worker (core/blueprints/catalog.generated.ts).
 * Instances and deployments are created from one with `blueprint` on
 * POST /api/instances and POST /api/deployments.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { findBlueprint, listBlueprints } from "../../core/blueprints/resolve.ts";
import type { Blueprint } from "../../core/blueprints/types.ts";
import { describe } from "../../core/openapi/describe.ts";
import { validate } from "../../core/validation.ts";
import { listOf } from "../../protocol/api/common.ts";
import { requirePermission } from "../middleware/requirePermission.ts";

const paramSchema = z.object({
  name: z.string().meta({ description: "the environment variable the flow reads" }),
  description: z.string(),
  default: z.string().nullable().meta({ description: "what the flow uses when it is not set; null: unset means off / not used" }),
  required: z.boolean(),
  secret: z.boolean().meta({ description: "a credential: given in blueprintParams it is stored as an instance secret" }),
  roles: z.array(z.string()).optional().meta({ description: "pipelines: the instance roles that read it" }),
}).meta({ id: "BlueprintParam" });

const summarySchema = z.object({
  id: z.string(),
  kind: z.enum(["flow", "pipeline"]),
  name: z.string(),
  description: z.string(),
  entry: z.array(z.string()).meta({ description: "how work enters: HTTP endpoints, MQTT topic" }),
  params: z.array(paramSchema),
  instances: z.array(z.object({ role: z.string(), blueprints: z.array(z.string()), description: z.string(), scalable: z.boolean().optional() })).optional()
    .meta({ description: "pipelines: one instance per role, created with blueprint \"<pipeline>/<role>\"" }),
  chaining: z.string().optional(),
}).meta({ id: "BlueprintSummary" });

const detailSchema = summarySchema.extend({
  flows: z.array(z.looseObject({ id: z.string(), type: z.string() })).optional().meta({ description: "flow blueprints: the Node-RED flow JSON" }),
  stages: z.record(z.string(), z.array(z.record(z.string(), z.unknown()))).optional().meta({ description: "pipelines: the stages of each path and the role that runs each" }),
}).meta({ id: "Blueprint" });

const idParam = z.object({ id: z.string().min(1).max(128) });

const summary = (b: Blueprint) => {
  const { flows: _f, stages: _s, ...rest } = b as Blueprint & { flows?: unknown; stages?: unknown };
  return rest;
};

const doc = describe("Instances");

export const blueprintRoutes = new Hono<AppEnv>()
  .get("/", doc({
    summary: "List blueprints: the importable agent primitives and the RAG pipeline, with their parameters",
    description: "Each parameter is an environment variable the flow reads, with its description and default. Create an instance from one with POST /api/instances `{blueprint, blueprintParams}`; a pipeline's instances as `<pipeline>/<role>`.",
    responses: { 200: listOf(summarySchema) },
  }), requirePermission("instances", "read"), (c) => c.json({ items: listBlueprints().map(summary) }))
  .get("/:id", doc({
    summary: "One blueprint with its flow JSON (a pipeline: its instances and stages)",
    description: "404 `blueprint_not_found` for an unknown id.",
    responses: { 200: detailSchema },
    errors: [404],
  }), requirePermission("instances", "read"), validate("param", idParam), (c) => c.json(findBlueprint(c.req.valid("param").id)));
