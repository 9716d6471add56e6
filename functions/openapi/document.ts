/**
 * The OpenAPI 3.1 document of the whole Worker, generated from the routes
 * themselves: hono-openapi walks `app.routes` and reads each route's
 * `describe()` and `validate()` middleware. Built once per app, on first use
 * (every route is mounted by then).
 */
import type { Hono } from "hono";
import { generateSpecs, resolver, type GenerateSpecOptions } from "hono-openapi";
import { ERROR_RESPONSES, OPTIONAL_BODY, TAGS, errorResponseRef } from "../../core/openapi/describe.ts";
import { errorSchema } from "../../protocol/api/common.ts";

export const API_VERSION = "0.1.0";

export type OpenApiDocument = Awaited<ReturnType<typeof generateSpecs>>;

const SECURITY_SCHEMES = {
  sessionToken: {
    type: "http", scheme: "bearer", bearerFormat: "JWT",
    description: "A session token from POST /api/auth/login, as `Authorization: Bearer <token>`.",
  },
  apiKey: {
    type: "http", scheme: "bearer", bearerFormat: "rf_ API key",
    description: "An API key (`rf_…`, from POST /api/api-keys) in the same header: `Authorization: Bearer rf_…`.",
  },
  clusterWebhook: {
    type: "apiKey", in: "header", name: "webhook-signature",
    description: "A Standard Webhooks signature by the cluster's `whsec_` secret: headers `webhook-id`, `webhook-timestamp` and "
      + "`webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`); a webhook id is accepted once.",
  },
  clusterToken: {
    type: "http", scheme: "bearer", bearerFormat: "JWT",
    description: "A cluster token from POST /api/clusters/{id}/token (10 minutes), as `Authorization: Bearer <token>`.",
  },
  qstashSignature: {
    type: "apiKey", in: "header", name: "Upstash-Signature",
    description: "QStash's signature JWT over the destination URL and the exact body (current or next signing key).",
  },
} as const;

async function options(): Promise<Partial<GenerateSpecOptions>> {
  const error = await resolver(errorSchema, { options: { io: "output" } }).toOpenAPISchema();
  const responses = Object.fromEntries(Object.values(ERROR_RESPONSES).map(([name, description]) => [name, {
    description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  }]));
  // Every write passes the body guard (functions/middleware/bodyGuard.ts) before its route.
  const bodyGuard = { responses: { 413: errorResponseRef(413), 415: errorResponseRef(415) } };
  return {
    documentation: {
      info: {
        title: "RedForge Control Tower API",
        version: API_VERSION,
        description: "The control plane of Node-RED fleets. Every error has one shape, `{\"error\": {\"code\", \"message\", \"details\"?}}` "
          + "(components.schemas.Error). Browse it at /api/docs; the typed client: protocol/api/client.ts.",
      },
      servers: [{ url: "/", description: "This control plane (paths are absolute)" }],
      tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
      components: {
        schemas: error.components?.schemas ?? {},
        responses,
        securitySchemes: SECURITY_SCHEMES,
      },
    },
    // The job and reference paths end in a name with a dot (openapi.json): not static files here.
    excludeStaticFile: false,
    defaultValidationErrorResponse: errorResponseRef(400) as never,
    defaultOptions: { POST: bodyGuard, PUT: bodyGuard, PATCH: bodyGuard },
  };
}

const built = new WeakMap<object, Promise<OpenApiDocument>>();

interface Operation {
  "x-permission"?: string;
  security?: Record<string, string[]>[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Record<string, unknown> }> };
}

/**
 * What hono-openapi cannot know from one middleware at a time:
 * - a route's `requirePermission` shows as `x-permission` and as the scope of
 *   its security requirements (OpenAPI 3.1 allows role names as scopes);
 * - a JSON body its validator accepts as `{}` may be left out (Hono's json
 *   validator then sees `{}`), so it is not `required` (marked by validate()).
 */
function finish(doc: OpenApiDocument): OpenApiDocument {
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item) as Operation[]) {
      const permission = op?.["x-permission"];
      if (permission && op.security) op.security = op.security.map((req) => Object.fromEntries(Object.keys(req).map((k) => [k, [permission]])));
      const body = op?.requestBody?.content?.["application/json"]?.schema;
      if (body?.[OPTIONAL_BODY]) {
        delete body[OPTIONAL_BODY];
        op.requestBody!.required = false;
      }
    }
  }
  return doc;
}

export function openApiDocument(app: Hono<any, any, any>): Promise<OpenApiDocument> {
  let doc = built.get(app);
  if (!doc) {
    doc = options().then((o) => generateSpecs(app, o)).then(finish);
    built.set(app, doc);
  }
  return doc;
}
