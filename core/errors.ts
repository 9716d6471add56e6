import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The one error shape of the API: {"error": {"code", "message", "details"?}}.
 * Routes throw ApiError; app.onError turns it (and anything else) into that shape.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export const notFound = (what: string, id?: string) =>
  new ApiError(404, `${what}_not_found`, id ? `${what} ${id} does not exist` : `${what} does not exist`);
