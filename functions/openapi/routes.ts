/**
 * GET /api/openapi.json and GET /api/docs, public: mounted before
 * `authenticate` in functions/app.ts. They describe the app they are given.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../core/app-env.ts";
import { describe } from "../../core/openapi/describe.ts";
import { openApiDocument } from "./document.ts";
import { REFERENCE_CSP, renderReference } from "./referencePage.ts";

const doc = describe("Reference");
const documentSchema = z.looseObject({ openapi: z.string(), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) })
  .meta({ description: "An OpenAPI 3.1 document" });

export function referenceRoutes(app: Hono<AppEnv, any, any>) {
  return new Hono<AppEnv>()
    .get("/openapi.json", doc({ summary: "This API as an OpenAPI 3.1 document", access: "public", responses: { 200: documentSchema } }),
      async (c) => c.json(await openApiDocument(app)))
    .get("/docs", doc({ summary: "A browsable reference of this API (HTML, self-contained)", access: "public", responses: { 200: { media: ["text/html"] } } }),
      async (c) => {
        c.header("Content-Security-Policy", REFERENCE_CSP);
        return c.html(renderReference(await openApiDocument(app)));
      });
}
