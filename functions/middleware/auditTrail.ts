import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { appendAudit, type AuditEntry } from "../../db/auditChain.ts";
import type { AppEnv } from "../../core/app-env.ts";

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Who/where fields of an audit row, from the request. */
export function requestOrigin(c: Context<AppEnv>) {
  return {
    userId: c.var.principal?.userId ?? null,
    // Only the platform's trusted header, in inet's own spelling (middleware/requestContext.ts).
    ipAddress: c.var.clientAddress ?? null,
    userAgent: storableRequestText(c.req.header("User-Agent"), 500),
  };
}

type Tx = Parameters<Parameters<AppEnv["Variables"]["services"]["db"]["transaction"]>[0]>[0];
export type RouteAudit = Omit<AuditEntry, "ipAddress" | "userAgent">;

/**
 * Runs a route's change and its audit rows in one transaction: a change
 * without its audit row cannot commit, nor the other way round.
 */
export async function transact<T>(
  c: Context<AppEnv>,
  change: (tx: Tx, record: (entry: RouteAudit) => void) => Promise<T>,
): Promise<T> {
  const origin = requestOrigin(c);
  const result = await c.var.services.db.transaction(async (tx) => {
    const entries: AuditEntry[] = [];
    const value = await change(tx, (e) => entries.push({ ...origin, statusCode: null, ...e }));
    await appendAudit(tx, entries);
    return value;
  });
  c.set("audited", true);
  return result;
}

/** audit_logs.resource_id is varchar(255). */
const RESOURCE_ID_MAX = 255;

/**
 * What a request says about itself, made storable: Postgres text refuses NUL
 * and unpaired surrogates and varchar(255) refuses longer ids, and a refused
 * insert used to lose exactly the rows about hostile requests. Control and
 * bidi-override characters go too, so a row reads as what it is.
 */
export function storableRequestText(raw: string | undefined | null, max: number): string | null {
  if (!raw) return null;
  const clean = raw
    .replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "")
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
  // varchar counts code points; cutting on one never splits a surrogate pair.
  return Array.from(clean).slice(0, max).join("") || null;
}

function fallbackAction(status: number): string {
  if (status === 401) return "AUTH_FAILED";
  if (status === 403) return "UNAUTHORIZED_ACCESS";
  return status >= 400 ? "REQUEST_REJECTED" : "API_REQUEST";
}

/**
 * Every mutating request by an authenticated caller leaves a row: routes write
 * theirs through transact(); anything else (a rejected or failed request, a
 * route that forgot) gets a generic row here with its status and error code.
 */
export const auditTrail = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  if (!MUTATING.has(c.req.method) || c.var.audited || !c.var.principal) return;
  const status = c.res.status;
  let errorCode: string | undefined;
  if (status >= 400) {
    errorCode = await c.res.clone().json<{ error?: { code?: string } }>().then((b) => b.error?.code, () => undefined);
  }
  try {
    await c.var.services.db.transaction((tx) =>
      appendAudit(tx, [{
        action: fallbackAction(status),
        resourceType: c.req.routePath.split("/")[2] ?? null,
        resourceId: storableRequestText(c.req.param("id"), RESOURCE_ID_MAX),
        details: { method: c.req.method, path: new URL(c.req.url).pathname.slice(0, 2048), errorCode },
        statusCode: status,
        ...requestOrigin(c),
      }]),
    );
  } catch (err) {
    // The response already reflects what happened; a row that could not be written is an alert.
    console.error(JSON.stringify({
      level: "error", alert: "audit_write_failed", msg: "audit row for rejected request not written",
      requestId: c.var.requestId, method: c.req.method, path: c.req.path.slice(0, 512), status, err: String(err),
    }));
  }
});
