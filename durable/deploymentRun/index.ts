import { DurableObject } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { appendAuditOnce, canonicalJson } from "../../db/auditChain.ts";
import { openDb } from "../../db/client.ts";
import { flowVersions, instances } from "../../db/schema.ts";
import type { Env } from "../../core/env.ts";
import { phaseObserved, recordMetrics } from "../../core/metrics/record.ts";
import { ShardedWatchers } from "../watcherShards.ts";
import { answerPing, closeBack } from "../watchers.ts";
import type { DeploymentInit, DeploymentRunApi, OperateAnswer, OperatorAction } from "../../core/objects.ts";
import type { DeploymentEvent, DeploymentView } from "../../protocol/deployments.ts";
import { view, writeRow } from "./projection.ts";
import { fromStorage, type RunState } from "./state.ts";
import { transition, type Effect, type RunEvent, type Transition } from "./transition.ts";

/**
 * How long one database transaction or ClusterLink call of an effect may take. Transitions run one at a time, so a
 * call that never answers held this object's queue, and with it every alarm, deadline and operator action, for good
 * (bench/fleet-rollout at load 25: a deployment stayed at AUDIT, POST /rollback did not answer). Past this the
 * effect fails like a refused one: the state is already stored, and the step's alarm tries it again.
 */
const CALL_MS = 30_000;

