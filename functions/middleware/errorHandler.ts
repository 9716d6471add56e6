import type { ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "../../core/app-env.ts";
import { SealedSecretError } from "../../core/crypto/secretBox.ts";
import { ApiError, errorBody } from "../../core/errors.ts";

/** drizzle wraps driver errors; the Postgres SQLSTATE sits on the cause. */
function sqlState(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

function looksLikeConnectionFailure(err: unknown): boolean {
  const text = `${String(err)} ${String((err as { cause?: unknown })?.cause ?? "")}`;
  return /connect|websocket|terminated|timeout|ECONNREFUSED|network/i.test(text);
}

/** Anything thrown becomes the API's error shape; only a real bug is a 500. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 400 && /malformed json/i.test(err.message)) return new ApiError(400, "malformed_json", "request body is not valid JSON");
    return new ApiError(err.status as ApiError["status"], "http_error", err.message || "request rejected");
  }
  // A key was dropped before POST /api/admin/reseal moved its values: an operator's fix, not a bug.
  if (err instanceof SealedSecretError) {
    return new ApiError(503, "sealed_secret_unreadable", "a stored secret cannot be opened with the configured encryption keys; put its key back in REDFORGE_ENCRYPTION_KEYS_PREVIOUS and run POST /api/admin/reseal");
  }
  const state = sqlState(err);
  if (state === "23505") return new ApiError(409, "conflict", "a resource with these unique fields already exists");
  if (state === "23503") return new ApiError(409, "referenced", "the resource is referenced by another one");
  if (state?.startsWith("22")) return new ApiError(400, "invalid_value", "a value is out of range or malformed");
  if (state?.startsWith("08") || state === "57P01" || state === "53300" || (!state && looksLikeConnectionFailure(err))) {
    return new ApiError(503, "database_unavailable", "the database is unreachable; retry shortly", undefined, { "Retry-After": "5" });
  }
  return new ApiError(500, "internal_error", "unexpected error; it has been logged");
}

export const onError: ErrorHandler<AppEnv> = (err, c) => {
  const apiErr = toApiError(err);
  // A body nobody read (refused before the body guards, e.g. a 429) is cancelled, not left for the runtime (issue 12).
  const body = c.req.raw.body;
  if (body && !body.locked && !c.req.raw.bodyUsed) body.cancel().catch(() => {});
  if (apiErr.code === "internal_error") {
    console.error(JSON.stringify({ msg: "request failed", requestId: c.var.requestId, path: c.req.path, err: String(err), stack: (err as Error)?.stack }));
  } else if (apiErr.status >= 500) {
    // Expected outages (database down, misconfiguration): one line, no stack.
    console.warn(JSON.stringify({ msg: "request refused", requestId: c.var.requestId, path: c.req.path, code: apiErr.code }));
  }
  for (const [k, v] of Object.entries(apiErr.headers ?? {})) c.header(k, v);
  return c.json(errorBody(apiErr.code, apiErr.message, apiErr.details), apiErr.status);
};

export const onNotFound: NotFoundHandler<AppEnv> = (c) =>
  c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404);
