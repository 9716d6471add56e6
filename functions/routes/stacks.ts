import { and, eq, isNull } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { clusters } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { notFound } from "../../core/errors.ts";
import { bridgeStacks } from "../../core/fleet/stacks.ts";
import { describe } from "../../core/openapi/describe.ts";
import { validate } from "../../core/validation.ts";
import { clusterStacksSchema } from "../../protocol/api/fleet.ts";
import { DEFAULT_STACK } from "../../protocol/stacks.ts";
import { requirePermission } from "../middleware/requirePermission.ts";

const listQuery = z.strictObject({ clusterId: z.uuid() });

const doc = describe("Instances");

/** The Node-RED stacks a cluster's bridge runs (docs/stacks.md): what an instance may name. */
export const stackRoutes = new Hono<AppEnv>()
  .get("/", doc({
    summary: "The Node-RED stacks a cluster's bridge runs",
    description: "As the bridge's last hello listed them. `reported: false` until a bridge that reports stacks has connected; instances may still be created then, and the bridge refuses a stack it does not run.",
    responses: { 200: clusterStacksSchema },
    errors: [404],
  }), requirePermission("instances", "read"), validate("query", listQuery), async (c) => {
    const { clusterId } = c.req.valid("query");
    const [cluster] = await c.var.services.db.select({ id: clusters.id }).from(clusters).where(and(eq(clusters.id, clusterId), isNull(clusters.deletedAt))).limit(1);
    if (!cluster) throw notFound("cluster", clusterId);
    const { stacks, reportedAt } = await bridgeStacks(c.env, clusterId);
    return c.json({ clusterId, items: stacks ?? [], reported: stacks !== null, reportedAt, default: DEFAULT_STACK });
  });
