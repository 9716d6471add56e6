import { Client } from "@upstash/qstash";
import { sql } from "drizzle-orm";
import { Hono } from "hono";
import type { AppEnv } from "../../core/app-env.ts";
import { toApiError } from "../middleware/errorHandler.ts";
import { describe } from "../../core/openapi/describe.ts";
import { CONTROL_PLANE_VERSION } from "../../core/version.ts";
import { healthSchema, livenessSchema } from "../../protocol/api/platform.ts";

interface Check {
  ok: boolean;
  latencyMs: number;
  error?: string;
  [extra: string]: unknown;
}

const CHECK_TIMEOUT_MS = 3_000;

async function timed(run: () => Promise<Record<string, unknown> | void>): Promise<Check> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const extra = await Promise.race([
      run(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS); }),
    ]);
    return { ok: true, latencyMs: Date.now() - started, ...(extra ?? {}) };
  } catch (err) {
    const apiErr = toApiError(err);
    // Say why without leaking internals: the error code, or the timeout text.
    const error = apiErr.code === "internal_error" ? String((err as Error)?.message ?? err).slice(0, 200) : apiErr.code;
    return { ok: false, latencyMs: Date.now() - started, error };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Public: load balancers and `npm start` poll it. 200 when every dependency answers, 503 otherwise. */
export const healthRoutes = new Hono<AppEnv>().get("/", describe("Health")({
  summary: "Liveness: the database, KV and scheduler each answer",
  access: "public",
  responses: { 200: healthSchema, 503: { schema: healthSchema, description: "Degraded: a dependency does not answer" } },
}), async (c) => {
  const { services } = c.var;
  const env = c.env;
  const [database, kv, scheduler] = await Promise.all([
    timed(async () => { await services.db.execute(sql`select 1`); }),
    timed(async () => { await services.kv.ping(); return { backend: services.kv.backend }; }),
    timed(async () => {
      if (!env.QSTASH_URL || !env.QSTASH_TOKEN) throw new Error("QSTASH_URL and QSTASH_TOKEN are not set");
      const schedules = await new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN, retry: false }).schedules.list();
      return { schedules: schedules.length };
    }),
  ]);
  const ok = database.ok && kv.ok && scheduler.ok;
  return c.json({
    status: ok ? "ok" : "degraded",
    environment: env.ENVIRONMENT ?? "production",
    version: CONTROL_PLANE_VERSION,
    checks: { database, kv, scheduler },
    timestamp: new Date().toISOString(),
  }, ok ? 200 : 503);
}).get("/live", describe("Health")({
  summary: "Liveness of the Worker alone: touches no database, KV or scheduler",
  access: "public",
  responses: { 200: livenessSchema },
}), (c) => {
  // The no-dependency baseline bench/api compares every route against; also a cheap probe.
  return c.json({ status: "ok" as const, timestamp: new Date().toISOString() });
});
