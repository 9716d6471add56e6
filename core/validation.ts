import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import { resolver, uniqueSymbol } from "hono-openapi";
import type { ZodType, core } from "zod";
import { ApiError } from "./errors.ts";
import { hasLoneSurrogate } from "./jsonLimits.ts";
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

/** The first string of a query or path that cannot be encoded (JSON bodies are checked by the body guard). */
function illFormed(values: Record<string, string | string[]>): string | undefined {
  for (const [key, value] of Object.entries(values)) {
    if (hasLoneSurrogate(key) || [value].flat().some(hasLoneSurrogate)) return key;
  }
  return undefined;
}

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
  const checked: typeof middleware = async (c, next) => {
    const values = target === "query" ? c.req.queries() : target === "param" ? c.req.param() : {};
    const key = illFormed(values as Record<string, string | string[]>);
    if (key !== undefined) {
      throw new ApiError(400, "validation_failed", `invalid ${TARGET_NOUN[target] ?? target}: ${key} holds an unpaired UTF-16 surrogate`);
    }
    return middleware(c, next);
  };
  // Without a JSON body Hono's validator sees {}: a schema that accepts it makes the body optional.
  const documented = target === "json" && schema.safeParse({}).success ? schema.meta({ [OPTIONAL_BODY]: true }) : schema;
  return Object.assign(checked, { [uniqueSymbol]: { target, ...resolver(documented) } });
}
