/**
 * What a bridge report changes: a command's result settles its instance's
 * status (once, even if the answer is delivered twice), a status report
 * updates it, and a health report is stored as history and moves the status
 * when the instance is seen up or down.
 */
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { clusters, instanceHealth, instances } from "../../db/schema.ts";
import type { Env } from "../env.ts";
import { parseResult } from "../../protocol/commands.ts";
import { LEGACY_STACK } from "../../protocol/stacks.ts";
import type { Report } from "../../protocol/reports.ts";
import type { OutboxEntry } from "../objects.ts";
import { applyInstanceStatus, type ObservedStatus } from "./instanceStatus.ts";

type ResultReport = Extract<Report, { type: "command.result" }>;
type HealthReport = Extract<Report, { type: "health.report" }>;

/** What an answer says about its instance; results are parsed with their command's schema first. */
function statusAfter(command: OutboxEntry, report: ResultReport): { status?: ObservedStatus; endpoints?: Record<string, string> } {
  if (report.status === "error") return command.type.startsWith("instance.") ? { status: "failed" } : {};
  switch (command.type) {
    case "instance.create": {
      const r = parseResult("instance.create", report.result);
      return r.success ? { status: r.data.state, endpoints: r.data.endpoints } : { status: "running" };
    }
    case "instance.start": case "instance.restart": return { status: "running" };
    case "instance.stop": return { status: "stopped" };
    case "instance.destroy": return { status: "destroyed" };
    case "instance.scale": {
      // The bridge answers with the replicas it set; an answer without them says nothing new.
      const r = parseResult("instance.scale", report.result);
      return r.success ? { status: r.data.state } : {};
    }
    default: return {};
  }
}

export async function applyCommandResult(db: Db, env: Env, clusterId: string, report: ResultReport): Promise<{ known: boolean }> {
  const link = env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(clusterId));
  const { command, first } = await link.complete(report.commandId, report.status === "ok", report.result ?? report.error ?? null);
  if (!command) return { known: false };
  // An owned answer goes to its owner (idempotent there, so duplicates are harmless).
  if (command.replyTo?.kind === "deployment") {
    const run = env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(command.replyTo.id));
    await run.onCommandResult(command.id, report.status === "ok", report.status === "ok" ? report.result ?? {} : report.error ?? {});
    return { known: true };
  }
  if (!first || !command.instanceId) return { known: true };
  const { status, endpoints } = statusAfter(command, report);
  if (command.type === "instance.create" && report.status === "ok") await recordResolvedStack(db, clusterId, command.instanceId, report.result);
  if (status) {
    await applyInstanceStatus(db, env, {
      clusterId, instanceId: command.instanceId, status,
      reason: report.status === "error" ? `${command.type} failed: ${report.error?.message ?? "no reason given"}` : null,
      ...(endpoints ? { endpoints } : {}),
    });
  }
  return { known: true };
}

/**
 * What the bridge started: the stack and its exact release. A bridge from before stacks does
 * not say; it ignored the spec's stack and ran what every bridge ran then, 4.1, so the row says
 * that rather than a stack the instance does not run.
 */
async function recordResolvedStack(db: Db, clusterId: string, instanceId: string, result: unknown): Promise<void> {
  const r = parseResult("instance.create", result);
  if (!r.success) return;
  const resolved = r.data.stack ? { stack: r.data.stack.id, nodeRedVersion: r.data.stack.nodeRed } : { stack: LEGACY_STACK, nodeRedVersion: null };
  await db.update(instances).set(resolved).where(and(eq(instances.id, instanceId), eq(instances.clusterId, clusterId)));
}

export async function applyHealthReport(db: Db, env: Env, clusterId: string, report: HealthReport): Promise<number> {
  if (report.instances.length === 0) return 0;
  const ids = [...new Set(report.instances.map((h) => h.instanceId))];
  // Only this cluster's instances: a bridge cannot write another cluster's history.
  const owned = await db.select({ id: instances.id, status: instances.status, reason: instances.statusReason })
    .from(instances).where(and(eq(instances.clusterId, clusterId), inArray(instances.id, ids)));
  const byId = new Map(owned.map((o) => [o.id, o]));
  const rows = report.instances.filter((h) => byId.has(h.instanceId));
  if (rows.length === 0) return 0;
  await db.insert(instanceHealth).values(rows.map((h) => ({
    instanceId: h.instanceId, checkedAt: new Date(h.checkedAt), state: h.state, live: h.live, ready: h.ready,
    rssBytes: h.rssBytes ?? null, heapUsedBytes: h.heapUsedBytes ?? null, flowsState: h.flowsState ?? null,
    cpuSeconds: h.cpuSeconds ?? null, messagesIn: h.messages?.in ?? null, messagesOut: h.messages?.out ?? null,
    messageErrors: h.messages?.errors ?? null, flowMessages: h.flows ?? null,
    missingNodeTypes: h.missingNodeTypes, error: h.error ?? null,
  })));
  for (const h of rows) {
    const current = byId.get(h.instanceId)!;
    const reason = h.error ?? (h.missingNodeTypes.length ? `missing node types: ${h.missingNodeTypes.join(", ")}` : null);
    if (current.status !== h.state || (current.reason ?? null) !== reason) {
      await applyInstanceStatus(db, env, { clusterId, instanceId: h.instanceId, status: h.state, reason });
    }
  }
  await db.update(clusters).set({ lastSeenAt: new Date() }).where(eq(clusters.id, clusterId));
  return rows.length;
}