function within<T>(what: string, call: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CALL_MS / 1000} s`)), CALL_MS); });
  return Promise.race([call(), late]).finally(() => { if (timer !== null) clearTimeout(timer); });
}

/**
 * One object per deployment: runs the blue-green phase machine
 * (transition.ts over the step table in steps.ts). This class only holds
 * what needs a Durable Object: one event at a time (a serial queue), the
 * state in storage (written before any effect), the alarm, the effects on the
 * world (commands through the cluster's ClusterLink, Postgres, watchers), and
 * the /ws/deployments/:id watchers (Hibernation API). An evicted or restarted
 * object resumes from storage; nothing lives only in memory.
 */
export class DeploymentRun extends DurableObject<Env> implements DeploymentRunApi {
  private queue: Promise<unknown> = Promise.resolve();
  /** /ws/deployments/:id watchers: the streams' one fan-out (durable/watchers.ts), events in emit order. */
  private readonly watchers = new ShardedWatchers(this.ctx, this.env);
  /** Row writes in transition order (one chain), each in full, off the critical path. */
  private projection: Promise<void> = Promise.resolve();

  /** One transition at a time: results, alarms and operator actions never interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async load(): Promise<RunState | null> {
    const stored = await this.ctx.storage.get<RunState>("state");
    return stored ? fromStorage(stored) : null;
  }

  // ---- entry points ----

  /** Starts the deployment (idempotent: a second call returns the state). */
  async start(init: DeploymentInit): Promise<DeploymentView> {
    return this.serial(async () => view((await this.dispatch({ type: "start", init })).state!));
  }

  async state(): Promise<DeploymentView | null> {
    const s = await this.load();
    return s ? view(s) : null;
  }

  /** A bridge answered one of our commands (routed here by its `replyTo`). */
  async onCommandResult(commandId: string, ok: boolean, result: unknown): Promise<void> {
    await this.serial(() => this.dispatch({ type: "result", commandId, ok, result }));
  }

  /** promote / abort / rollback for the API: refusals come back as values (RPC does not carry error classes). */
  async operate(what: OperatorAction, userId: string | null): Promise<OperateAnswer> {
    return this.serial(async () => {
      const t = await this.dispatch({ type: what, by: userId });
      return t.refused ? { ok: false, ...t.refused } : { ok: true, view: view(t.state!) };
    });
  }

  override async alarm(): Promise<void> {
    await this.serial(async () => {
      const s = await this.load();
      if (!s) return;
      // Past a deadline: maybe the answer came while we were away (evicted, restarted); the cluster link keeps it.
      if (s.awaiting && Date.now() >= s.awaiting.deadline) {
        const awaiting = s.awaiting;
        const known = await within("the cluster link", async () => await this.link(s).result(awaiting.commandId));
        if (known && (known.status === "ok" || known.status === "error")) {
          await this.dispatch({ type: "result", commandId: s.awaiting.commandId, ok: known.status === "ok", result: known.resultJson === null ? null : JSON.parse(known.resultJson) });
          return;
        }
      }
      await this.dispatch({ type: "alarm" });
    });
  }

  // ---- WebSocket watchers (Hibernation API) ----

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const s = await this.load();
    if (!s) return new Response("no such deployment", { status: 404 });
    // A late subscriber first learns where things stand.
    // Read again when the socket counts: a join placed on a shard waits for the events before it.
    return this.watchers.accept(request, async () => ({ event: "deployment:state", data: view((await this.load()) ?? s) } satisfies DeploymentEvent));
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    answerPing(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    closeBack(ws, code);
  }

  // ---- the machine's effects ----

  /** Runs one event through the machine: the new state is stored first, then its effects happen in order. */
  private async dispatch(event: RunEvent): Promise<Transition> {
    const current = await this.load();
    const t = transition(current, event, Date.now());
    if (t.refused || !t.state) return t;
    if (t.state !== current) await this.ctx.storage.put("state", t.state);
    this.observePhases(current, t);
    const followUps: RunEvent[] = [];
    for (const effect of t.effects) {
      const then = await this.perform(effect, t.state);
      if (then) followUps.push(then);
    }
    let last = t;
    for (const then of followUps) last = await this.dispatch(then);
    return last;
  }

  private async perform(effect: Effect, s: RunState): Promise<RunEvent | undefined> {
    switch (effect.type) {
      case "send":
        await within("the cluster link", async () => await this.link(s).enqueue(effect.command, s.instanceId, effect.args, {
          id: effect.commandId, timeoutMs: effect.timeoutMs, replyTo: { kind: "deployment", id: s.id },
        }));
        return;
      case "setAlarm": return void (await this.ctx.storage.setAlarm(effect.at));
      case "clearAlarm": return void (await this.ctx.storage.deleteAlarm());
      case "emit": return this.emit(effect.event);
      case "project": {
        // While blue drains, every millisecond here is a millisecond work waits: the row is written in the background.
        const snapshot = structuredClone(s);
        this.projection = this.projection.then(() => this.withDb((db) => writeRow(db, snapshot)).catch(() => {
          // The row is a projection: the next transition writes it again in full.
        }));
        this.ctx.waitUntil(this.projection);
        if (effect.flush) await this.projection;
        return;
      }
      // Once per deployment and action: the alarm retries AUDIT when this object did not hear its commit
      // (it stopped, or the answer was lost), and the record may already be there.
      case "promote":
        await this.withDb((db) => db.transaction(async (tx) => {
          // Green serves now: the instance runs its flows on its stack (a rollback never gets here, so blue's stack stays).
          await tx.update(instances).set({
            flows: s.flows, updatedAt: new Date(),
            ...(s.toStack ? { stack: s.toStack } : {}), ...(s.greenNodeRed ? { nodeRedVersion: s.greenNodeRed } : {}),
          }).where(eq(instances.id, s.instanceId));
          await appendAuditOnce(tx, {
            userId: s.createdBy, action: "DEPLOYMENT_PROMOTED", resourceType: "deployment", resourceId: s.id,
            details: {
              instanceId: s.instanceId, fromVersionId: s.fromVersionId, toVersionId: s.toVersionId, blue: s.blue, green: s.green,
              fromStack: s.fromStack ?? null, toStack: s.toStack ?? null, toNodeRed: s.greenNodeRed ?? null, metrics: s.metrics,
            },
          });
        }));
        return { type: "promoted" };
      case "audit":
        await this.withDb((db) => db.transaction(async (tx) => {
          const first = await appendAuditOnce(tx, {
            userId: s.createdBy, action: effect.action, resourceType: "deployment", resourceId: s.id,
            details: { instanceId: s.instanceId, code: effect.reason?.code ?? null, reason: effect.reason?.message ?? null, metrics: s.metrics },
          });
          // Rolled back after AUDIT promoted green's flows (a rollback inside the window): blue serves again, so the
          // instance's record says blue's flows and stack again (a rollout's wave rollback reads it). Only when the record
          // still holds what this deployment promoted: flows edited meanwhile (PATCH) are not this rollback's to undo.
          if (first && effect.action === "DEPLOYMENT_ROLLED_BACK" && s.fromVersionId) {
            const [inst] = await tx.select({ flows: instances.flows }).from(instances).where(eq(instances.id, s.instanceId)).limit(1);
            const [from] = inst && canonicalJson(inst.flows) === canonicalJson(s.flows)
              ? await tx.select({ flows: flowVersions.flows }).from(flowVersions).where(eq(flowVersions.id, s.fromVersionId)).limit(1)
              : [];
            if (from) {
              await tx.update(instances).set({ flows: from.flows, updatedAt: new Date(), ...(s.fromStack ? { stack: s.fromStack } : {}) })
                .where(eq(instances.id, s.instanceId));
            }
          }
        }));
        return;
    }
  }

  /** Each phase this transition completed or failed, into redforge_deployment_phase_duration_seconds (its phaseMs grew by the time spent). */
  private observePhases(before: RunState | null, t: Transition): void {
    const adds = t.effects.flatMap((e) => {
      if (e.type !== "emit" || e.event.event !== "deployment:phase") return [];
      const { phase, status } = e.event.data;
      if (status !== "completed" && status !== "failed") return [];
      const ms = (t.state?.metrics.phaseMs[phase] ?? 0) - (before?.metrics.phaseMs[phase] ?? 0);
      return ms >= 0 ? phaseObserved(phase, status, ms / 1000) : [];
    });
    recordMetrics(this.env, this.ctx, adds);
  }

  private link(s: RunState) {
    return this.env.CLUSTER_LINK.get(this.env.CLUSTER_LINK.idFromName(s.clusterId));
  }

  private async withDb<T>(fn: (db: ReturnType<typeof openDb>["db"]) => Promise<T>): Promise<T> {
    const handle = openDb(this.env.DATABASE_URL!, this.env.NEON_LOCAL_PROXY);
    try {
      return await within("the database", () => fn(handle.db));
    } finally {
      // Closed in the background: a pool that does not end must not hold the queue either.
      this.ctx.waitUntil(handle.close().catch(() => {}));
    }
  }

  private emit(event: DeploymentEvent): undefined {
    // In order, each after the watchers' access is re-checked (a disabled or demoted watcher is closed instead).
    void this.watchers.publish(JSON.stringify(event)).catch(() => {});
    return undefined;
  }
}
