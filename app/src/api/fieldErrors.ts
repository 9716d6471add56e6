/**
 * The API's one error shape onto a form: which field each problem belongs to.
 * `validation_failed` carries zod issues in `details` ({path, message}); a few
 * codes name their field by meaning (a taken name is the name's problem). What
 * no field claims is shown above the form, so no message is ever dropped.
 */
import type { ApiError } from "../../../protocol/api/client.ts";

export interface FormErrors {
  /** The message for the form as a whole (nothing, when every problem has a field). */
  form?: string;
  /** field name → the API's message for it. */
  fields: Record<string, string>;
}

/** Error codes whose field is implied rather than named in `details`. */
const FIELD_OF_CODE: Readonly<Record<string, string>> = {
  instance_name_taken: "name",
  cluster_name_taken: "name",
  alert_rule_exists: "name",
  cluster_not_found: "clusterId",
  stack_unsupported: "stack",
  stack_change_needs_deployment: "stack",
  // Rollouts, pipelines, CI hooks (docs/rollouts.md, docs/ci.md).
  invalid_selector: "selector",
  empty_selection: "selector",
  selection_too_large: "selector",
  waves_incomplete: "waves",
  waves_not_cumulative: "waves",
  stage_has_no_version: "fromStage",
  pipeline_exists: "name",
  ci_hook_exists: "name",
  stage_not_found: "stage",
  pipeline_not_found: "pipelineId",
};

interface Issue { path: string; message: string }

function issuesOf(details: unknown): Issue[] {
  if (!Array.isArray(details)) return [];
  return details.flatMap((d): Issue[] =>
    d && typeof d === "object" && typeof (d as Issue).path === "string" && typeof (d as Issue).message === "string"
      ? [{ path: (d as Issue).path, message: (d as Issue).message }]
      : [],
  );
}

/** The form field an issue path belongs to: the longest known field that is the path or its prefix. */
function fieldFor(path: string, fields: readonly string[]): string | undefined {
  return [...fields]
    .sort((a, b) => b.length - a.length)
    .find((f) => path === f || path.startsWith(`${f}.`));
}

export function formErrors(error: ApiError | undefined, fields: readonly string[]): FormErrors {
  if (!error) return { fields: {} };
  const { code, message, details } = error.error;
  const out: FormErrors = { fields: {} };
  const unclaimed: string[] = [];
  for (const issue of issuesOf(details)) {
    const field = fieldFor(issue.path, fields);
    if (field && !out.fields[field]) out.fields[field] = issue.message;
    else if (!field) unclaimed.push(issue.path ? `${issue.path}: ${issue.message}` : issue.message);
  }
  const implied = FIELD_OF_CODE[code];
  if (implied && fields.includes(implied) && !out.fields[implied]) out.fields[implied] = message;
  const claimedAny = Object.keys(out.fields).length > 0;
  if (unclaimed.length > 0) out.form = unclaimed.join("; ");
  else if (!claimedAny) out.form = message;
  return out;
}
