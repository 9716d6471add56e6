/**
 * How a route declares its part of the OpenAPI document: one `describe({...})`
 * middleware on the route's existing chain (hono-openapi's describeRoute), its
 * request schemas coming from the route's `validate()` calls. Lives in core/
 * because the job routes in queues/ describe themselves too.
 */
import { describeRoute, resolver, type DescribeRouteOptions, type ResponsesWithResolver } from "hono-openapi";
import type { ZodType } from "zod";

/** Every tag of the document, with what it groups (the reference page's sections, in this order). */
export const TAGS = {
  Health: "Liveness of the control plane and its dependencies (public).",
  Auth: "Log in for a session token; who am I.",
  Clusters: "Clusters a bridge runs instances on, and their webhook secrets.",
  Instances: "Node-RED instances: desired state, flows, env and secrets, lifecycle commands.",
  Deployments: "Blue-green deployments of new flows, their phases and operator actions.",
  Rollouts: "One flow version to every instance a label selector picks, in waves with a failure budget (docs/rollouts.md).",
  Pipelines: "Stages (dev → staging → prod) as label selectors, promotions between them, four-eyes approval.",
  CI: "CI webhooks: hooks with one fixed action each, and their signed deliveries (Standard Webhooks or GitHub).",
  Metrics: "Health series per instance and fleet totals.",
  Alerts: "Alert rules the control plane evaluates, alerts and their lifecycle, notification channels.",
  AI: "AI decision logs, their totals, and the model price table.",
  Policies: "Admin-written rules enforced on deployments, scaling and model calls.",
  Quotas: "Per-team limits and usage.",
  Reports: "Compliance reports: build, list, download.",
  Audit: "The hash-chained audit log: list, verify, export.",
  Users: "User accounts and their roles.",
  Roles: "Built-in and custom roles.",
  "API keys": "Self-service API keys (rf_…) for CI.",
  Config: "Control-plane settings: report schedule and retention.",
  Admin: "Operations over the whole control plane's data.",
  Bridge: "The bridge's side: signed webhooks, cluster tokens, the command link.",
  Jobs: "Scheduled jobs QStash calls (signed).",
  Streams: "WebSocket event streams for consoles.",
  Reference: "This document and its reference page (public).",
} as const;
export type Tag = keyof typeof TAGS;

/** Marks (in the generated JSON schema) a JSON body that may be left out; functions/openapi/document.ts reads it. */
export const OPTIONAL_BODY = "x-optional-body";

/** Who may call a route, as the document's security requirement. */
export type Access = "user" | "public" | "clusterWebhook" | "clusterToken" | "qstash";

const SECURITY: Record<Access, DescribeRouteOptions["security"]> = {
  user: [{ sessionToken: [] }, { apiKey: [] }],
  public: [],
  clusterWebhook: [{ clusterWebhook: [] }],
  clusterToken: [{ clusterToken: [] }],
  qstash: [{ qstashSignature: [] }],
};

/** Error responses defined once (components.responses), each carrying the one error shape. */
export const ERROR_RESPONSES = {
  400: ["BadRequest", "Invalid input: `validation_failed` (details: zod's issues), `malformed_json`, or a route-specific code."],
  401: ["Unauthorized", "No valid credentials: `unauthenticated`, `invalid_token`, `token_expired`, `invalid_api_key`, `invalid_signature`, …"],
  403: ["Forbidden", "The caller's role (or key scopes) does not allow this: `forbidden`, or a governance refusal such as `POLICY_DENIED`."],
  404: ["NotFound", "The resource does not exist: `<resource>_not_found`."],
  409: ["Conflict", "The change conflicts with current state: `*_exists`, `*_taken`, `*_in_use`, `QUOTA_EXCEEDED`, …"],
  410: ["Gone", "The stored file behind the resource is gone."],
  413: ["PayloadTooLarge", "`payload_too_large`: bodies are limited to 1 MiB."],
  415: ["UnsupportedMediaType", "`unsupported_media_type`: send bodies as application/json."],
  422: ["UnprocessableContent", "Valid, but not possible where it would run: `stack_unsupported` (the cluster's bridge does not run that stack)."],
  426: ["UpgradeRequired", "`upgrade_required`: connect with a WebSocket upgrade."],
  429: ["TooManyRequests", "Rate or daily limit reached (`rate_limited`: the API rate limit per caller or client address; `too_many_attempts`, `QUOTA_EXCEEDED`); see Retry-After when present."],
  "5XX": ["ServerError", "`internal_error`, or a dependency is down (`database_unavailable`, `misconfigured`, … 503, Retry-After when present)."],
} as const;
export type ErrorStatus = keyof typeof ERROR_RESPONSES;

