/**
 * The one API client of the console: protocol/api/client.ts (openapi-fetch over
 * the generated OpenAPI types) on this origin. Middleware adds the current
 * session token to every call and turns a 401 into a sign-out, which the
 * layout answers by showing the login page with the current path to return to.
 */
import { createApiClient, type ApiError } from "../../../protocol/api/client.ts";
import { signOut, token } from "./session.ts";

export const api = createApiClient({ baseUrl: location.origin });

api.use({
  onRequest({ request }) {
    const t = token();
    if (t && !request.headers.has("Authorization")) request.headers.set("Authorization", `Bearer ${t}`);
    // A browser sends body-less writes (start, stop, delete, promote…) with an empty body, which the
    // API's body guard counts as a body that must say it is JSON (415 otherwise): so every write says so.
    if (request.method !== "GET" && request.method !== "HEAD" && !request.headers.has("Content-Type")) {
      request.headers.set("Content-Type", "application/json");
    }
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && !new URL(request.url).pathname.endsWith("/api/auth/login")) signOut({ expired: true });
    return response;
  },
});

/** A failed call's message for a person (the API's own message when it sent one). */
export function messageOf(error: ApiError | undefined, response: Response): string {
  return error?.error?.message ?? `the control plane answered ${response.status} ${response.statusText}`.trim();
}
