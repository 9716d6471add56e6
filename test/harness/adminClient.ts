/**
 * The stack's API as the development admin: one login, then the typed client
 * (protocol/api/client.ts) carrying the token. Shared by integration suites
 * and benchmarks.
 */
import { createApiClient, type ApiClient } from "../../protocol/api/client.ts";
import type { TestStack } from "./testStack.ts";

export type { ApiClient };

export async function adminClient(stack: Pick<TestStack, "apiUrl" | "cfg">): Promise<{ token: string; api: ApiClient }> {
  const login = await createApiClient({ baseUrl: stack.apiUrl }).POST("/api/auth/login", {
    body: { username: "admin", password: stack.cfg.worker.adminPassword },
  });
  if (!login.data) throw new Error(`admin login failed: ${login.response.status} ${JSON.stringify(login.error)}`);
  return { token: login.data.token, api: createApiClient({ baseUrl: stack.apiUrl, token: login.data.token }) };
}
