/**
 * Verifies a Standard Webhook from a cluster's bridge before anything parses
 * its body: the cluster's sealed secret signs it, the timestamp is fresh, and
 * its webhook-id was never seen (Redis SET NX EX). Returns the raw body.
 */
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { clusters } from "../../db/schema.ts";
import type { AppEnv } from "../app-env.ts";
import { open } from "../crypto/secretBox.ts";
import { ApiError } from "../errors.ts";
import { WEBHOOK_TOLERANCE_SECONDS, verifyWebhook } from "../protocol/webhooks.ts";

export interface VerifiedWebhook {
  clusterId: string;
  webhookId: string;
  body: string;
  /** Call when processing failed, so the sender's retry (same id) is not refused as a replay. */
  release(): Promise<void>;
}

const rejected = (code: string, message: string) => new ApiError(401, code, message);

export async function verifyClusterWebhook(c: Context<AppEnv>, clusterId: string): Promise<VerifiedWebhook> {
  const { db, kv, config } = c.var.services;
  const [cluster] = await db.select({ sealed: clusters.webhookSecretSealed }).from(clusters).where(eq(clusters.id, clusterId)).limit(1);
  // Same answer for an unknown cluster as for a bad signature: nothing to probe.
  if (!cluster) throw rejected("invalid_signature", "webhook signature does not verify");
  const body = await c.req.text();
  const secret = await open(cluster.sealed, config.encryptionKey);
  const check = await verifyWebhook([secret], c.req.raw.headers, body);
  if (!check.ok) {
    throw check.reason === "stale"
      ? rejected("stale_webhook", `webhook-timestamp is more than ${WEBHOOK_TOLERANCE_SECONDS} s away from now`)
      : rejected("invalid_signature", `webhook rejected: ${check.reason.replace(/_/g, " ")}`);
  }
  const nonceKey = `webhook:${clusterId}:${check.id}`;
  const fresh = await kv.set(nonceKey, "1", { nx: true, ex: WEBHOOK_TOLERANCE_SECONDS * 2 });
  if (!fresh) throw rejected("webhook_replayed", `webhook-id ${check.id} was already delivered`);
  return { clusterId, webhookId: check.id, body, release: () => kv.del(nonceKey) };
}
