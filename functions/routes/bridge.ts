/**
 * The bridge's side of the API. None of these routes takes a user: the token
 * route and the webhook route are authenticated by the cluster's webhook
 * signature, the link by a short-lived cluster token.
 */
import { requestAlertEvaluation, wantsEvaluation } from "../../core/alerts/trigger.ts";
import { publicUrlOf } from "../../core/alerts/shapes.ts";
import { and, eq, isNull } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { clusters } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { issueClusterToken, verifyClusterToken } from "../auth/clusterTokens.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { applyCommandResult, applyHealthReport } from "../../core/fleet/applyReport.ts";
import { applyInstanceStatus } from "../../core/fleet/instanceStatus.ts";
import { announceClusterWarnings, applyClusterWarnings } from "../../core/fleet/clusterWarnings.ts";
import { ingestAiDecisions } from "../../core/ai/ingest.ts";
import { parseAiDecisionBatch } from "../../core/ai/parseBatch.ts";
import { recordCoordination } from "../../core/coordination/recordSessions.ts";
import { verifyClusterWebhook } from "../../core/fleet/signedRequest.ts";
import { counted, recordFromRequest } from "../../core/metrics/record.ts";
import { SERIES } from "../../core/metrics/series.ts";
import { aiDecisionBatchSchema } from "../../protocol/aiDecisions.ts";
import { reportSchema } from "../../protocol/reports.ts";
import { describeIssues, validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { aiBatchAcceptedSchema, clusterTokenSchema, reportAcceptedSchema } from "../../protocol/api/platform.ts";

const clusterParam = z.object({ id: z.uuid() });
const tokenRequest = z.object({ bridgeVersion: z.string().max(64).optional() });

function parseJsonText(body: string): unknown {
  try { return JSON.parse(body); } catch { throw new ApiError(400, "malformed_json", "request body is not valid JSON"); }
}

function parseJson<T>(body: string, schema: z.ZodType<T>): T {
  const raw = parseJsonText(body);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ApiError(400, "validation_failed", "report does not match the protocol", describeIssues(parsed.error.issues));
  return parsed.data;
}

const doc = describe("Bridge");

export const bridgeRoutes = new Hono<AppEnv>()
  .post("/clusters/:id/token", doc({
    summary: "A short-lived cluster token for the command link",
    access: "clusterWebhook",
    body: tokenRequest,
    bodyOptional: true,
    responses: { 200: clusterTokenSchema },
    errors: [404],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    const hook = await verifyClusterWebhook(c, id);
    parseJson(hook.body || "{}", tokenRequest);
    const { db, config } = c.var.services;
    await db.update(clusters).set({ lastSeenAt: new Date() }).where(eq(clusters.id, id));
    return c.json(await issueClusterToken(id, config.jwtSecret));
  })
  .get("/clusters/:id/link", doc({
    summary: "The bridge's command link (WebSocket)",
    description: "Commands flow down and acknowledgements up over this socket; see protocol/commands.ts.",
    access: "clusterToken",
    responses: { 101: null },
    errors: [404, 426],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") throw new ApiError(426, "upgrade_required", "connect with a WebSocket upgrade");
    const token = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "")?.[1];
    const subject = token ? await verifyClusterToken(token, c.var.services.config.jwtSecret) : null;
    if (subject !== id) throw new ApiError(401, "invalid_cluster_token", "a valid cluster token for this cluster is required");
    // A deleted cluster's bridge may still hold a token that has not expired: its link stays shut.
    const [live] = await c.var.services.db.update(clusters).set({ status: "connected", lastSeenAt: new Date() })
      .where(and(eq(clusters.id, id), isNull(clusters.deletedAt))).returning({ id: clusters.id });
    if (!live) throw notFound("cluster", id);
    const headers = new Headers(c.req.raw.headers);
    headers.set("X-Redforge-Cluster-Id", id);
    const link = c.env.CLUSTER_LINK.get(c.env.CLUSTER_LINK.idFromName(id));
    return link.fetch(new Request(c.req.url, { headers }));
  })
  .post("/webhooks/clusters/:id", doc({
    summary: "A bridge report: command result, instance status, health report or the cluster's warnings",
    description: "Forged, stale (over 5 minutes) or replayed webhook ids are refused (401). A report that cannot be processed may be retried under the same webhook id.",
    access: "clusterWebhook",
    body: reportSchema,
    responses: { 202: reportAcceptedSchema },
    errors: [404, 409],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    const hook = await verifyClusterWebhook(c, id);
    try {
      const report = parseJson(hook.body, reportSchema);
      const { db } = c.var.services;
      if (report.type === "command.result") {
        const { known } = await applyCommandResult(db, c.env, id, report);
        return c.json({ accepted: true, known }, 202);
      }
      if (report.type === "instance.status") {
        const applied = await applyInstanceStatus(db, c.env, {
          clusterId: id, instanceId: report.instanceId, status: report.state, reason: report.reason ?? null,
          ...(report.endpoints ? { endpoints: report.endpoints } : {}),
        });
        // A crash is evaluated now, not at the next scheduled run (core/alerts/trigger.ts); off the response path.
        if (applied && wantsEvaluation(report.state, report.reason)) c.executionCtx.waitUntil(requestAlertEvaluation(c.env, publicUrlOf(c.env, c.req.url), report.instanceId));
        return c.json({ accepted: true, known: applied }, 202);
      }
      if (report.type === "cluster.warnings") {
        const known = await applyClusterWarnings(db, id, report.warnings);
        if (known) c.executionCtx.waitUntil(announceClusterWarnings(c.env, id, report.warnings));
        return c.json({ accepted: true, known }, 202);
      }
      if (report.type === "health.report" && report.commandId) {
        await c.env.CLUSTER_LINK.get(c.env.CLUSTER_LINK.idFromName(id)).complete(report.commandId, true, { instances: report.instances.length });
      }
      const stored = await applyHealthReport(db, c.env, id, report);
      return c.json({ accepted: true, stored }, 202);
    } catch (err) {
      // A report we could not process may be retried under the same id.
      await hook.release().catch(() => {});
      throw err;
    }
  })
  // AI decision records, batched by the bridge (≤ 500 per webhook); see core/ai/ingest.ts.
  .post("/webhooks/clusters/:id/ai-decisions", doc({
    summary: "A batch of AI decision records (at most 500)",
    description: "One multi-row insert, priced by the model price table, tokens added to the team's daily counter. Stored once per `batchId`: a retried batch answers `duplicate: true`. A record of an instance of another cluster → 403 `instance_not_in_cluster`, nothing stored.",
    access: "clusterWebhook",
    body: aiDecisionBatchSchema,
    responses: { 202: aiBatchAcceptedSchema },
    errors: [403, 404, 409],
  }), validate("param", clusterParam), async (c) => {
    const { id } = c.req.valid("param");
    const hook = await verifyClusterWebhook(c, id);
    try {
      // A plain check for the hot valid shape; anything else gets zod's own 400 (core/ai/parseBatch.ts).
      const batch = parseAiDecisionBatch(parseJsonText(hook.body));
      const { usage, ...result } = await ingestAiDecisions(c.var.services, id, batch, new Date());
      // Voting/refinement answers and decisions (metadata.coordination) also update their session and the audit log;
      // the batch is stored already, so a failure here is logged, not retried (a retry would be a duplicate).
      if (!result.duplicate) await recordCoordination(c.var.services.db, batch.records).catch((err: unknown) => console.error(JSON.stringify({ msg: "coordination sessions not updated", clusterId: id, batchId: batch.batchId, err: String(err) })));
      recordFromRequest(c, usage.flatMap((u) => [
        counted(SERIES.aiTokens, { model: u.model, team: u.team }, u.tokens),
        counted(SERIES.aiCost, { model: u.model, team: u.team }, u.costUsd),
      ]));
      return c.json({ accepted: true, ...result }, 202);
    } catch (err) {
      await hook.release().catch(() => {});
      throw err;
    }
  });
