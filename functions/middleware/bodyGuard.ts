import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError } from "../../core/errors.ts";
import { assertJsonWithinLimits } from "../../core/jsonLimits.ts";

export const MAX_BODY_BYTES = 1024 * 1024;
const JSON_MEDIA = /^application\/([\w.-]+\+)?json$/i;
/**
 * Routes authenticated by a signature over the body (bridge webhooks, the
 * cluster token, QStash jobs): nothing examines the body before the signature
 * verifies; verifyClusterWebhook and verifyQStashSignature apply the same
 * JSON limits right after.
 */
// CI hook deliveries are /api/webhooks/ci/:id; the hooks' management routes beside them are ordinary JSON routes.
const SIGNED_BODY_ROUTE = /^\/api\/(webhooks\/(clusters\/|ci\/[^/]+$)|jobs\/|clusters\/[^/]+\/token$)/;

/** An explicit `Content-Length: 0` is no body: browsers send body-less writes that way (with a stream present). */
function announcesBody(c: Context<AppEnv>): boolean {
  if (c.req.header("Transfer-Encoding") !== undefined) return true;
  const length = c.req.header("Content-Length");
  return length !== undefined ? Number(length) > 0 : c.req.raw.body !== null;
}

/** Up to this much of a refused body is read and dropped so the client gets its answer; beyond it the upload is cut off. */
const DRAIN_LIMIT_BYTES = 8 * MAX_BODY_BYTES;

/**
 * A refused body is drained, not left unread: an unread multi-MB body kept
 * the local runtime busy until concurrent requests failed with "Your worker
 * restarted mid-request" (issue 12), and a cancelled one closes the
 * connection while the client is still sending, so it reads a reset instead
 * of the 413 (seen in CI with undici). Only past DRAIN_LIMIT_BYTES is the
 * stream cancelled.
 */
async function discard(stream: ReadableStream | null | undefined, alreadyRead = 0) {
  if (!stream || stream.locked) return;
  await drain(stream.getReader(), alreadyRead);
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, alreadyRead: number) {
  let read = alreadyRead;
  try {
    for (;;) {
      if (read > DRAIN_LIMIT_BYTES) { await reader.cancel(); return; }
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
  } catch { /* the client went away: nothing left to answer */ }
}

const tooLarge = () => new ApiError(413, "payload_too_large", `request body exceeds ${MAX_BODY_BYTES} bytes`, { limit: MAX_BODY_BYTES });

/**
 * The first body guard: GET and HEAD carry no body (400), and nothing over
 * 1 MiB (declared or streamed) gets past here (413), the rest unread.
 */
export const limitBody = createMiddleware<AppEnv>(async (c, next) => {
  const body = c.req.raw.body;
  if (c.req.method === "GET" || c.req.method === "HEAD") {
    if (!announcesBody(c)) return next();
    await discard(body);
    throw new ApiError(400, "body_not_allowed", `a ${c.req.method} request carries no body`);
  }
  if (!body) return next();
  const declared = c.req.header("Content-Length");
  if (declared !== undefined && c.req.header("Transfer-Encoding") === undefined) {
    if (Number(declared) <= MAX_BODY_BYTES) return next();
    if (Number(declared) > DRAIN_LIMIT_BYTES) await body.cancel().catch(() => {});
    else await discard(body);
    throw tooLarge();
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await drain(reader, size);
      throw tooLarge();
    }
    chunks.push(value);
  }
  const whole = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) { whole.set(chunk, offset); offset += chunk.byteLength; }
  c.req.raw = new Request(c.req.raw, { body: whole });
  return next();
});

/**
 * A write that carries a body must say it is JSON (415); that JSON must stay
 * within the depth, breadth and well-formed-string limits of
 * core/jsonLimits.ts (400 / 413) before any route parses it. An empty body is
 * left to the validator.
 */
export const requireJsonBody = createMiddleware<AppEnv>(async (c, next) => {
  if (!announcesBody(c)) return next();
  const media = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim();
  if (!JSON_MEDIA.test(media)) {
    await discard(c.req.raw.body);
    throw new ApiError(415, "unsupported_media_type", `send the body as application/json (got ${media || "no Content-Type"})`);
  }
  // Read once here; Hono keeps the text, so the validator's c.req.json() parses this same copy.
  if (!SIGNED_BODY_ROUTE.test(c.req.path)) assertJsonWithinLimits(await c.req.text());
  await next();
});
