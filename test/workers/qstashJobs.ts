/**
 * The Worker as QStash sees it. Requests go through the Worker's fetch with
 * PUBLIC_URL set to a loopback address (the local QStash emulator accepts
 * only loopback destinations); job calls carry an HS256 Upstash-Signature over
 * that URL and the body with the current signing key, as dev/qstash signs.
 * Inside workerd the emulator cannot reach the Worker, so route tests sign
 * here; test/integration/compliance-schedule.test.ts fires the real schedule.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { SignJWT } from "jose";
import worker from "../../functions/index.ts";
import type { ApiResponse } from "./helpers.ts";

export const PUBLIC_URL = "http://127.0.0.1:9";

export async function call(method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`http://redforge.test${path}`, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) }),
    { ...env, PUBLIC_URL },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  let body: unknown = text;
  try { body = text ? JSON.parse(text) : null; } catch { /* keep text */ }
  return { status: res.status, body, headers: res.headers };
}

function base64Url(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function callJob(path: string, body: unknown = {}, signingKey = env.QSTASH_CURRENT_SIGNING_KEY!) {
  const text = JSON.stringify(body);
  const now = Math.floor(Date.now() / 1000);
  const signature = await new SignJWT({ body: base64Url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("Upstash").setSubject(new URL(path, PUBLIC_URL).toString()).setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300)
    .setJti(`jwt_${crypto.randomUUID()}`)
    .sign(new TextEncoder().encode(signingKey));
  return call("POST", path, { raw: text, headers: { "Content-Type": "application/json", "Upstash-Signature": signature } });
}
