import { and, asc, eq, isNull, ne } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import type { Db } from "../../db/client.ts";
import { instances, policies } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { assertDeploymentAllowed } from "../../core/governance/deploymentGate.ts";
import { POLICY_KINDS, enabledPolicies, evaluatePolicies, instanceFacts, ruleShapes, type PolicyKind } from "../../core/governance/policies.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { describeIssues, validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { listOf } from "../../protocol/api/common.ts";
import { policyDecisionSchema, policySchema } from "../../protocol/api/governance.ts";

type Row = typeof policies.$inferSelect;

const name = z.string().min(1).max(100).regex(/^[a-z0-9][a-z0-9_-]*$/, "lower-case letters, digits, _ and -");
/** Checked against its kind by parseRule (400 with paths under `rule.`); the document shows each kind's shape. */
const rule = z.unknown().meta({
  description: "The rule; its shape depends on `kind` (approved_models, deployment_window, max_replicas), checked on write",
  anyOf: POLICY_KINDS.map((kind) => ({ title: kind, ...z.toJSONSchema(ruleShapes[kind], { io: "input", unrepresentable: "any" }) })),
});
const createBody = z.strictObject({ name, kind: z.enum(POLICY_KINDS), rule, enabled: z.boolean().default(true) });
const patchBody = z.strictObject({ name: name.optional(), rule: rule.optional(), enabled: z.boolean().optional() })
  .refine((b) => Object.keys(b).length > 0, "send at least one of name, rule, enabled");
const idParam = z.object({ id: z.uuid() });
const evaluateBody = z.discriminatedUnion("action", [
  z.strictObject({ action: z.literal("deploy"), instanceId: z.uuid(), at: z.iso.datetime({ offset: true }).optional() }),
  z.strictObject({ action: z.literal("scale"), instanceId: z.uuid(), replicas: z.number().int().min(0).max(100) }),
  z.strictObject({
    action: z.literal("model_call"), model: z.string().min(1).max(100), provider: z.string().min(1).max(100).optional(),
    /** The calling instance, for policies scoped by a selector. */
    instanceId: z.uuid().optional(),
  }),
]);

/** The rule checked against its kind's shape: 400 `validation_failed` with zod's issues under `rule.`. */
function parseRule(kind: PolicyKind, rule: unknown): unknown {
  const r = ruleShapes[kind].safeParse(rule);
  if (r.success) return r.data;
  const issues = describeIssues(r.error.issues).map((i) => ({ ...i, path: i.path ? `rule.${i.path}` : "rule" }));
  throw new ApiError(400, "validation_failed", `invalid ${kind} rule: ${issues[0]!.path}: ${issues[0]!.message}`, issues);
}

function knownKind(kind: string): PolicyKind {
  if ((POLICY_KINDS as string[]).includes(kind)) return kind as PolicyKind;
  throw new ApiError(409, "policy_kind_unknown", `this policy's kind ${kind} is no longer supported; delete it and create a new one`);
}

async function liveInstance(db: Db, id: string) {
  const [row] = await db.select().from(instances).where(and(eq(instances.id, id), isNull(instances.deletedAt))).limit(1);
  if (!row) throw notFound("instance", id);
  return row;
}

const view = (r: Row) => ({ id: r.id, name: r.name, kind: r.kind, rule: r.rule, enabled: r.enabled, createdAt: r.createdAt, updatedAt: r.updatedAt });
const nameTaken = (n: string) => new ApiError(409, "policy_exists", `a policy named ${n} already exists`);

const doc = describe("Policies");

/**
 * Admin-written rules (governance/policies.ts), validated on write against
 * their kind. Enforced where the action happens: deployments
 * (governance/deploymentGate.ts), scaling (routes/instances.ts), AI calls
 * (evaluateModelPolicy). POST /evaluate answers the same question without acting.
 */