// 429: every route passes the per-address rate limit (functions/middleware/rateLimit.ts), user routes the per-caller one too.
const IMPLIED_ERRORS: Record<Access, ErrorStatus[]> = {
  user: [401, 403, 429],
  public: [429],
  clusterWebhook: [401, 429],
  clusterToken: [401, 429],
  qstash: [401, 429],
};

type SuccessStatus = 101 | 200 | 201 | 202 | 204 | 503;
type Body =
  | ZodType
  | null
  | { schema?: ZodType; description?: string; /** Non-JSON bodies (exports, downloads): media types of a byte stream. */ media?: string[] };

export interface RouteDoc {
  summary: string;
  description?: string;
  /** Default "user": a session token or an API key. */
  access?: Access;
  /** Success bodies by status (null: no body). */
  responses: Partial<Record<SuccessStatus, Body>>;
  /** Errors this route answers beyond those its access implies (401/403) and validation (400). */
  errors?: ErrorStatus[];
  /** For routes that read their body themselves (signed webhooks) rather than through validate(). */
  body?: ZodType;
  /** That body may be left out (default: required). */
  bodyOptional?: boolean;
  /** Parameters no validator declares (read by middleware). */
  parameters?: DescribeRouteOptions["parameters"];
}

const DESCRIPTION: Record<SuccessStatus, string> = {
  101: "Switching Protocols: the WebSocket is open.",
  200: "OK",
  201: "Created",
  202: "Accepted: the work is queued; its state follows.",
  204: "No Content",
  503: "Degraded",
};

/** Response schemas describe what the Worker sends: the schema's output side. */
const responseSchema = (schema: ZodType) => resolver(schema, { options: { io: "output" } });

function successResponse(status: SuccessStatus, body: Body) {
  const o = body && "safeParse" in body ? { schema: body } : (body ?? {});
  const description = o.description ?? DESCRIPTION[status];
  if (o.media) return { description, content: Object.fromEntries(o.media.map((m) => [m, { schema: { type: "string" as const } }])) };
  if (!o.schema) return { description };
  return { description, content: { "application/json": { schema: responseSchema(o.schema) } } };
}

export const errorResponseRef = (status: ErrorStatus) => ({ $ref: `#/components/responses/${ERROR_RESPONSES[status][0]}` });

/** One route's entry in the document: `describe("Instances")({ summary, responses: { 200: instanceSchema }, errors: [404] })`. */
export function describe(tag: Tag) {
  return (doc: RouteDoc) => {
    const access = doc.access ?? "user";
    const responses: ResponsesWithResolver = {};
    for (const [status, body] of Object.entries(doc.responses)) responses[status] = successResponse(Number(status) as SuccessStatus, body);
    for (const status of [...IMPLIED_ERRORS[access], ...(doc.errors ?? []), "5XX" as const]) responses[String(status)] = errorResponseRef(status);
    return describeRoute({
      tags: [tag],
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      security: SECURITY[access],
      ...(doc.parameters ? { parameters: doc.parameters } : {}),
      ...(doc.body ? { requestBody: { required: !doc.bodyOptional, content: { "application/json": { schema: resolver(doc.body) } } } } : {}),
      responses,
    });
  };
}
