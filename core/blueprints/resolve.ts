/**
 * Blueprints (docs/agents.md "Blueprints"): the importable primitive flows and
 * the RAG pipeline, and turning one into an instance's flows + env + secrets.
 * `<id>` names a flow blueprint; `<pipeline>/<role>` names one instance of a
 * pipeline (the flows of all the blueprints that role runs, in one instance).
 */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { BLUEPRINT_CATALOG } from "./catalog.generated.ts";
import type { Blueprint, BlueprintParam, FlowBlueprint, PipelineBlueprint } from "./types.ts";

/** `blueprint` in POST /api/instances and /api/deployments. */
export const blueprintRefShape = z.string().regex(/^[a-z0-9-]+(\/[a-z0-9-]+)?$/, "a blueprint id (GET /api/blueprints), or <pipeline>/<role>").max(128);
/** Values for the blueprint's parameters (environment variable → value). */
export const blueprintParamsShape = z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "parameter names are the environment variables GET /api/blueprints lists").max(128), z.string().max(32 * 1024))
  .refine((m) => Object.keys(m).length <= 100, "at most 100 parameters");

const byId = new Map<string, Blueprint>(BLUEPRINT_CATALOG.map((b) => [b.id, b]));

export const listBlueprints = (): readonly Blueprint[] => BLUEPRINT_CATALOG;

export function findBlueprint(id: string): Blueprint {
  const found = byId.get(id);
  if (!found) throw new ApiError(404, "blueprint_not_found", `blueprint ${id} does not exist; GET /api/blueprints lists them`);
  return found;
}

export interface ResolvedBlueprint {
  id: string;
  flows: FlowBlueprint["flows"];
  params: BlueprintParam[];
}

/** The flows and parameters behind `<id>` or `<pipeline>/<role>`. */
export function resolveBlueprint(ref: string): ResolvedBlueprint {
  const [id, role] = ref.split("/") as [string, string | undefined];
  const bp = findBlueprint(id);
  if (bp.kind === "flow") {
    if (role !== undefined) throw new ApiError(404, "blueprint_not_found", `blueprint ${id} is a flow, not a pipeline; it has no role ${role}`);
    return { id: ref, flows: bp.flows, params: bp.params };
  }
  const pipeline = bp as PipelineBlueprint;
  const roles = pipeline.instances.map((i) => i.role);
  if (role === undefined) {
    throw new ApiError(400, "blueprint_role_required", `${id} is a pipeline of several instances; create each as "${roles.map((r) => `${id}/${r}`).join('", "')}"`, { roles });
  }
  const inst = pipeline.instances.find((i) => i.role === role);
  if (!inst) throw new ApiError(404, "blueprint_not_found", `pipeline ${id} has no role ${role}; its roles: ${roles.join(", ")}`, { roles });
  const parts = inst.blueprints.map((b) => findBlueprint(b) as FlowBlueprint);
  const params = new Map<string, BlueprintParam>();
  for (const p of parts.flatMap((b) => b.params)) params.set(p.name, p);
  return { id: ref, flows: parts.flatMap((b) => b.flows), params: [...params.values()] };
}

/**
 * An instance from a blueprint: its flows, plain parameters as env and secret
 * ones (API keys, database URLs) as secrets. Explicit `env`/`secrets` of the
 * request win over `blueprintParams`. A required parameter given nowhere, or a
 * parameter the blueprint does not read, is a 400 naming it.
 */
export function instanceFromBlueprint(
  ref: string, values: Record<string, string>, explicit: { env: Record<string, string>; secrets: Record<string, string> },
): { flows: ResolvedBlueprint["flows"]; env: Record<string, string>; secrets: Record<string, string> } {
  const bp = resolveBlueprint(ref);
  const known = new Map(bp.params.map((p) => [p.name, p]));
  const unknown = Object.keys(values).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new ApiError(400, "blueprint_param_unknown", `blueprint ${ref} does not read ${unknown.join(", ")}; its parameters: ${[...known.keys()].join(", ") || "none"}`, { unknown });
  }
  const env: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) (known.get(k)!.secret ? secrets : env)[k] = v;
  Object.assign(env, explicit.env);
  Object.assign(secrets, explicit.secrets);
  assertRequired(bp, new Set([...Object.keys(env), ...Object.keys(secrets)]));
  return { flows: bp.flows, env, secrets };
}

/** A deployment changes flows only: the instance's env and secret names must already hold the required parameters. */
export function deploymentFlowsFromBlueprint(ref: string, have: Iterable<string>): ResolvedBlueprint["flows"] {
  const bp = resolveBlueprint(ref);
  assertRequired(bp, new Set(have), " (set it on the instance first: PATCH /api/instances/:id with env)");
  return bp.flows;
}

function assertRequired(bp: ResolvedBlueprint, have: Set<string>, hint = "") {
  const missing = bp.params.filter((p) => p.required && !have.has(p.name)).map((p) => p.name);
  if (missing.length > 0) {
    throw new ApiError(400, "blueprint_param_missing", `blueprint ${bp.id} needs ${missing.join(", ")}${hint}`, { missing });
  }
}