export const policyRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List policies", responses: { 200: listOf(policySchema) } }), requirePermission("policies", "read"), async (c) => {
    const rows = await c.var.services.db.select().from(policies).orderBy(asc(policies.name)).limit(1000);
    return c.json({ items: rows.map(view) });
  })
  .post("/evaluate", doc({
    summary: "Would this deploy, scale or model call be allowed? (nothing acts)",
    description: "For `deploy`, the whole deployment gate as POST /api/deployments runs it: policies, then daily quotas.",
    responses: { 200: policyDecisionSchema },
    errors: [404],
  }), requirePermission("policies", "read"), validate("json", evaluateBody), async (c) => {
    const body = c.req.valid("json");
    const { db } = c.var.services;
    const inst = body.instanceId ? await liveInstance(db, body.instanceId) : undefined;
    if (body.action === "model_call") {
      const instance = inst ? await instanceFacts(db, inst) : undefined;
      return c.json(evaluatePolicies(await enabledPolicies(db), { action: "model_call", model: body.model, provider: body.provider, instance }));
    }
    if (!inst) throw notFound("instance", body.instanceId);
    if (body.action === "scale") {
      return c.json(evaluatePolicies(await enabledPolicies(db), { action: "scale", instance: await instanceFacts(db, inst), replicas: body.replicas }));
    }
    // The whole deployment gate (policies, then daily quotas), as POST /api/deployments would run it.
    try {
      await assertDeploymentAllowed(c.var.services, { instance: inst, principal: c.var.principal, now: body.at ? new Date(body.at) : new Date() });
      return c.json({ allowed: true });
    } catch (err) {
      if (!(err instanceof ApiError) || (err.code !== "POLICY_DENIED" && err.code !== "QUOTA_EXCEEDED")) throw err;
      return c.json({ allowed: false, code: err.code, reason: err.message, ...(err.details as object) });
    }
  })
  .get("/:id", doc({ summary: "A policy", responses: { 200: policySchema }, errors: [404] }), requirePermission("policies", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.services.db.select().from(policies).where(eq(policies.id, id)).limit(1);
    if (!row) throw notFound("policy", id);
    return c.json(view(row));
  })
  .post("/", doc({ summary: "Create a policy; its rule is checked against its kind", responses: { 201: policySchema }, errors: [409] }), requirePermission("policies", "create"), validate("json", createBody), async (c) => {
    const body = c.req.valid("json");
    const rule = parseRule(body.kind, body.rule);
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(policies).values({ name: body.name, kind: body.kind, rule, enabled: body.enabled }).onConflictDoNothing().returning();
      if (!created) throw nameTaken(body.name);
      record({ action: "POLICY_CREATED", resourceType: "policy", resourceId: created.id, details: { name: body.name, kind: body.kind, rule, enabled: body.enabled } });
      return created;
    });
    return c.json(view(row), 201);
  })
  .patch("/:id", doc({ summary: "Change a policy's name, rule or enabled flag", responses: { 200: policySchema }, errors: [404, 409] }), requirePermission("policies", "update"), validate("param", idParam), validate("json", patchBody), async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const row = await transact(c, async (tx, record) => {
      const [before] = await tx.select().from(policies).where(eq(policies.id, id)).for("update").limit(1);
      if (!before) throw notFound("policy", id);
      const rule = body.rule !== undefined ? parseRule(knownKind(before.kind), body.rule) : undefined;
      if (body.name !== undefined) {
        const [taken] = await tx.select({ id: policies.id }).from(policies).where(and(eq(policies.name, body.name), ne(policies.id, id))).limit(1);
        if (taken) throw nameTaken(body.name);
      }
      const [updated] = await tx.update(policies).set({
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(rule !== undefined ? { rule } : {}),
        ...(body.enabled !== undefined ? { enabled: body.enabled } : {}),
        updatedAt: new Date(),
      }).where(eq(policies.id, id)).returning();
      record({
        action: "POLICY_UPDATED", resourceType: "policy", resourceId: id,
        details: { name: updated!.name, from: { name: before.name, rule: before.rule, enabled: before.enabled }, to: { name: updated!.name, rule: updated!.rule, enabled: updated!.enabled } },
      });
      return updated!;
    });
    return c.json(view(row));
  })
  .delete("/:id", doc({ summary: "Delete a policy", responses: { 204: null }, errors: [404] }), requirePermission("policies", "delete"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    await transact(c, async (tx, record) => {
      const [gone] = await tx.delete(policies).where(eq(policies.id, id)).returning();
      if (!gone) throw notFound("policy", id);
      record({ action: "POLICY_DELETED", resourceType: "policy", resourceId: id, details: { name: gone.name, kind: gone.kind, rule: gone.rule } });
    });
    return c.body(null, 204);
  });
