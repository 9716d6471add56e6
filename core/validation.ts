import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import { resolver, uniqueSymbol } from "hono-openapi";
import type { ZodType, core } from "zod";
import { ApiError } from "./errors.ts";
import { OPTIONAL_BODY } from "./openapi/describe.ts";

/** zod issues as the API reports them: where, what, and zod's machine code. */
export function describeIssues(issues: readonly core.$ZodIssue[]) {
  return issues.map((i) => ({
    path: i.path.map(String).join("."),
    code: i.code,
    message: i.message,
  }));
}

const TARGET_NOUN: Partial<Record<keyof ValidationTargets, string>> = {
  json: "request body", query: "query string", param: "path",
};

/**
 * @hono/zod-validator with the API's error shape (400 validation_failed), and
 * the schema registered for the OpenAPI document the way hono-openapi's own
 * `validator` registers it: validation stays zValidator's, byte for byte.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends ZodType>(target: Target, schema: Schema) {
  const middleware = zValidator(target, schema, (result) => {
    if (!result.success) {
      const issues = describeIssues(result.error.issues);
      const first = issues[0];
      const where = first?.path ? `${first.path}: ` : "";
      throw new ApiError(
        400,
        "validation_failed",
        `invalid ${TARGET_NOUN[target] ?? target}: ${where}${first?.message ?? "invalid input"}`,
        issues,
      );
    }
  });
  // Without a JSON body Hono's validator sees {}: a schema that accepts it makes the body optional.
  const documented = target === "json" && schema.safeParse({}).success ? schema.meta({ [OPTIONAL_BODY]: true }) : schema;
  return Object.assign(middleware, { [uniqueSymbol]: { target, ...resolver(documented) } });
}
