import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { openDb } from "../../db/client.ts";
import { users } from "../../db/schema.ts";
import { createApp } from "../../functions/app.ts";
import { issueSessionToken } from "../../functions/auth/tokens.ts";
import { hashPassword } from "../../core/crypto/passwords.ts";

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function api<T = any>(
  method: string,
  path: string,
  opts: {
    token?: string; body?: unknown; raw?: BodyInit; headers?: Record<string, string>;
    /** As in production behind Cloudflare: CF-Connecting-IP carries this address and the Worker trusts it. */
    clientAddress?: string;
  } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body: BodyInit | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["Content-Type"] ??= "application/json";
  }
  const sent = opts.clientAddress === undefined
    ? SELF.fetch(`http://redforge.test${path}`, { method, headers, body })
    : fromTrustedClient(opts.clientAddress, new Request(`http://redforge.test${path}`, { method, headers, body }));
  const res = await named(sent, `${method} ${path.split("?")[0]}`);
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* non-JSON stays text */ }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/**
 * A request that hangs fails its test with its own name (CI shows only the failure's first lines) well
 * before the test's timeout, and says so in the log after 10 s; the database's stall lines
 * (dev/stallWatch.ts) then say what it waited on. No request of these suites takes seconds when healthy.
 */
async function named<T>(pending: Promise<T>, what: string): Promise<T> {
  const t0 = Date.now();
  let warn: ReturnType<typeof setTimeout> | undefined;
  let fail: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      pending,
      new Promise<never>((_, reject) => {
        warn = setTimeout(() => console.warn(`[slow request] ${what} has not answered after 10 s`), 10_000);
        fail = setTimeout(() => reject(new Error(`${what} did not answer within ${Math.round((Date.now() - t0) / 1000)} s (see the database stall lines in the log)`)), 50_000);
      }),
    ]);
  } finally {
    if (warn !== undefined) clearTimeout(warn);
    if (fail !== undefined) clearTimeout(fail);
  }
}

const trustingApp = createApp();
async function fromTrustedClient(address: string, request: Request): Promise<Response> {
  request.headers.set("CF-Connecting-IP", address);
  const ctx = createExecutionContext();
  const res = await trustingApp.request(request, undefined, { ...env, REDFORGE_TRUST_CLIENT_IP: "true" }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

export const unique = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

/** Runs a function with the Worker's own database client (the Neon driver through the relay). */
export async function withDb<T>(fn: (db: ReturnType<typeof openDb>["db"]) => Promise<T>): Promise<T> {
  const handle = openDb(env.DATABASE_URL!, env.NEON_LOCAL_PROXY);
  try {
    return await fn(handle.db);
  } finally {
    await handle.close();
  }
}

export interface TestUser {
  id: string;
  username: string;
  password: string;
  role: string;
  token: string;
}

/** A user of the given role, inserted directly (fast, and independent of the users API under test), with a session token. */
export async function createUser(role: string, password = "correct horse battery"): Promise<TestUser> {
  const username = unique(role);
  const [row] = await withDb(async (db) =>
    db.insert(users).values({ username, email: `${username}@example.test`, passwordHash: await hashPassword(password), role }).returning());
  // An hour: the route × role table creates its users once and outlived 10 minutes on a loaded 2-core machine.
  const { token } = await issueSessionToken({ sub: row!.id, username, role }, env.JWT_SECRET!, 3600);
  return { id: row!.id, username, password, role, token };
}

export async function adminLogin(): Promise<string> {
  const res = await api("POST", "/api/auth/login", { body: { username: "admin", password: env.REDFORGE_ADMIN_PASSWORD } });
  if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

export async function createCluster(token: string, name = unique("c")) {
  const res = await api("POST", "/api/clusters", { token, body: { name } });
  if (res.status !== 201) throw new Error(`cluster create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; name: string; webhookSecret: string };
}

export async function createInstance(token: string, clusterId: string, extra: Record<string, unknown> = {}) {
  const res = await api("POST", "/api/instances", { token, body: { name: unique("i"), clusterId, ...extra } });
  if (res.status !== 201) throw new Error(`instance create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; name: string; desiredState: string; status: string };
}

export function expectErrorShape(body: any, code: string) {
  if (!body || typeof body !== "object" || !body.error) throw new Error(`not an error body: ${JSON.stringify(body)}`);
  if (body.error.code !== code) throw new Error(`expected error code ${code}, got ${body.error.code}: ${body.error.message}`);
  if (typeof body.error.message !== "string" || body.error.message.length === 0) throw new Error("error.message missing");
}

/** A stream socket (/ws/fleet, /ws/deployments/:id, …) opened as `token`: its parsed frames as they come, and its close code. */
export async function openStream(path: string, token: string) {
  const res = await SELF.fetch(`http://redforge.test${path}${path.includes("?") ? "&" : "?"}token=${token}`, { headers: { Upgrade: "websocket" } });
  if (res.status !== 101) throw new Error(`${path}: expected 101, got ${res.status} ${await res.text()}`);
  const ws = res.webSocket!;
  const events: any[] = [];
  let closed: number | null = null;
  ws.addEventListener("message", (e) => events.push(JSON.parse(e.data as string)));
  ws.addEventListener("close", (e) => { closed = e.code; });
  ws.accept();
  return { ws, events, closed: () => closed };
}
