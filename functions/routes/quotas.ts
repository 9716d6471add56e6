import { asc, eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { quotas } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { deploymentsToday } from "../../core/governance/deploymentGate.ts";
import { quotaOf, teamUsage, type Quota } from "../../core/governance/quotas.ts";
import { tokensUsed } from "../../core/governance/tokenUsage.ts";
import { notFound } from "../../core/errors.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { listOf } from "../../protocol/api/common.ts";
import { quotaSchema, quotaUsageSchema } from "../../protocol/api/governance.ts";

/** null (or absent) = no limit on that dimension. */
const limit = z.number().int().min(0).max(2_000_000_000).nullable().default(null);
const putBody = z.strictObject({
  maxInstances: limit,
  maxCpuMillicores: limit,
  maxMemoryMb: limit,
  maxDeploymentsPerDay: limit,
  maxLlmTokensPerDay: limit,
});
const teamParam = z.object({ team: z.string().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits and . _ - only") });

const limits = (q: Quota) => ({
  maxInstances: q.maxInstances, maxCpuMillicores: q.maxCpuMillicores, maxMemoryMb: q.maxMemoryMb,
  maxDeploymentsPerDay: q.maxDeploymentsPerDay, maxLlmTokensPerDay: q.maxLlmTokensPerDay,
});
const view = (q: Quota) => ({ team: q.team, ...limits(q), createdAt: q.createdAt, updatedAt: q.updatedAt });

const doc = describe("Quotas");

/**
 * Per-team limits (seed 5.3), written whole by PUT. Enforced by
 * governance/quotas.ts (instances, CPU, memory: 409) and
 * governance/deploymentGate.ts (deployments and LLM tokens per day: 429).
 */
export const quotaRoutes = new Hono<AppEnv>()
  .get("/", doc({ summary: "List team quotas", responses: { 200: listOf(quotaSchema) } }), requirePermission("quotas", "read"), async (c) => {
    const rows = await c.var.services.db.select().from(quotas).orderBy(asc(quotas.team)).limit(1000);
    return c.json({ items: rows.map(view) });
  })
  .get("/:team", doc({ summary: "A team's quota", responses: { 200: quotaSchema }, errors: [404] }), requirePermission("quotas", "read"), validate("param", teamParam), async (c) => {
    const { team } = c.req.valid("param");
    const row = await quotaOf(c.var.services.db, team);
    if (!row) throw notFound("quota", team);
    return c.json(view(row));
  })
  .get("/:team/usage", doc({ summary: "A team's limits and what it uses now", responses: { 200: quotaUsageSchema } }), requirePermission("quotas", "read"), validate("param", teamParam), async (c) => {
    const { team } = c.req.valid("param");
    const { db, kv } = c.var.services;
    const now = new Date();
    const [row, held, deploys, tokens] = await Promise.all([
      quotaOf(db, team), teamUsage(db, team), deploymentsToday(db, team, now), tokensUsed(kv, team, now),
    ]);
    return c.json({
      team,
      limits: row ? limits(row) : null,
      usage: { instances: held.instances, cpuMillicores: held.cpuMillicores, memoryMb: held.memoryMb, deploymentsToday: deploys, llmTokensToday: tokens },
    });
  })
  .put("/:team", doc({
    summary: "Set a team's quota, whole (absent or null: no limit)",
    description: "201 when the team had no quota, 200 when it is replaced. Instances, CPU and memory are enforced at 409, deployments and LLM tokens per UTC day at 429 (docs/governance.md).",
    responses: { 200: quotaSchema, 201: quotaSchema },
  }), requirePermission("quotas", "update"), validate("param", teamParam), validate("json", putBody), async (c) => {
    const { team } = c.req.valid("param");
    const body = c.req.valid("json");
    const { row, created } = await transact(c, async (tx, record) => {
      const before = await quotaOf(tx, team);
      const [saved] = await tx.insert(quotas).values({ team, ...body })
        .onConflictDoUpdate({ target: quotas.team, set: { ...body, updatedAt: new Date() } }).returning();
      record({ action: "QUOTA_SET", resourceType: "quota", resourceId: team, details: { from: before ? limits(before) : null, to: body } });
      return { row: saved!, created: !before };
    });
    return c.json(view(row), created ? 201 : 200);
  })
  .delete("/:team", doc({ summary: "Remove a team's quota", responses: { 204: null }, errors: [404] }), requirePermission("quotas", "delete"), validate("param", teamParam), async (c) => {
    const { team } = c.req.valid("param");
    await transact(c, async (tx, record) => {
      const [gone] = await tx.delete(quotas).where(eq(quotas.team, team)).returning();
      if (!gone) throw notFound("quota", team);
      record({ action: "QUOTA_REMOVED", resourceType: "quota", resourceId: team, details: { was: limits(gone) } });
    });
    return c.body(null, 204);
  });
