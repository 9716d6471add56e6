import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { ZodType, core } from "zod";
import { ApiError } from "./errors.ts";

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

/** @hono/zod-validator with the API's error shape (400 validation_failed). */
export function validate<Target extends keyof ValidationTargets, Schema extends ZodType>(target: Target, schema: Schema) {
  return zValidator(target, schema, (result) => {
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
}
