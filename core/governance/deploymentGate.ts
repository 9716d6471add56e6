/**
 * The one check a deployment passes before it starts (POST /api/deployments
 * calls it): enabled policies (403 `POLICY_DENIED`), then the team's daily
 * deployment count and LLM token budget (429 `QUOTA_EXCEEDED`). Days are UTC
 * days; both counters start again at UTC midnight.
 */
import { and, count, eq, gte } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { deployments, instances } from "../../db/schema.ts";
import type { Principal } from "../app-env.ts";
import type { KvStore } from "../platform/kv.ts";
import { enabledPolicies, evaluatePolicies, instanceFacts, policyDenied } from "./policies.ts";
import { lockTeamQuota, quotaExceeded, quotaOf, type Tx } from "./quotas.ts";
import { tokensUsed } from "./tokenUsage.ts";

export interface GateServices {
  /** The transaction that will insert the deployment row, for a race-safe daily count; or the plain client. */
  db: Db | Tx;
  kv: KvStore;
}

export interface DeploymentRequest {
  instance: { id: string; name: string; team: string; clusterId: string };
  principal?: Principal;
  now: Date;
}

export function utcMidnight(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
}

/** Deployments started for the team's instances (live or destroyed) since UTC midnight of `at`. */
export async function deploymentsToday(db: Db | Tx, team: string, at: Date): Promise<number> {
  const [row] = await db.select({ n: count() }).from(deployments)
    .innerJoin(instances, eq(instances.id, deployments.instanceId))
    .where(and(eq(instances.team, team), gte(deployments.createdAt, utcMidnight(at))));
  return row?.n ?? 0;
}

/**
 * Throws ApiError 403 `POLICY_DENIED` ({policy, kind, reason}) or 429
 * `QUOTA_EXCEEDED` ({limit: "maxDeploymentsPerDay" | "maxLlmTokensPerDay",
 * team, used, requested, max}); returns when the deployment may go ahead.
 * Called with the transaction that then inserts the deployment row, it holds
 * the team's quota lock until that commits, so parallel deployments cannot
 * both take the day's last slot; called with the plain client it cannot.
 */
export async function assertDeploymentAllowed(services: GateServices, req: DeploymentRequest): Promise<void> {
  const { db, kv } = services;
  const { instance, now } = req;
  const decision = evaluatePolicies(await enabledPolicies(db), { action: "deploy", instance: await instanceFacts(db, instance), at: now });
  if (!decision.allowed) throw policyDenied(decision);
  const quota = await quotaOf(db, instance.team);
  if (!quota) return;
  await lockTeamQuota(db, instance.team);
  if (quota.maxDeploymentsPerDay !== null) {
    const used = await deploymentsToday(db, instance.team, now);
    if (used + 1 > quota.maxDeploymentsPerDay) {
      throw quotaExceeded("maxDeploymentsPerDay", instance.team, used, 1, quota.maxDeploymentsPerDay, 429,
        `team ${instance.team} has used its ${quota.maxDeploymentsPerDay} deployments for today (UTC); the count starts again at midnight UTC`);
    }
  }
  if (quota.maxLlmTokensPerDay !== null) {
    const used = await tokensUsed(kv, instance.team, now);
    if (used >= quota.maxLlmTokensPerDay) {
      throw quotaExceeded("maxLlmTokensPerDay", instance.team, used, 0, quota.maxLlmTokensPerDay, 429,
        `team ${instance.team} has used ${used} of its ${quota.maxLlmTokensPerDay} LLM tokens for today (UTC); deployments resume at midnight UTC or when the quota is raised`);
    }
  }
}
