import { and, desc, eq, ilike, isNull, lt, or, sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { clusters, flowVersions, instances, quotas } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { randomBytes, sha256Hex, toBase64Url } from "../../protocol/encoding.ts";
import { open, seal, type SealKeys } from "../../core/crypto/secretBox.ts";
import { sendCommand } from "../../core/fleet/commands.ts";
import { assertScaleAllowed } from "../../core/governance/policies.ts";
import { assertInstanceQuota } from "../../core/governance/quotas.ts";
import { applySecretsPatch, openSecrets, sealSecrets, secretsPatchShape, secretsShape } from "../../core/fleet/instanceSecrets.ts";
import { appendQueries, canonicalJson } from "../../db/auditChain.ts";
import { compiledInsert } from "../../db/compiledInsert.ts";
import { ApiError, notFound } from "../../core/errors.ts";
import { requestOrigin, transact } from "../middleware/auditTrail.ts";
import { recordRead } from "../middleware/auditRead.ts";
import { requirePermission } from "../middleware/requirePermission.ts";
import { decodeCursor, page, pageQuery } from "../../core/platform/pagination.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { commandAcceptedSchema, pageOf } from "../../protocol/api/common.ts";
import { instanceCreatedSchema, instanceDetailSchema, instanceScaledSchema, instanceSummarySchema } from "../../protocol/api/fleet.ts";
import { dnsLabel, envShape, flowsShape, resourcesShape } from "../../protocol/shapes.ts";
import { DEFAULT_STACK, stackIdSchema } from "../../protocol/stacks.ts";
import { assertStackSupported } from "../../core/fleet/stacks.ts";
import { toSql } from "../../core/fleet/labelSelector.ts";
import { parseSelectorOrThrow } from "../../core/rollouts/start.ts";
import { applyLabelsPatch, labelsPatchSchema, labelsSchema, MAX_LABELS } from "../../protocol/labels.ts";
import { blueprintParamsShape, blueprintRefShape, instanceFromBlueprint } from "../../core/blueprints/resolve.ts";

export const INSTANCE_STATUSES = ["pending", "starting", "running", "stopped", "failed", "unknown", "deploying"] as const;
export const DESIRED_STATES = ["running", "stopped", "destroyed"] as const;

const createBody = z.strictObject({
  name: dnsLabel,
  clusterId: z.uuid(),
  flows: flowsShape.default([]),
  resources: resourcesShape.default({}),
  env: envShape.default({}),
  /** Write-only: stored sealed, never returned (see fleet/instanceSecrets.ts). */
  secrets: secretsShape.default({}),
  /** The Node-RED version line to run (GET /api/stacks lists the cluster's). */
  stack: stackIdSchema.default(DEFAULT_STACK),
  /** Kubernetes-style labels; label selectors (GET ?selector=, rollouts) pick instances by them. */
  labels: labelsSchema.default({}),
  /** Fill flows (and env/secrets from blueprintParams) from a blueprint: GET /api/blueprints (docs/agents.md "Blueprints"). */
  blueprint: blueprintRefShape.optional(),
  blueprintParams: blueprintParamsShape.optional(),
});
const patchBody = z.strictObject({
  flows: flowsShape.optional(),
  resources: resourcesShape.optional(),
  env: envShape.optional(),
  secrets: secretsPatchShape.optional(),
  /** Only the stack it runs: changing it is a runtime upgrade (POST /api/deployments with `stack`), which loses nothing. */
  stack: stackIdSchema.optional(),
  /** label → value sets it, label → null removes it; the others stay. */
  labels: labelsPatchSchema.optional(),
}).refine((b) => Object.keys(b).length > 0, "send at least one of flows, resources, env, secrets, stack, labels");
const listQuery = z.strictObject({
  ...pageQuery,
  status: z.enum(INSTANCE_STATUSES).optional(),
  desiredState: z.enum(["running", "stopped"]).optional(),
  clusterId: z.uuid().optional(),
  team: z.string().max(100).optional(),
  /** Case-insensitive substring of the name. */
  q: z.string().max(63).optional(),
  /** A label selector (`env=prod,region in (eu,us)`, docs/rollouts.md); 400 `invalid_selector` names the position. */
  selector: z.string().max(1024).optional(),
});
const idParam = z.object({ id: z.uuid() });
const scaleBody = z.strictObject({ replicas: z.number().int().min(0).max(100) });
const destroyQuery = z.strictObject({
  /** Also delete the instance's data (userDir / PVC); kept by default. */
  deleteData: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
});

type Row = typeof instances.$inferSelect;

const summary = (r: Row) => ({
  id: r.id, name: r.name, clusterId: r.clusterId, team: r.team,
  status: r.status, statusReason: r.statusReason, desiredState: r.desiredState,
  resources: r.resources, replicas: r.replicas, endpoints: r.endpoints, stack: r.stack, nodeRedVersion: r.nodeRedVersion,
  labels: r.labels, createdAt: r.createdAt, updatedAt: r.updatedAt,
});
const detail = (r: Row) => ({ ...summary(r), flows: r.flows, env: r.env, secretNames: r.secretNames });

const flowsDigest = (flows: unknown[]) => sha256Hex(canonicalJson(flows));

async function findLive(c: { var: AppEnv["Variables"] }, id: string): Promise<Row> {
  const [row] = await c.var.services.db.select().from(instances).where(and(eq(instances.id, id), isNull(instances.deletedAt))).limit(1);
  if (!row) throw notFound("instance", id);
  return row;
}

/**
 * Lifecycle calls record the desired state, then put the command in the
 * cluster's outbox and answer 202: `status` follows when the bridge reports.
 */
function lifecycle(desiredState: "running" | "stopped", action: string) {
  return async (c: import("hono").Context<AppEnv>) => {
    const id = c.req.param("id")!;
    const row = await transact(c, async (tx, record) => {
      const [updated] = await tx.update(instances).set({ desiredState, updatedAt: new Date() })
        .where(and(eq(instances.id, id), isNull(instances.deletedAt))).returning();
      if (updated) record({ action, resourceType: "instance", resourceId: id, details: { desiredState } });
      return updated;
    });
    if (!row) throw notFound("instance", id);
    const commandId = await sendCommand(c.env, row.clusterId, desiredState === "running" ? "instance.start" : "instance.stop", id);
    return c.json({ id: row.id, status: row.status, desiredState: row.desiredState, commandId }, 202);
  };
}

/** What the bridge needs to run the instance; the credential secret leaves the control plane only here. */
async function instanceSpec(row: Row, encryptionKey: SealKeys) {
  return {
    id: row.id, name: row.name, flows: row.flows, resources: row.resources, stack: row.stack,
    // Secrets win over plain env of the same name.
    env: { ...row.env, ...(await openSecrets(row.secretsSealed, encryptionKey)) },
    credentialSecret: row.credentialSecretSealed ? await open(row.credentialSecretSealed, encryptionKey) : "",
  };
}

/**
 * The first statement of a creation's one-transaction batch: fails it, before anything is written,
 * when the cluster is not live ("cluster_not_found") or the team has a quota ("team_has_quota": the
 * route then takes the interactive path, which checks the quota under the team's lock). A
 * non-interactive batch cannot branch, and a function raising a custom error would need a
 * migration, so the verdict is a text cast to integer: anything but '0' raises 22P02 naming it.
 */
function createGuard(clusterId: string, team: string) {
  return sql`select (case
    when not exists (select 1 from ${clusters} where ${clusters.id} = ${clusterId} and ${clusters.deletedAt} is null) then 'cluster_not_found'
    when exists (select 1 from ${quotas} where ${quotas.team} = ${team}) then 'team_has_quota'
    else '0' end)::integer as ok`;
}

// The creation batch's two inserts, their SQL built once per isolate (db/compiledInsert.ts: the same statements).
const insertInstance = compiledInsert((db, values: typeof instances.$inferInsert) => db.insert(instances).values(values).returning());
const insertFirstFlowVersion = compiledInsert((db, values: typeof flowVersions.$inferInsert) => db.insert(flowVersions).values(values));

const guardSaid = (e: { code?: string; message?: string }, verdict: string) => e.code === "22P02" && (e.message ?? "").includes(`"${verdict}"`);

const doc = describe("Instances");

export const instanceRoutes = new Hono<AppEnv>()
  .post("/", doc({
    summary: "Create an instance; the bridge is sent `instance.create`",
    description: "`secrets` are write-only: stored sealed, only their names come back. With `blueprint` (GET /api/blueprints) the flows come from it and `blueprintParams` fill env (secret parameters go to secrets; explicit env/secrets win): 404 `blueprint_not_found`, 400 `blueprint_param_missing` / `blueprint_param_unknown` / `blueprint_with_flows`. `stack` (default 5.0) must be one the cluster's bridge runs (422 `stack_unsupported`; see GET /api/stacks); before its bridge has said which, the bridge itself refuses an unsupported stack and the instance becomes `failed`.",
    responses: { 201: instanceCreatedSchema },
    errors: [404, 409, 422],
  }), requirePermission("instances", "create"), validate("json", createBody), async (c) => {
    const { blueprint, blueprintParams, ...body } = c.req.valid("json");
    if (blueprint) {
      if (body.flows.length > 0) throw new ApiError(400, "blueprint_with_flows", "send either blueprint or flows, not both");
      Object.assign(body, instanceFromBlueprint(blueprint, blueprintParams ?? {}, body));
    } else if (blueprintParams) throw new ApiError(400, "blueprint_params_without_blueprint", "blueprintParams needs blueprint");
    const p = c.var.principal!;
    const { db } = c.var.services;
    await assertStackSupported(c.env, body.clusterId, body.stack);
    const digest = await flowsDigest(body.flows);
    const { encryptionKey } = c.var.services.config;
    const credentialSecret = toBase64Url(randomBytes(32));
    const credentialSecretSealed = await seal(credentialSecret, encryptionKey);
    const { secrets, ...plain } = body;
    const sealedSecrets = await sealSecrets(secrets, encryptionKey);
    const audit = (id: string) => ({
      action: "INSTANCE_CREATED", resourceType: "instance", resourceId: id,
      // Names of env vars only: values may be credentials.
      details: { name: body.name, clusterId: body.clusterId, stack: body.stack, resources: body.resources, envKeys: Object.keys(body.env), secretNames: sealedSecrets.secretNames, flowsDigest: digest, labels: body.labels, ...(blueprint ? { blueprint } : {}) },
    });
    const nameTaken = () => new ApiError(409, "instance_name_taken", `an instance named ${body.name} already exists`);
    const clusterGone = () => new ApiError(400, "cluster_not_found", `cluster ${body.clusterId} does not exist`);
    // Without a quota nothing needs an answer mid-transaction (the id is made here), so the checks,
    // the insert, the flow version and the audit append go as ONE HTTP non-interactive transaction:
    // one round trip, no Pool/WebSocket, the chain lock held only inside the database
    // (docs/performance-writes.md). Any failing statement rolls the whole batch back.
    const id = crypto.randomUUID();
    let row: Row | undefined;
    try {
      const [, [created]] = await c.var.services.batch([
        db.execute(createGuard(body.clusterId, p.team)),
        insertInstance(db, { id, ...plain, ...sealedSecrets, team: p.team, createdBy: p.userId, credentialSecretSealed }),
        insertFirstFlowVersion(db, { instanceId: id, version: 1, flows: body.flows, digest, createdBy: p.userId }),
        ...appendQueries(db, [{ ...requestOrigin(c), statusCode: null, ...audit(id) }]),
      ]);
      row = created!;
      c.set("audited", true);
    } catch (err) {
      const e = err as { code?: string; constraint?: string; message?: string };
      if (e.code === "23505" && e.constraint === "uq_instances_live_name") throw nameTaken();
      // The guard's verdicts; a cluster deleted after the guard fails the foreign key.
      if (guardSaid(e, "cluster_not_found") || (e.code === "23503" && e.constraint?.startsWith("instances_cluster_id"))) throw clusterGone();
      if (!guardSaid(e, "team_has_quota")) throw err;
    }
    // A quota is checked under the team's lock between reads and the insert: an interactive transaction.
    row ??= await transact(c, async (tx, record) => {
      const [cluster] = await tx.select({ id: clusters.id }).from(clusters).where(and(eq(clusters.id, body.clusterId), isNull(clusters.deletedAt))).limit(1);
      if (!cluster) throw clusterGone();
      await assertInstanceQuota(tx, { kind: "create", team: p.team, resources: body.resources, replicas: 1 });
      const [created] = await tx.insert(instances)
        .values({ ...plain, ...sealedSecrets, team: p.team, createdBy: p.userId, credentialSecretSealed }).onConflictDoNothing().returning();
      if (!created) throw nameTaken();
      await tx.insert(flowVersions).values({ instanceId: created.id, version: 1, flows: body.flows, digest, createdBy: p.userId });
      record(audit(created.id));
      return created;
    });
    // instanceSpec(row) without opening what was sealed a moment ago: the plaintexts are at hand.
    const spec = { id: row.id, name: row.name, flows: row.flows, resources: row.resources, stack: row.stack, env: { ...row.env, ...secrets }, credentialSecret };
    const commandId = await sendCommand(c.env, row.clusterId, "instance.create", row.id, { spec });
    return c.json({ ...detail(row), commandId }, 201);
  })
  .get("/", doc({ summary: "List live instances, newest first", responses: { 200: pageOf(instanceSummarySchema) } }), requirePermission("instances", "read"), validate("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const cursor = decodeCursor(q.cursor);
    const selector = q.selector === undefined ? undefined : parseSelectorOrThrow(q.selector);
    const rows = await c.var.services.db.select().from(instances).where(and(
      isNull(instances.deletedAt),
      selector ? toSql(selector, instances.labels) : undefined,
      q.status ? eq(instances.status, q.status) : undefined,
      q.desiredState ? eq(instances.desiredState, q.desiredState) : undefined,
      q.clusterId ? eq(instances.clusterId, q.clusterId) : undefined,
      q.team ? eq(instances.team, q.team) : undefined,
      q.q ? ilike(instances.name, `%${q.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%`) : undefined,
      cursor ? or(lt(instances.createdAt, cursor.createdAt), and(eq(instances.createdAt, cursor.createdAt), lt(instances.id, cursor.id))) : undefined,
    )).orderBy(desc(instances.createdAt), desc(instances.id)).limit(q.limit + 1);
    const { items, nextCursor } = page(rows, q.limit);
    return c.json({ items: items.map(summary), nextCursor });
  })
  .get("/:id", doc({ summary: "An instance with its flows, env and secret names", responses: { 200: instanceDetailSchema }, errors: [404] }), requirePermission("instances", "read"), validate("param", idParam), async (c) => {
    const row = await findLive(c, c.req.valid("param").id);
    // Secret names (never values) are on record when they were shown.
    if (row.secretNames.length) await recordRead(c, { action: "INSTANCE_SECRET_NAMES_READ", resourceType: "instance", resourceId: row.id, details: { secretNames: row.secretNames.length } });
    return c.json(detail(row));
  })
  .patch("/:id", doc({
    summary: "Change an instance's flows, resources, env, secrets or labels",
    description: "New flows are recorded as a new flow version; deploy them with POST /api/deployments. `stack` may be sent only as the one it runs: a different stack is 409 `stack_change_needs_deployment` (a runtime upgrade is a blue-green deployment: POST /api/deployments with `stack`).",
    responses: { 200: instanceDetailSchema },
    errors: [404, 409],
  }), requirePermission("instances", "update"), validate("param", idParam), validate("json", patchBody), async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const p = c.var.principal!;
    const digest = body.flows ? await flowsDigest(body.flows) : undefined;
    const row = await transact(c, async (tx, record) => {
      if (body.resources) await assertInstanceQuota(tx, { kind: "update", instanceId: id, resources: body.resources });
      const { secrets: secretsPatch, stack, labels: labelsPatch, ...plain } = body;
      if (stack !== undefined) {
        const [current] = await tx.select({ stack: instances.stack }).from(instances).where(and(eq(instances.id, id), isNull(instances.deletedAt))).limit(1);
        if (!current) throw notFound("instance", id);
        // Restarting on another runtime would drop what is in flight; the deployment path moves it without loss.
        if (current.stack !== stack) {
          throw new ApiError(409, "stack_change_needs_deployment", `instance ${id} runs stack ${current.stack}; move it to ${stack} with POST /api/deployments {"instanceId", "stack": "${stack}"} (a blue-green runtime upgrade)`, { stack: current.stack, requested: stack });
        }
      }
      let sealedSecrets = {};
      if (secretsPatch) {
        const [current] = await tx.select({ sealed: instances.secretsSealed }).from(instances)
          .where(and(eq(instances.id, id), isNull(instances.deletedAt))).for("update");
        if (!current) throw notFound("instance", id);
        const { encryptionKey } = c.var.services.config;
        sealedSecrets = await sealSecrets(applySecretsPatch(await openSecrets(current.sealed, encryptionKey), secretsPatch), encryptionKey);
      }
      let labels: Record<string, string> | undefined;
      if (labelsPatch) {
        const [current] = await tx.select({ labels: instances.labels }).from(instances)
          .where(and(eq(instances.id, id), isNull(instances.deletedAt))).for("update");
        if (!current) throw notFound("instance", id);
        labels = applyLabelsPatch(current.labels, labelsPatch);
        if (Object.keys(labels).length > MAX_LABELS) throw new ApiError(400, "too_many_labels", `an instance has at most ${MAX_LABELS} labels; this change leaves ${Object.keys(labels).length}`);
      }
      const [updated] = await tx.update(instances).set({ ...plain, ...sealedSecrets, ...(labels ? { labels } : {}), updatedAt: new Date() })
        .where(and(eq(instances.id, id), isNull(instances.deletedAt))).returning();
      if (!updated) throw notFound("instance", id);
      if (body.flows && digest) {
        await tx.insert(flowVersions).values({
          instanceId: id, flows: body.flows, digest, createdBy: p.userId,
          version: sql`(select coalesce(max(${flowVersions.version}), 0) + 1 from ${flowVersions} where ${flowVersions.instanceId} = ${id})`,
        });
      }
      record({
        action: "INSTANCE_UPDATED", resourceType: "instance", resourceId: id,
        // Secret names only, never values.
        details: {
          fields: Object.keys(body), ...(body.resources ? { resources: body.resources } : {}), ...(digest ? { flowsDigest: digest } : {}),
          ...(body.secrets ? { secretsChanged: Object.keys(body.secrets).sort() } : {}),
          ...(labels ? { labelsChanged: labelsPatch, labels } : {}),
        },
      });
      return updated;
    });
    return c.json(detail(row));
  })
  .delete("/:id", doc({
    summary: "Destroy an instance (its data too with deleteData=true)",
    description: "`desiredState` becomes `destroyed` and the name is free again; the bridge removes the runtime.",
    responses: { 202: commandAcceptedSchema },
    errors: [404],
  }), requirePermission("instances", "delete"), validate("param", idParam), validate("query", destroyQuery), async (c) => {
    const { id } = c.req.valid("param");
    const row = await transact(c, async (tx, record) => {
      // A tombstone, not a delete: the bridge destroys the runtime, and history keeps its references.
      const [gone] = await tx.update(instances).set({ desiredState: "destroyed", deletedAt: new Date(), updatedAt: new Date() })
        .where(and(eq(instances.id, id), isNull(instances.deletedAt))).returning();
      if (gone) record({ action: "INSTANCE_DESTROY_REQUESTED", resourceType: "instance", resourceId: id, details: { name: gone.name } });
      return gone;
    });
    if (!row) throw notFound("instance", id);
    const commandId = await sendCommand(c.env, row.clusterId, "instance.destroy", id, { deleteData: c.req.valid("query").deleteData });
    return c.json({ id: row.id, status: row.status, desiredState: row.desiredState, commandId }, 202);
  })
  .post("/:id/scale", doc({
    summary: "Set the replica count (0 stops)",
    description: "The process driver runs 0 or 1. Over the team's quota → 409 `QUOTA_EXCEEDED`; over a `max_replicas` policy → 403 `POLICY_DENIED`.",
    responses: { 202: instanceScaledSchema },
    errors: [404, 409],
  }), requirePermission("instances", "update"), validate("param", idParam), validate("json", scaleBody), async (c) => {
    const { id } = c.req.valid("param");
    const { replicas } = c.req.valid("json");
    const row = await transact(c, async (tx, record) => {
      await assertScaleAllowed(tx, id, replicas);
      await assertInstanceQuota(tx, { kind: "update", instanceId: id, replicas });
      const [updated] = await tx.update(instances)
        .set({ replicas, desiredState: replicas === 0 ? "stopped" : "running", updatedAt: new Date() })
        .where(and(eq(instances.id, id), isNull(instances.deletedAt))).returning();
      if (updated) record({ action: "INSTANCE_SCALE_REQUESTED", resourceType: "instance", resourceId: id, details: { replicas } });
      return updated;
    });
    if (!row) throw notFound("instance", id);
    const commandId = await sendCommand(c.env, row.clusterId, "instance.scale", id, { replicas });
    return c.json({ id: row.id, status: row.status, desiredState: row.desiredState, replicas: row.replicas, commandId }, 202);
  })
  .post("/:id/start", doc({ summary: "Start a stopped instance", responses: { 202: commandAcceptedSchema }, errors: [404] }), requirePermission("instances", "update"), validate("param", idParam), lifecycle("running", "INSTANCE_START_REQUESTED"))
  .post("/:id/stop", doc({ summary: "Stop an instance (its data is kept)", responses: { 202: commandAcceptedSchema }, errors: [404] }), requirePermission("instances", "update"), validate("param", idParam), lifecycle("stopped", "INSTANCE_STOP_REQUESTED"))
  .post("/:id/restart", doc({
    summary: "Restart a running instance's Node-RED (stop, then start; its data and flows are kept)",
    description: "One `instance.restart` command, so stop and start cannot overtake each other on the bridge. A stopped instance is 409 `instance_not_running`: start it instead.",
    responses: { 202: commandAcceptedSchema },
    errors: [404, 409],
  }), requirePermission("instances", "update"), validate("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    const row = await transact(c, async (tx, record) => {
      const [found] = await tx.select().from(instances).where(and(eq(instances.id, id), isNull(instances.deletedAt))).for("update").limit(1);
      if (!found) throw notFound("instance", id);
      if (found.desiredState !== "running") {
        throw new ApiError(409, "instance_not_running", `instance ${found.name} is ${found.desiredState}; start it instead`, { desiredState: found.desiredState });
      }
      record({ action: "INSTANCE_RESTART_REQUESTED", resourceType: "instance", resourceId: id });
      return found;
    });
    const commandId = await sendCommand(c.env, row.clusterId, "instance.restart", id);
    return c.json({ id: row.id, status: row.status, desiredState: row.desiredState, commandId }, 202);
  });
