import { forgetClusterSecret } from "../../core/fleet/signedRequest.ts";
import { and, count, desc, eq, isNull, lt, or } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { clusters, instances } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { randomBytes, toBase64 } from "../../protocol/encoding.ts";
import { seal } from "../../core/crypto/secretBox.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { transact } from "../middleware/auditTrail.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { pageOf } from "../../protocol/api/common.ts";
import { clusterDetailSchema, clusterStateSchema, clusterWithSecretSchema } from "../../protocol/api/fleet.ts";
import type { Env } from "../../core/env.ts";
import { dnsLabel, labelMap } from "../../protocol/shapes.ts";

const createBody = z.strictObject({
  name: dnsLabel,
  driver: z.enum(["process", "kubernetes"]).default("process"),
  labels: labelMap.default({}),
});
const listQuery = z.strictObject({ ...pageQuery, driver: z.enum(["process", "kubernetes"]).optional() });
const idParam = z.object({ id: z.uuid() });

/** Standard Webhooks secret format: whsec_ + base64 of 32 random bytes. */
const newWebhookSecret = () => `whsec_${toBase64(randomBytes(32))}`;

const view = (r: typeof clusters.$inferSelect) => ({
  id: r.id, name: r.name, driver: r.driver, labels: r.labels, status: r.status,
  lastSeenAt: r.lastSeenAt, warnings: r.warnings, createdAt: r.createdAt, updatedAt: r.updatedAt,
});

/** The row beside what its ClusterLink knows now (one object call per cluster; a fleet has a handful). */
async function withLink(env: Env, r: typeof clusters.$inferSelect) {
  const s = await env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(r.id)).status();
  return { ...view(r), connected: s.connected, bridgeVersion: s.lastHello?.bridgeVersion ?? null, connectedAt: s.connected ? s.connectedAt ?? null : null };
}

const doc = describe("Clusters");

/** A cluster that has not been deleted. */
const live = (id: string) => and(eq(clusters.id, id), isNull(clusters.deletedAt));

export const clusterRoutes = new Hono<AppEnv>()
  .post("/", doc({
    summary: "Register a cluster (its webhook secret is shown only in this answer)",
    responses: { 201: clusterWithSecretSchema },
    errors: [409],
  }), requirePermission("clusters", "create"), validate("json", createBody), async (c) => {
    const body = c.req.valid("json");
    const secret = newWebhookSecret();
    const sealed = await seal(secret, c.var.services.config.encryptionKey);
    const row = await transact(c, async (tx, record) => {
      const [created] = await tx.insert(clusters).values({ ...body, webhookSecretSealed: sealed }).onConflictDoNothing().returning();
      if (!created) throw new ApiError(409, "cluster_name_taken", `a cluster named ${body.name} already exists`);
      record({ action: "CLUSTER_REGISTERED", resourceType: "cluster", resourceId: created.id, details: { name: body.name, driver: body.driver } });
      return created;
    });
    // The only time the secret leaves the control plane; rotate it if it is lost.
    return c.json({ ...view(row), webhookSecret: secret }, 201);
  })
  .get("/", doc({ summary: "List clusters, newest first, with their bridge's connection and version", responses: { 200: pageOf(clusterStateSchema) } }), requirePermission("clusters", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const rows = await c.var.services.db.select().from(clusters).where(and(
      isNull(clusters.deletedAt),
      q.driver ? eq(clusters.driver, q.driver) : undefined,
      cursor ? or(lt(clusters.createdAt, cursor.createdAt), and(eq(clusters.createdAt, cursor.createdAt), lt(clusters.id, cursor.id))) : undefined,
    )).orderBy(desc(clusters.createdAt), desc(clusters.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: await Promise.all(items.map((r) => withLink(c.env, r))), nextCursor });
  })
  .get("/:id", doc({ summary: "A cluster and how many live instances it has", responses: { 200: clusterDetailSchema }, errors: [404] }), requirePermission("clusters", "read"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const db = c.var.services.db;
    const [row] = await db.select().from(clusters).where(live(id)).limit(1);
    if (!row) throw notFound("cluster", id);
    const [n] = await db.select({ n: count() }).from(instances).where(and(eq(instances.clusterId, id), isNull(instances.deletedAt)));
    return c.json({ ...(await withLink(c.env, row)), instanceCount: n?.n ?? 0 });
  })
  .post("/:id/rotate-secret", doc({
    summary: "Replace the cluster's webhook secret (the new one is shown only in this answer)",
    responses: { 200: clusterWithSecretSchema },
    errors: [404],
  }), requirePermission("clusters", "update"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const secret = newWebhookSecret();
    const sealed = await seal(secret, c.var.services.config.encryptionKey);
    const row = await transact(c, async (tx, record) => {
      const [updated] = await tx.update(clusters).set({ webhookSecretSealed: sealed, updatedAt: new Date() }).where(live(id)).returning();
      if (updated) record({ action: "CLUSTER_SECRET_ROTATED", resourceType: "cluster", resourceId: id });
      return updated;
    });
    if (!row) throw notFound("cluster", id);
    await forgetClusterSecret(c.var.services.kv, id);
    return c.json({ ...view(row), webhookSecret: secret });
  })
  .delete("/:id", doc({
    summary: "Delete an empty cluster",
    description: "409 `cluster_not_empty` while it has instances. The cluster leaves every list and its name is free again; the history of its destroyed instances (deployments, AI decisions, flow versions) is kept and still names it.",
    responses: { 204: null },
    errors: [404, 409],
  }), requirePermission("clusters", "delete"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    // Sealed under the current key but never shown: the deleted cluster's bridge can no longer sign anything.
    const revoked = await seal(newWebhookSecret(), c.var.services.config.encryptionKey);
    await transact(c, async (tx, record) => {
      const [running] = await tx.select({ n: count() }).from(instances).where(and(eq(instances.clusterId, id), isNull(instances.deletedAt)));
      if ((running?.n ?? 0) > 0) {
        throw new ApiError(409, "cluster_not_empty", `cluster ${id} still has ${running!.n} instance(s); delete them first`, { instances: running!.n });
      }
      // A tombstone, not a delete: deployments and AI decisions of its destroyed instances reference
      // them, and through them the cluster (a hard delete answered 409 `referenced` forever).
      const now = new Date();
      const [deleted] = await tx.update(clusters).set({ deletedAt: now, updatedAt: now, status: "deleted", webhookSecretSealed: revoked })
        .where(live(id)).returning({ id: clusters.id, name: clusters.name });
      if (!deleted) throw notFound("cluster", id);
      record({ action: "CLUSTER_DELETED", resourceType: "cluster", resourceId: id, details: { name: deleted.name } });
    });
    await forgetClusterSecret(c.var.services.kv, id);
    return c.body(null, 204);
  });
