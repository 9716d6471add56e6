/**
 * What a verified CI delivery does: the hook's one action, run as the hook's
 * creator with the permissions their role has now (a disabled creator, or
 * one who may no longer deploy, stops the hook at once, as an API key stops).
 */
import { eq } from "drizzle-orm";
import { appendAudit } from "../../db/auditChain.ts";
import type { Db } from "../../db/client.ts";
import { ciHooks, users, type Permission } from "../../db/schema.ts";
import { ciDeliverySchema, type CiDelivery } from "../../protocol/api/ciHooks.ts";
import type { Env } from "../env.ts";
import { ApiError } from "../errors.ts";
import { describeIssues } from "../validation.ts";
import { requestPromotion } from "../pipelines/promotions.ts";
import { launchRollout, rolloutRequest, type RolloutActor } from "../pipelines/rollouts.ts";
import type { CiHookRow, VerifiedDelivery } from "./verify.ts";

export interface DeliveryOutcome { rolloutId: string | null; promotionId: string | null; status: string }

export function parseDelivery(body: string): CiDelivery {
  let raw: unknown;
  try { raw = JSON.parse(body); } catch { throw new ApiError(400, "malformed_json", "request body is not valid JSON"); }
  const parsed = ciDeliverySchema.safeParse(raw);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error.issues);
    throw new ApiError(400, "validation_failed", `invalid delivery: ${issues[0]?.path ? `${issues[0].path}: ` : ""}${issues[0]?.message ?? "invalid input"}`, issues);
  }
  return parsed.data;
}

/** The hook's creator as a caller, with what they may do now. */
export async function hookActor(
  db: Db, hook: CiHookRow, permissionsOf: (role: string) => Promise<Permission[]>, allows: (p: Permission[]) => boolean,
  origin: { ipAddress: string | null; userAgent: string | null },
): Promise<RolloutActor> {
  const [user] = await db.select().from(users).where(eq(users.id, hook.createdBy)).limit(1);
  if (!user || user.disabled) throw new ApiError(403, "hook_actor_disabled", "the user this hook acts as is disabled or gone; create the hook again as an active user");
  const permissions = await permissionsOf(user.role);
  if (!allows(permissions)) throw new ApiError(403, "forbidden", `the hook acts as ${user.username}, whose role ${user.role} may not create deployments`);
  return {
    userId: user.id, ipAddress: origin.ipAddress, userAgent: origin.userAgent,
    principal: { userId: user.id, username: user.username, team: user.team, role: user.role, permissions, via: "ci_hook" },
  };
}

export async function runHookAction(
  deps: { db: Db; env: Env }, actor: RolloutActor, delivery: VerifiedDelivery, payload: CiDelivery,
): Promise<DeliveryOutcome> {
  const { hook } = delivery;
  const description = payload.description ?? `CI hook ${hook.name}, delivery ${delivery.deliveryId}`;
  const source = payload.versionId ? { versionId: payload.versionId } : { flows: payload.flows };
  let outcome: DeliveryOutcome;
  if (hook.action.kind === "rollout") {
    const request = rolloutRequest({ ...hook.action.rollout, selector: hook.action.selector, ...source, description: description.slice(0, 500) });
    const rollout = await launchRollout(deps.env, { ...actor, via: `ci_webhook:${hook.id}` }, request);
    outcome = { rolloutId: rollout.id, promotionId: null, status: rollout.status };
  } else {
    const { pipelineId, stage } = hook.action;
    const promotion = await requestPromotion(deps, actor, pipelineId, stage, { ...source, description: description.slice(0, 500) });
    outcome = { rolloutId: promotion.rolloutId, promotionId: promotion.id, status: promotion.status };
  }
  await deps.db.transaction(async (tx) => {
    await tx.update(ciHooks).set({ lastDeliveryAt: new Date() }).where(eq(ciHooks.id, hook.id));
    await appendAudit(tx, [{
      userId: actor.userId, ipAddress: actor.ipAddress, userAgent: actor.userAgent, statusCode: 202,
      action: "CI_HOOK_DELIVERED", resourceType: "ci_hook", resourceId: hook.id,
      details: { hook: hook.name, scheme: delivery.scheme, deliveryId: delivery.deliveryId, action: hook.action.kind, ...outcome },
    }]);
  });
  return outcome;
}
