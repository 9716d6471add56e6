/**
 * Team quotas on what instances hold (seed 5.3): how many live instances, and
 * how much CPU and memory their replicas request. A check and the write it
 * guards run in one transaction under a per-team advisory lock, so parallel
 * creates cannot both see room for one more instance.
 */
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { instances, quotas } from "../../db/schema.ts";
import { ApiError } from "../errors.ts";

export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
export type Quota = typeof quotas.$inferSelect;
export type QuotaLimit = "maxInstances" | "maxCpuMillicores" | "maxMemoryMb" | "maxDeploymentsPerDay" | "maxLlmTokensPerDay";

// Arbitrary constant naming "team quotas" among advisory locks (the team's hash is the second key).
const TEAM_QUOTA_LOCK = 7_470_003;

const MEMORY_UNITS: Record<string, number> = {
  "": 1 / 2 ** 20, K: 1e3 / 2 ** 20, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20, T: 1e12 / 2 ** 20,
  Ki: 1 / 1024, Mi: 1, Gi: 1024, Ti: 1024 ** 2,
};

/** "500m" → 500, "2" → 2000, "0.5" → 500 (the shapes in protocol/shapes.ts). */
export function cpuMillicores(quantity: string | undefined): number {
  if (!quantity) return 0;
  if (quantity.endsWith("m")) return Number(quantity.slice(0, -1));
  return Math.round(Number(quantity) * 1000);
}

/** "512Mi" → 512, "1Gi" → 1024, "1G" → 953.67…; plain numbers are bytes. */
export function memoryMb(quantity: string | undefined): number {
  if (!quantity) return 0;
  const m = /^(\d+)([KMGT]i?)?$/.exec(quantity);
  if (!m) return 0;
  return Number(m[1]) * MEMORY_UNITS[m[2] ?? ""]!;
}

export interface Footprint {
  resources: Record<string, string>;
  replicas: number;
}

export interface TeamUsage {
  instances: number;
  cpuMillicores: number;
  memoryMb: number;
}

const cpuOf = (f: Footprint) => cpuMillicores(f.resources.cpu) * f.replicas;
const memOf = (f: Footprint) => Math.ceil(memoryMb(f.resources.memory) * f.replicas);

/**
 * Serialises every quota check of one team until the caller's transaction ends
 * (outside a transaction it is released at once, so it guards nothing).
 */
export async function lockTeamQuota(tx: Db | Tx, team: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${TEAM_QUOTA_LOCK}, hashtext(${team}))`);
}

export async function quotaOf(db: Db | Tx, team: string): Promise<Quota | undefined> {
  const [row] = await db.select().from(quotas).where(eq(quotas.team, team)).limit(1);
  return row;
}

async function liveFootprints(db: Db | Tx, team: string) {
  return db.select({ id: instances.id, resources: instances.resources, replicas: instances.replicas })
    .from(instances).where(and(eq(instances.team, team), isNull(instances.deletedAt)));
}

/** What a team's live instances hold now (stopped ones count: their replicas keep their reservation). */
export async function teamUsage(db: Db | Tx, team: string): Promise<TeamUsage> {
  const rows = await liveFootprints(db, team);
  return {
    instances: rows.length,
    cpuMillicores: rows.reduce((n, r) => n + cpuOf(r), 0),
    memoryMb: rows.reduce((n, r) => n + memOf(r), 0),
  };
}

export function quotaExceeded(limit: QuotaLimit, team: string, used: number, requested: number, max: number, status: 409 | 429 = 409, why?: string) {
  const message = why ?? `team ${team} would exceed ${limit}: ${used} used + ${requested} requested > ${max}`;
  return new ApiError(status, "QUOTA_EXCEEDED", message, { limit, team, used, requested, max });
}

/**
 * A change to one team's instances: a new instance (no `instanceId`), or new
 * resources / replicas for an existing one.
 */
export type InstanceChange =
  | { kind: "create"; team: string; resources: Record<string, string>; replicas: number }
  | { kind: "update"; instanceId: string; resources?: Record<string, string>; replicas?: number };

/**
 * 409 `QUOTA_EXCEEDED` when the change would take the team over a limit. Call
 * inside the transaction that writes the change, before writing it: the lock
 * is held until that transaction ends. A change that lowers usage always
 * passes, so a team over a lowered quota can still shrink.
 */
export async function assertInstanceQuota(tx: Tx, change: InstanceChange): Promise<void> {
  let team: string;
  if (change.kind === "create") {
    team = change.team;
  } else {
    // A team never changes, so reading it before the lock is safe; a missing instance is the route's 404.
    const [row] = await tx.select({ team: instances.team }).from(instances)
      .where(and(eq(instances.id, change.instanceId), isNull(instances.deletedAt))).limit(1);
    if (!row) return;
    team = row.team;
  }
  // A team without a quota has nothing to check, so its creates need not queue on the team's lock
  // (it serialised every create of a team: docs/performance.md). Setting a quota takes no lock
  // (routes/quotas.ts), so this read-then-lock is as race-free as lock-then-read was; with a
  // quota the row is read again under the lock, as deploymentGate.ts does.
  if (!(await quotaOf(tx, team))) return;
  await lockTeamQuota(tx, team);
  const quota = await quotaOf(tx, team);
  if (!quota) return;
  const rows = await liveFootprints(tx, team);
  const current = change.kind === "update" ? rows.find((r) => r.id === change.instanceId) : undefined;
  const others = rows.filter((r) => r !== current);
  const before: Footprint = current ?? { resources: {}, replicas: 0 };
  const after: Footprint = change.kind === "create"
    ? { resources: change.resources, replicas: change.replicas }
    : { resources: change.resources ?? before.resources, replicas: change.replicas ?? before.replicas };

  if (change.kind === "create" && quota.maxInstances !== null && rows.length + 1 > quota.maxInstances) {
    throw quotaExceeded("maxInstances", team, rows.length, 1, quota.maxInstances);
  }
  const dimensions = [
    { limit: "maxCpuMillicores", max: quota.maxCpuMillicores, of: cpuOf, declared: "cpu" },
    { limit: "maxMemoryMb", max: quota.maxMemoryMb, of: memOf, declared: "memory" },
  ] as const;
  for (const d of dimensions) {
    if (d.max === null) continue;
    // Without a declared request an instance would hold CPU/memory the quota never sees.
    if (after.replicas > 0 && !after.resources[d.declared]) {
      throw quotaExceeded(d.limit, team, others.reduce((n, r) => n + d.of(r), 0), 0, d.max, 409,
        `team ${team} has a ${d.limit} quota: declare resources.${d.declared} for this instance`);
    }
    const used = others.reduce((n, r) => n + d.of(r), 0);
    const requested = d.of(after);
    if (used + requested > d.max && requested > d.of(before)) {
      throw quotaExceeded(d.limit, team, used, requested, d.max);
    }
  }
}
