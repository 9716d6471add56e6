/** The bridge's one signed HTTP client: which answers it retries, how long it waits, and that every attempt is signed afresh. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ControlPlaneClient, Refused, retryAfterMs, Undelivered } from "../../bridge/controlPlaneClient.ts";
import { verifyWebhook } from "../../protocol/webhooks.ts";

const SECRET = `whsec_${Buffer.from("a-test-secret-of-32-bytes-length").toString("base64")}`;
const NO_WAIT = { baseMs: 0, capMs: 0 };

interface Seen { path: string; webhookId: string; valid: boolean }

let server: http.Server | undefined;

/** A server that answers each request with the next scripted reply (the last one repeats). */
async function scripted(replies: Array<{ status: number; headers?: Record<string, string>; body?: unknown } | "hang-up">) {
  const seen: Seen[] = [];
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString();
      const check = await verifyWebhook([SECRET], { get: (n: string) => (req.headers[n.toLowerCase()] as string | undefined) ?? null }, body);
      seen.push({ path: req.url!, webhookId: String(req.headers["webhook-id"]), valid: check.ok });
      const reply = replies[Math.min(seen.length - 1, replies.length - 1)]!;
      if (reply === "hang-up") return void req.socket.destroy();
      res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers }).end(JSON.stringify(reply.body ?? {}));
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return { seen, api: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
});

describe("ControlPlaneClient", () => {
  it("retries network errors, 5xx, 408 and 429 with a new webhook id each time, then delivers", async () => {
    const { seen, api } = await scripted(["hang-up", { status: 503 }, { status: 429 }, { status: 408 }, { status: 202, body: { ok: 1 } }]);
    const retries: string[] = [];
    const client = new ControlPlaneClient({ api, secret: SECRET });
    const accepted = await client.post("/api/x", "{}", { retry: { attempts: 5, ...NO_WAIT }, onRetry: (r) => retries.push(r.problem) });
    expect(accepted).toEqual({ status: 202, text: '{"ok":1}' });
    expect(seen).toHaveLength(5);
    expect(seen.every((s) => s.valid && s.path === "/api/x")).toBe(true);
    expect(new Set(seen.map((s) => s.webhookId)).size).toBe(5);
    expect(retries[0]).toMatch(/cannot reach the control plane/);
    expect(retries.slice(1)).toEqual(["HTTP 503 {}", "HTTP 429 {}", "HTTP 408 {}"]);
  });

  it("never retries any other 4xx, and says which code the control plane gave", async () => {
    const { seen, api } = await scripted([{ status: 403, body: { error: { code: "instance_not_in_cluster" } } }]);
    const err = await new ControlPlaneClient({ api, secret: SECRET }).post("/api/x", "{}", { retry: { attempts: 5, ...NO_WAIT } }).catch((e) => e);
    expect(err).toBeInstanceOf(Refused);
    expect(err).toMatchObject({ status: 403, code: "instance_not_in_cluster" });
    expect(seen).toHaveLength(1);
  });

  it("gives up after the policy's attempts with the last problem", async () => {
    const { seen, api } = await scripted([{ status: 500, body: { error: { code: "internal" } } }]);
    const err = await new ControlPlaneClient({ api, secret: SECRET }).post("/api/x", "{}", { retry: { attempts: 3, ...NO_WAIT } }).catch((e) => e);
    expect(err).toBeInstanceOf(Undelivered);
    expect(err).toMatchObject({ attempts: 3, problem: "HTTP 500 internal", aborted: false });
    expect(seen).toHaveLength(3);
  });

  it("waits at least what Retry-After asks, up to the policy's cap", async () => {
    const { api } = await scripted([{ status: 503, headers: { "retry-after": "3" } }, { status: 200 }]);
    const delays: number[] = [];
    await new ControlPlaneClient({ api, secret: SECRET }).post("/api/x", "{}", {
      retry: { attempts: 2, baseMs: 1, capMs: 50, random: () => 0 },
      onRetry: (r) => delays.push(r.delayMs),
    });
    expect(delays).toEqual([50]); // 3 s asked, capped at 50 ms; the jittered backoff alone would be 0
    expect(retryAfterMs("2")).toBe(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(retryAfterMs("soon")).toBeUndefined();
  });

  it("an abort ends the waiting at once with an aborted Undelivered", async () => {
    const { seen, api } = await scripted([{ status: 503 }]);
    const abort = new AbortController();
    const post = new ControlPlaneClient({ api, secret: SECRET }).post("/api/x", "{}", {
      retry: { attempts: Infinity, baseMs: 60_000, capMs: 60_000, random: () => 1 },
      signal: abort.signal,
      onRetry: () => abort.abort(),
    });
    const err = await post.catch((e) => e);
    expect(err).toBeInstanceOf(Undelivered);
    expect(err.aborted).toBe(true);
    expect(seen).toHaveLength(1);
  });
});
