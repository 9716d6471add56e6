/** Response bodies of /api/alerts (rules, alerts, channels, notifications) and the alert jobs. */
import { z } from "zod";
import { timestamp, uuid } from "./common.ts";

export const alertRuleSchema = z.object({
  id: uuid,
  team: z.string(),
  name: z.string(),
  kind: z.string().meta({ description: "instance_down | instance_not_ready | crash_loop | deployment_failed | bridge_disconnected | cluster_warning | webhook_signature_failures | ai_budget | audit_chain" }),
  params: z.record(z.string(), z.unknown()).meta({ description: "The kind's thresholds, with defaults filled in (docs/observability.md, Alerts)" }),
  severity: z.enum(["info", "warning", "critical"]),
  clearEvaluations: z.number().int().meta({ description: "Clear evaluations in a row before an open alert resolves" }),
  enabled: z.boolean(),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "AlertRule" });

export const alertSchema = z.object({
  id: uuid,
  ruleId: uuid.nullable().meta({ description: "null once the rule is deleted" }),
  team: z.string(),
  kind: z.string(),
  severity: z.string(),
  subject: z.string().meta({ description: "What the alert is about: an instance or cluster id, `audit-chain`, `tokens@80`, …" }),
  subjectName: z.string().nullable(),
  status: z.enum(["pending", "firing", "acknowledged", "resolved"]),
  summary: z.string(),
  details: z.record(z.string(), z.unknown()),
  clearCount: z.number().int(),
  refireCount: z.number().int().meta({ description: "Times the condition came back while the alert was clearing" }),
  startedAt: timestamp,
  firedAt: timestamp.nullable(),
  acknowledgedAt: timestamp.nullable(),
  acknowledgedBy: uuid.nullable(),
  resolvedAt: timestamp.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "Alert" });

export const alertChannelSchema = z.object({
  id: uuid,
  team: z.string(),
  name: z.string(),
  kind: z.enum(["webhook", "slack"]),
  url: z.string(),
  enabled: z.boolean(),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "AlertChannel" });

export const alertChannelWithSecretSchema = alertChannelSchema.extend({
  secret: z.string().nullable().meta({ description: "webhook channels: the whsec_ Standard Webhooks secret, shown only in this answer; null for Slack" }),
}).meta({ id: "AlertChannelWithSecret" });

export const alertNotificationSchema = z.object({
  id: uuid,
  alertId: uuid,
  channelId: uuid.nullable(),
  team: z.string(),
  event: z.enum(["fired", "resolved"]),
  status: z.enum(["queued", "delivered", "dead"]).meta({ description: "dead: every retry failed (the dead-letter record)" }),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  payload: z.record(z.string(), z.unknown()),
  deliveredAt: timestamp.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
}).meta({ id: "AlertNotification" });

export const alertEvaluationSchema = z.object({
  rules: z.number().int(),
  skipped: z.number().int().meta({ description: "Rules another evaluation held at that moment" }),
  errors: z.array(z.object({ ruleId: uuid, error: z.string() })),
  fired: z.number().int(),
  resolved: z.number().int(),
  open: z.number().int(),
}).meta({ id: "AlertEvaluation" });

export const alertDeliverySchema = z.object({
  status: z.enum(["delivered", "dead", "gone", "retry"]),
  attempts: z.number().int(),
}).meta({ id: "AlertDelivery" });

/** The evaluation job's path, shared by the Worker's route and the schedule sync script (which runs in Node). */
export const ALERTS_EVALUATE_PATH = "/api/jobs/alerts-evaluate";
