/**
 * The typed API client: openapi-fetch over the types generated from the
 * Worker's OpenAPI document (schema.gen.d.ts). Paths, parameters, bodies and
 * answers are checked at compile time:
 *   const api = createApiClient({ baseUrl, token });
 *   const { data, error, response } = await api.POST("/api/instances", { body: { name, clusterId } });
 * `error` is the API's one error shape whenever the status is 4xx/5xx.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.gen.d.ts";

export type { components, paths };
export type ApiClient = Client<paths>;
export type ApiError = components["schemas"]["Error"];

export interface ApiClientOptions {
  /** The control plane's origin, e.g. http://127.0.0.1:8787 (paths are absolute: /api/...). */
  baseUrl: string;
  /** A session token or an rf_ API key, sent as Authorization: Bearer. */
  token?: string;
  fetch?: typeof globalThis.fetch;
}

export function createApiClient({ baseUrl, token, fetch }: ApiClientOptions): ApiClient {
  return createClient<paths>({
    baseUrl,
    ...(token ? { headers: { Authorization: `Bearer ${token}` } } : {}),
    ...(fetch ? { fetch } : {}),
  });
}

type JsonBodyOf<Op> = Op extends { requestBody?: { content: { "application/json": infer Body } } } ? Body : never;
/** The JSON request body of an operation: `ApiBody<"/api/instances", "post">`. */
export type ApiBody<P extends keyof paths, M extends keyof paths[P]> = JsonBodyOf<paths[P][M]>;
