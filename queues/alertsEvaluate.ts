/**
 * The alert jobs QStash calls: the evaluation (every minute, scripts/schedules.ts)
 * and one notification's delivery (published by the evaluation; QStash retries
 * it while the job answers 5xx, and the attempt after the last retry writes the
 * dead letter). Both are idempotent under duplicate deliveries: a rule being
 * evaluated is skipped, a delivered notification is not sent again.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../core/app-env.ts";
import { evaluateAlerts } from "../core/alerts/evaluate.ts";
import { deliverNotification } from "../core/alerts/notify.ts";
import { CHANNEL_URL_MESSAGES, channelUrlRefusal } from "../core/alerts/channelUrl.ts";
import { publicUrlOf } from "../core/alerts/shapes.ts";
import { validate } from "../core/validation.ts";
import { describe } from "../core/openapi/describe.ts";
import { alertDeliverySchema, alertEvaluationSchema } from "../protocol/api/alerts.ts";
import { verifyQStashSignature } from "./verifySignature.ts";

/** QStash posts "{}"; `at` exists for replays and tests (a `minutes` condition measured from then). */
const evaluateBody = z.strictObject({ at: z.iso.datetime({ offset: true }).transform((s) => new Date(s)).optional() });
const deliverBody = z.strictObject({ notificationId: z.uuid() });

export const alertJobs = new Hono<AppEnv>()
  .post("/alerts-evaluate", describe("Jobs")({
    summary: "Evaluate every enabled alert rule: fire, resolve, notify",
    access: "qstash",
    responses: { 200: alertEvaluationSchema },
  }), verifyQStashSignature, validate("json", evaluateBody), async (c) => {
    const body = c.req.valid("json");
    const { db, kv, config } = c.var.services;
    const summary = await evaluateAlerts(
      { db, env: c.env, kv, now: body.at ?? new Date(), auditCheckpointKey: config.auditCheckpointKey },
      publicUrlOf(c.env, c.req.url),
    );
    return c.json(summary);
  })
  .post("/alerts-deliver", describe("Jobs")({
    summary: "Deliver one alert notification to its channel (502 asks QStash to retry)",
    access: "qstash",
    responses: { 200: alertDeliverySchema },
  }), verifyQStashSignature, validate("json", deliverBody), async (c) => {
    const { notificationId } = c.req.valid("json");
    // Upstash-Retried: how many retries came before this attempt (0 on the first).
    const retried = Number(c.req.header("Upstash-Retried") ?? "0") || 0;
    const refusal = (url: string) => { const p = channelUrlRefusal(url, c.env); return p && CHANNEL_URL_MESSAGES[p]; };
    const outcome = await deliverNotification(c.var.services.db, c.var.services.config.encryptionKey, notificationId, retried, refusal);
    if (outcome.status === "retry") return c.json({ error: { code: "delivery_failed", message: outcome.error } }, 502);
    return c.json(outcome);
  });
