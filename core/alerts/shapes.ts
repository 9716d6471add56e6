/** Request shapes shared by the alert routes. */
import { z } from "zod";
import { ApiError } from "../errors.ts";
import { describeIssues } from "../validation.ts";
import { paramShapes, type AlertKind } from "./kinds.ts";

export const team = z.string().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits and . _ - only");
export const name = z.string().min(1).max(100).regex(/^[a-z0-9][a-z0-9_-]*$/, "lower-case letters, digits, _ and -");
export const idParam = z.object({ id: z.uuid() });

/** The thresholds checked against their kind: 400 `validation_failed` with paths under `params.`. */
export function parseParams(kind: AlertKind, params: unknown): Record<string, unknown> {
  const r = paramShapes[kind].safeParse(params ?? {});
  if (r.success) return r.data as Record<string, unknown>;
  const issues = describeIssues(r.error.issues).map((i) => ({ ...i, path: i.path ? `params.${i.path}` : "params" }));
  throw new ApiError(400, "validation_failed", `invalid ${kind} params: ${issues[0]!.path}: ${issues[0]!.message}`, issues);
}

/** Where QStash reaches this Worker: PUBLIC_URL, else the request's own origin. */
export function publicUrlOf(env: { PUBLIC_URL?: string }, requestUrl: string): string {
  return env.PUBLIC_URL ?? new URL(requestUrl).origin;
}
