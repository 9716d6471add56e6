/**
 * The stack's API as the development admin: one login, then calls that carry
 * the token. Shared by integration suites and benchmarks.
 */
import type { TestStack } from "./testStack.ts";

export type ApiCall = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

export async function adminClient(stack: Pick<TestStack, "apiUrl" | "cfg">): Promise<{ token: string; call: ApiCall }> {
  const login = await fetch(`${stack.apiUrl}/api/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: stack.cfg.worker.adminPassword }),
  });
  if (!login.ok) throw new Error(`admin login failed: ${login.status} ${await login.text()}`);
  const { token } = (await login.json()) as { token: string };
  const call: ApiCall = async (method, path, body) => {
    const res = await fetch(`${stack.apiUrl}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as any };
  };
  return { token, call };
}
