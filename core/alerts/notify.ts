/**
 * Notifications: one row per (alert event, channel), written in the same
 * transaction as the alert change, then handed to QStash, which calls
 * POST /api/jobs/alerts-deliver until the channel answers 2xx (QStash retries
 * with backoff). The job signs each attempt afresh (a Standard Webhooks
 * timestamp is only good for five minutes); the attempt that exhausts the
 * retries marks the row `dead`: the dead-letter record.
 */
import { Client } from "@upstash/qstash";
import { and, eq } from "drizzle-orm";
import { alertChannels, alertNotifications, type alerts } from "../../db/schema.ts";
import type { Db } from "../../db/client.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { open, type SealKeys } from "../crypto/secretBox.ts";
import type { Env } from "../env.ts";

export const ALERTS_DELIVER_PATH = "/api/jobs/alerts-deliver";
/** QStash retries after the first attempt; the last one that fails writes the dead letter. */
export const DELIVERY_RETRIES = 3;
const DELIVERY_TIMEOUT_MS = 10_000;

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
type AlertRow = typeof alerts.$inferSelect;
export type AlertEvent = "fired" | "resolved";

/** The body a webhook channel receives (Slack channels get slackBody of it). */
export function alertPayload(event: AlertEvent, a: AlertRow, ruleName: string | null) {
  return {
    type: `alert.${event}`,
    timestamp: new Date().toISOString(),
    alert: {
      id: a.id, ruleId: a.ruleId, ruleName, team: a.team, kind: a.kind, severity: a.severity,
      subject: a.subject, subjectName: a.subjectName, status: a.status, summary: a.summary, details: a.details,
      startedAt: a.startedAt.toISOString(), firedAt: a.firedAt?.toISOString() ?? null, resolvedAt: a.resolvedAt?.toISOString() ?? null,
      refireCount: a.refireCount,
    },
  };
}
export type AlertPayload = ReturnType<typeof alertPayload>;

/** A Slack incoming-webhook body: `text` for notifications and old clients, one section block for the message. */
export function slackBody(p: AlertPayload) {
  const icon = p.type === "alert.resolved" ? ":white_check_mark:" : p.alert.severity === "critical" ? ":rotating_light:" : ":warning:";
  const verb = p.type === "alert.resolved" ? "RESOLVED" : "FIRING";
  const text = `${icon} [${verb}] ${p.alert.summary} (team ${p.alert.team}, ${p.alert.kind})`;
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: `*${verb}* ${p.alert.summary}` } },
      { type: "context", elements: [{ type: "mrkdwn", text: `team ${p.alert.team} · ${p.alert.kind} · ${p.alert.severity} · alert ${p.alert.id}` }] },
    ],
  };
}

/** Rows for each enabled channel of the alert's team, inside the alert change's transaction. */
export async function queueNotifications(tx: Tx, event: AlertEvent, alert: AlertRow, ruleName: string | null): Promise<string[]> {
  const channels = await tx.select({ id: alertChannels.id }).from(alertChannels)
    .where(and(eq(alertChannels.team, alert.team), eq(alertChannels.enabled, true)));
  if (channels.length === 0) return [];
  const payload = alertPayload(event, alert, ruleName);
  const rows = await tx.insert(alertNotifications).values(channels.map((ch) => ({
    alertId: alert.id, channelId: ch.id, team: alert.team, event, payload,
    // Milliseconds, as the list cursor carries them (now() has microseconds).
    createdAt: new Date(),
  }))).returning({ id: alertNotifications.id });
  return rows.map((r) => r.id);
}

/** Hands committed notification rows to QStash; one QStash refuses is dead at once (nothing will retry it). */
export async function publishNotifications(db: Db, env: Env, publicUrl: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const client = env.QSTASH_URL && env.QSTASH_TOKEN ? new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN, retry: false }) : undefined;
  const destination = new URL(ALERTS_DELIVER_PATH, publicUrl).toString();
  await Promise.all(ids.map(async (id) => {
    try {
      if (!client) throw new Error("QSTASH_URL and QSTASH_TOKEN are not set");
      // The notification id as deduplication id: a re-published row is delivered once.
      await client.publishJSON({ url: destination, body: { notificationId: id }, retries: DELIVERY_RETRIES, deduplicationId: `alert-notification-${id}` });
    } catch (err) {
      await db.update(alertNotifications).set({ status: "dead", lastError: `QStash did not accept the delivery: ${String(err).slice(0, 500)}`, updatedAt: new Date() })
        .where(eq(alertNotifications.id, id));
    }
  }));
}

export type DeliveryOutcome = { status: "delivered" | "dead" | "gone"; attempts: number } | { status: "retry"; attempts: number; error: string };

/**
 * One delivery attempt: renders the channel's body, signs webhooks with the
 * channel's secret (Standard Webhooks; webhook-id is the notification id, the
 * same on every retry, so receivers can deduplicate), and records the result.
 */
export async function deliverNotification(
  db: Db, keys: SealKeys, notificationId: string, retried: number,
  /** Why the channel's URL may not be fetched now (core/alerts/channelUrl.ts), or null. */
  refusal: (url: string) => string | null = () => null,
): Promise<DeliveryOutcome> {
  const [row] = await db.select({ n: alertNotifications, ch: alertChannels }).from(alertNotifications)
    .leftJoin(alertChannels, eq(alertChannels.id, alertNotifications.channelId))
    .where(eq(alertNotifications.id, notificationId)).limit(1);
  if (!row) return { status: "gone", attempts: 0 };
  const { n, ch } = row;
  if (n.status !== "queued") return { status: n.status === "delivered" ? "delivered" : "dead", attempts: n.attempts };
  const attempts = n.attempts + 1;
  let error: string;
  const refused = ch ? refusal(ch.url) : null;
  if (!ch) {
    error = "the channel was deleted";
  } else if (refused) {
    // Checked again here: the setting may have changed, or the row predates the check. Never fetched, never retried.
    error = `the channel's URL is not allowed: ${refused}`;
  } else {
    const payload = n.payload as AlertPayload;
    const body = JSON.stringify(ch.kind === "slack" ? slackBody(payload) : payload);
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "RedForge-Alerts/1" };
    if (ch.kind === "webhook" && ch.secretSealed) Object.assign(headers, await webhookHeaders(await open(ch.secretSealed, keys), body, `msg_${n.id}`));
    error = await fetch(ch.url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) }).then(
      async (res) => {
        await res.body?.cancel();
        return res.ok ? "" : `the channel answered ${res.status}`;
      },
      (err: unknown) => `the channel could not be reached: ${String(err).slice(0, 300)}`,
    );
    if (!error) {
      await db.update(alertNotifications).set({ status: "delivered", attempts, lastError: null, deliveredAt: new Date(), updatedAt: new Date() })
        .where(eq(alertNotifications.id, n.id));
      return { status: "delivered", attempts };
    }
  }
  const final = !ch || refused !== null || retried >= DELIVERY_RETRIES;
  await db.update(alertNotifications).set({ status: final ? "dead" : "queued", attempts, lastError: error, updatedAt: new Date() })
    .where(eq(alertNotifications.id, n.id));
  return final ? { status: "dead", attempts } : { status: "retry", attempts, error };
}
