import { createMiddleware } from "hono/factory";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError } from "../../core/errors.ts";

export const MAX_BODY_BYTES = 1024 * 1024;
const JSON_MEDIA = /^application\/([\w.-]+\+)?json$/i;

/** 413 for bodies over 1 MiB (declared or streamed), before anything reads them. */
export const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ApiError(413, "payload_too_large", `request body exceeds ${MAX_BODY_BYTES} bytes`, { limit: MAX_BODY_BYTES });
  },
});

/** A write that carries a body must say it is JSON; an empty body is left to the validator. */
export const requireJsonBody = createMiddleware<AppEnv>(async (c, next) => {
  const hasBody = Number(c.req.header("Content-Length") ?? 0) > 0 || c.req.header("Transfer-Encoding") !== undefined;
  if (hasBody && c.req.method !== "GET" && c.req.method !== "HEAD") {
    const media = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim();
    if (!JSON_MEDIA.test(media)) {
      throw new ApiError(415, "unsupported_media_type", `send the body as application/json (got ${media || "no Content-Type"})`);
    }
  }
  await next();
});
