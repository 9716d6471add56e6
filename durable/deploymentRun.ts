import { DurableObject } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { appendAudit } from "../db/auditChain.ts";
import { openDb } from "../db/client.ts";
import { deployments, instances } from "../db/schema.ts";
import type { Env } from "../core/env.ts";
import type { DeploymentInit, DeploymentRunApi, HoldDuring, OperateAnswer, OperatorAction } from "../core/objects.ts";
import type { CommandType, SmokeChecks } from "../protocol/commands.ts";
import type { DeploymentEvent, DeploymentMetrics, DeploymentStatus, DeploymentView, Phase, PhaseRecord } from "../protocol/deployments.ts";

/**
 * One object per deployment: the blue-green phase machine. Each step is one
 * command to the cluster's bridge, keyed by (deployment, step, attempt) so a
 * resent step is deduplicated by the bridge. Every transition is written to
 * storage before it acts; an alarm carries deadlines and waits; a restarted
 * (evicted) object resumes from storage — nothing lives only in memory.
 */

type Step = "prepare" | "drain" | "deploy" | "verify" | "switch" | "analysis" | "audit" | "cleanup" | "rollback" | "done";

/**
 * Two orders of the same steps. `deploy` (the default, DESIGN §3 as written):
 * blue drains first and work is held through DEPLOY and VERIFY; green is
 * started inside DRAIN before blue's gate closes, so its boot is not held.
 * `switch`: green is started, deployed and verified while blue still serves,
 * and blue drains right before RESUME, so work is held only for the switch.
 */
const SEQUENCE: Record<HoldDuring, Step[]> = {
  deploy: ["prepare", "drain", "deploy", "verify", "switch", "analysis", "audit", "cleanup"],
  switch: ["prepare", "deploy", "verify", "drain", "switch", "analysis", "audit", "cleanup"],
};
const PHASES_OF: Record<HoldDuring, Record<Step, Phase | null>> = {
  deploy: {
    prepare: "DRAIN", drain: "DRAIN", deploy: "DEPLOY", verify: "VERIFY", switch: "RESUME", analysis: "RESUME",
    audit: "AUDIT", cleanup: "CLEANUP", rollback: "ROLLING_BACK", done: null,
  },
  switch: {
    prepare: "DEPLOY", deploy: "DEPLOY", verify: "VERIFY", drain: "DRAIN", switch: "RESUME", analysis: "RESUME",
    audit: "AUDIT", cleanup: "CLEANUP", rollback: "ROLLING_BACK", done: null,
  },
};
const phaseOf = (s: { holdDuring?: HoldDuring }, step: Step) => PHASES_OF[s.holdDuring ?? "deploy"][step];
const nextStep = (s: { holdDuring?: HoldDuring; step: Step }): Step => {
  const seq = SEQUENCE[s.holdDuring ?? "deploy"];
  return seq[seq.indexOf(s.step) + 1] ?? "done";
};
/** Share of the deployment done when a step starts: its place in the sequence. */
function progressOf(s: { holdDuring?: HoldDuring; step: Step }): number {
  if (s.step === "done") return 1;
  const seq = SEQUENCE[s.holdDuring ?? "deploy"];
  const i = seq.indexOf(s.step);
  return i < 0 ? 0.5 : Math.round((i / seq.length) * 100) / 100;
}
/** How long the bridge has for each step before the deployment rolls back. */
const STEP_DEADLINE_MS: Partial<Record<Step, number>> = {
  prepare: 180_000, deploy: 90_000, verify: 90_000, switch: 90_000, analysis: 60_000, cleanup: 60_000, rollback: 180_000,
};

interface RunState extends DeploymentInit {
  status: DeploymentStatus;
  step: Step;
  attempt: number;
  awaiting: { commandId: string; deadline: number } | null;
  waitUntil: number | null;
  blue?: string;
  green?: string;
  expectRev?: string;
  switched: boolean;
  holdStartedAt?: number;
  phaseStartedAt: number;
  history: PhaseRecord[];
  metrics: DeploymentMetrics;
  error: string | null;
  completedAt: string | null;
}

export class DeploymentRunError extends Error {
  constructor(readonly status: 404 | 409, readonly code: string, message: string) {
    super(message);
  }
}

type Outcome = { ok: boolean; result: Record<string, unknown> };

export class DeploymentRun extends DurableObject<Env> implements DeploymentRunApi {
  private queue: Promise<unknown> = Promise.resolve();

  /** One transition at a time: results, alarms and operator actions never interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async load(): Promise<RunState | undefined> {
    return this.ctx.storage.get<RunState>("state");
  }

  private async save(s: RunState): Promise<void> {
    await this.ctx.storage.put("state", s);
  }

  // ---- entry points ----

  /** Starts the deployment (idempotent: a second call returns the state). */
  async start(init: DeploymentInit): Promise<DeploymentView> {
    return this.serial(async () => {
      const existing = await this.load();
      if (existing) return view(existing);
      const now = Date.now();
      const s: RunState = {
        ...init, status: "in_progress", step: "prepare", attempt: 0, awaiting: null, waitUntil: null, switched: false,
        phaseStartedAt: now, history: [{ phase: phaseOf(init, "prepare")!, status: "started", at: new Date(now).toISOString() }],
        metrics: { messagesHeld: 0, messagesReplayed: 0, messagesLost: 0, inFlightAtDrain: 0, stragglers: 0, phaseMs: {} },
        error: null, completedAt: null,
      };
      await this.save(s);
      this.emit({ event: "deployment:phase", data: phaseEvent(s, phaseOf(s, "prepare")!, "started") });
      await this.act(s);
      return view(s);
    });
  }

  async state(): Promise<DeploymentView | null> {
    const s = await this.load();
    return s ? view(s) : null;
  }

  /** A bridge answered one of our commands (routed here by the webhook handler). */
  async onCommandResult(commandId: string, ok: boolean, result: unknown): Promise<void> {
    await this.serial(async () => {
      const s = await this.load();
      if (!s || !s.awaiting || s.awaiting.commandId !== commandId) return; // stale or duplicate answer
      s.awaiting = null;
      await this.handle(s, { ok, result: (result ?? {}) as Record<string, unknown> });
    });
  }

  /** promote / abort / rollback for the API: refusals come back as values (RPC does not carry error classes). */
  async operate(what: "promote" | "abort" | "rollback", userId: string | null): Promise<
    { ok: true; view: DeploymentView } | { ok: false; status: 404 | 409; code: string; message: string }> {
    try {
      const by = userId ? ` (user ${userId})` : "";
      const v = what === "promote" ? await this.promote() : what === "abort" ? await this.abort(`aborted by an operator${by}`) : await this.rollback(`rolled back by an operator${by}`);
      return { ok: true, view: v };
    } catch (err) {
      if (err instanceof DeploymentRunError) return { ok: false, status: err.status, code: err.code, message: err.message };
      throw err;
    }
  }

  async promote(): Promise<DeploymentView> {
    return this.serial(async () => {
      const s = await this.mustLoad();
      if (s.status !== "paused") throw new DeploymentRunError(409, "not_paused", `deployment is ${s.status} at ${s.step}; only a paused deployment can be promoted`);
      s.status = "in_progress";
      this.record(s, "VERIFY", "completed", "promoted by an operator");
      await this.goto(s, nextStep(s));
      return view(s);
    });
  }

  async abort(reason = "aborted by an operator"): Promise<DeploymentView> {
    return this.serial(async () => {
      const s = await this.mustLoad();
      if (s.status !== "paused") throw new DeploymentRunError(409, "not_paused", `deployment is ${s.status} at ${s.step}; only a paused deployment can be aborted (use rollback after the switch)`);
      s.status = "in_progress";
      await this.rollBack(s, reason);
      return view(s);
    });
  }

  /** Manual rollback: any time before blue is cleaned up, except while a step is in the bridge's hands. */
  async rollback(reason = "rolled back by an operator"): Promise<DeploymentView> {
    return this.serial(async () => {
      const s = await this.mustLoad();
      if (!["in_progress", "paused"].includes(s.status) || s.step === "rollback" || s.step === "done") {
        throw new DeploymentRunError(409, "not_rollbackable", `deployment is ${s.status}${s.step === "rollback" ? " and already rolling back" : ""}; blue is gone after the rollback window`);
      }
      if (s.awaiting && s.step !== "analysis") {
        throw new DeploymentRunError(409, "step_in_progress", `the ${s.step} step is running on the bridge; retry in a moment`);
      }
      s.status = "in_progress";
      s.awaiting = null;
      await this.rollBack(s, reason);
      return view(s);
    });
  }

  override async alarm(): Promise<void> {
    await this.serial(async () => {
      const s = await this.load();
      if (!s || s.step === "done") return;
      if (s.awaiting) {
        if (Date.now() < s.awaiting.deadline) return void (await this.ctx.storage.setAlarm(s.awaiting.deadline));
        // Maybe the answer came while we were away (evicted, restarted): the cluster link keeps it.
        const link = this.env.CLUSTER_LINK.get(this.env.CLUSTER_LINK.idFromName(s.clusterId));
        const known = (await link.result(s.awaiting.commandId)) as { status: string; result: unknown } | null;
        if (known && (known.status === "ok" || known.status === "error")) {
          s.awaiting = null;
          return this.handle(s, { ok: known.status === "ok", result: (known.result ?? {}) as Record<string, unknown> });
        }
        s.awaiting = null;
        if (s.step === "rollback") return this.finish(s, "failed", `rollback did not complete within ${STEP_DEADLINE_MS.rollback! / 1000} s; check the bridge of cluster ${s.clusterId}`);
        return this.rollBack(s, `the bridge did not finish ${s.step} within ${(STEP_DEADLINE_MS[s.step] ?? 60_000) / 1000} s`);
      }
      await this.act(s);
    });
  }

  // ---- WebSocket watchers (Hibernation API) ----

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const s = await this.load();
    if (!s) return new Response("no such deployment", { status: 404 });
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], ["watcher"]);
    // A late subscriber first learns where things stand.
    pair[1].send(JSON.stringify({ event: "deployment:state", data: view(s) } satisfies DeploymentEvent));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (message === "ping") ws.send("pong");
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try { ws.close(code === 1005 ? 1000 : code, "closing"); } catch { /* already closed */ }
  }

  // ---- the machine ----

  private async mustLoad(): Promise<RunState> {
    const s = await this.load();
    if (!s) throw new DeploymentRunError(404, "not_found", "deployment not found");
    return s;
  }

  /** Does what the current step needs: send its command, wait, or do local work. */
  private async act(s: RunState): Promise<void> {
    if (s.status !== "in_progress" || s.awaiting || s.step === "done") return;
    if (s.waitUntil && Date.now() < s.waitUntil) {
      await this.save(s);
      await this.ctx.storage.setAlarm(s.waitUntil);
      return;
    }
    s.waitUntil = null;
    if (s.step === "audit") return this.audit(s);
    const [type, args] = this.commandFor(s);
    const commandId = `d_${s.id}_${s.step}_${s.attempt}`;
    const deadline = Date.now() + (s.step === "drain" ? s.drainTimeoutMs + 30_000 : STEP_DEADLINE_MS[s.step] ?? 60_000);
    // Written before it is sent: a restarted object knows what it is waiting for.
    s.awaiting = { commandId, deadline };
    await this.save(s);
    await this.ctx.storage.setAlarm(deadline);
    const link = this.env.CLUSTER_LINK.get(this.env.CLUSTER_LINK.idFromName(s.clusterId));
    await link.enqueue(type, s.instanceId, { ...args, deploymentId: s.id }, { id: commandId, timeoutMs: deadline - Date.now() });
  }

  private commandFor(s: RunState): [CommandType, Record<string, unknown>] {
    switch (s.step) {
      case "prepare": return ["deployment.prepare", {}];
      case "drain": return ["gate.set", { mode: "drain", runtime: s.blue, drainTimeoutMs: s.drainTimeoutMs }];
      case "deploy": return ["flows.deploy", { flows: s.flows, runtime: s.green }];
      case "verify": return ["smoke.run", { runtime: s.green, kind: "verify", checks: s.verify, ...(s.expectRev ? { expectRev: s.expectRev } : {}) }];
      case "switch": return ["route.switch", { from: s.blue, to: s.green }];
      case "analysis": return ["smoke.run", { runtime: s.green, kind: "analysis", maxErrorRate: s.maxErrorRate }];
      case "cleanup": return ["deployment.cleanup", { runtime: s.blue }];
      case "rollback": return ["deployment.rollback", { blue: s.blue ?? s.instanceId, ...(s.green ? { green: s.green } : {}), switched: s.switched }];
      default: throw new Error(`no command for step ${s.step}`);
    }
  }

  /** What a step's answer means for the deployment. */
  private async handle(s: RunState, { ok, result }: Outcome): Promise<void> {
    const failure = () => {
      const e = result as { code?: string; message?: string };
      return `${s.step} failed: ${e.message ?? "no reason given"}${e.code ? ` (${e.code})` : ""}`;
    };
    if (s.step === "rollback") {
      if (!ok) return this.finish(s, "failed", `rollback failed: ${(result as { message?: string }).message ?? "no reason given"}; ${s.error ?? ""}`.trim());
      s.metrics.messagesReplayed += Number(result.replayed ?? 0);
      this.record(s, "ROLLING_BACK", "completed", `blue serves again; ${Number(result.replayed ?? 0)} held message(s) replayed to blue`);
      return this.finish(s, "rolled_back", s.error);
    }
    // A driver without blue-green (kubernetes today) never touched blue: nothing to roll back.
    if (!ok && s.step === "prepare" && (result as { code?: string }).code === "not_implemented") return this.finish(s, "failed", failure());
    if (!ok) return this.rollBack(s, failure());
    switch (s.step) {
      case "prepare":
        s.blue = String(result.blue);
        s.green = String(result.green);
        return this.goto(s, nextStep(s));
      case "drain":
        s.holdStartedAt = Date.now();
        s.metrics.inFlightAtDrain = Number(result.inFlight ?? 0);
        s.metrics.stragglers = Number(result.stragglers ?? 0);
        s.metrics.drainMs = Number(result.drainedInMs ?? 0);
        s.metrics.messagesHeld = Number(result.heldHttp ?? 0) + Number(result.heldMqtt ?? 0);
        if (typeof result.holdingSince === "string") s.metrics.holdingSince = result.holdingSince;
        this.emit({ event: "deployment:progress", data: progressEvent(s, Number(result.inFlight ?? 0)) });
        return this.goto(s, nextStep(s));
      case "deploy":
        s.expectRev = typeof result.rev === "string" ? result.rev : undefined;
        return this.goto(s, nextStep(s));
      case "verify": {
        s.metrics.smoke = result;
        if (result.verdict === "passed") return this.goto(s, nextStep(s));
        if (result.verdict === "failed") return this.rollBack(s, `smoke tests failed: ${describeChecks(result)}`);
        s.status = "paused";
        this.record(s, "VERIFY", "paused", `inconclusive: ${describeChecks(result)}; POST /promote or /abort`);
        await this.persist(s);
        return;
      }
      case "switch":
        s.switched = true;
        s.metrics.messagesReplayed = Number(result.replayed ?? 0) + Number(result.bufferedDuringSwitch ?? 0);
        s.metrics.messagesHeld = Math.max(s.metrics.messagesHeld, Number(result.replayed ?? 0) + Number(result.httpReleased ?? 0));
        if (typeof result.switchedAt === "string") s.metrics.switchedAt = result.switchedAt;
        // As the bridge saw it (front hold → switch), else as this object saw it.
        s.metrics.holdMs = s.metrics.holdingSince && s.metrics.switchedAt
          ? Date.parse(s.metrics.switchedAt) - Date.parse(s.metrics.holdingSince)
          : s.holdStartedAt ? Date.now() - s.holdStartedAt : undefined;
        this.emit({ event: "deployment:progress", data: progressEvent(s, 0) });
        s.waitUntil = Date.now() + s.analysisMs;
        return this.goto(s, "analysis");
      case "analysis":
        s.metrics.analysis = result;
        if (result.verdict === "failed") return this.rollBack(s, `post-switch analysis failed: error rate ${Number(result.errorRate ?? 0).toFixed(3)} above ${s.maxErrorRate}`);
        return this.goto(s, "audit");
      case "cleanup":
        this.record(s, "CLEANUP", "completed", `blue ${s.blue} stopped after the rollback window`);
        return this.finish(s, "completed", null);
      default:
        return;
    }
  }

  /** AUDIT: the record of what happened, in the tamper-evident log, and the instance's flows. */
  private async audit(s: RunState): Promise<void> {
    s.metrics.totalMs = Date.now() - Date.parse(s.createdAt);
    await this.withDb(async (db) => {
      await db.transaction(async (tx) => {
        await tx.update(instances).set({ flows: s.flows, updatedAt: new Date() }).where(eq(instances.id, s.instanceId));
        await appendAudit(tx, [{
          userId: s.createdBy, action: "DEPLOYMENT_PROMOTED", resourceType: "deployment", resourceId: s.id,
          details: { instanceId: s.instanceId, fromVersionId: s.fromVersionId, toVersionId: s.toVersionId, blue: s.blue, green: s.green, metrics: s.metrics },
        }]);
      });
    });
    s.waitUntil = Date.now() + s.rollbackWindowMs;
    await this.goto(s, "cleanup");
  }

  private async goto(s: RunState, step: Step): Promise<void> {
    const from = phaseOf(s, s.step);
    const to = phaseOf(s, step);
    if (from && to !== from) this.record(s, from, "completed");
    s.step = step;
    s.attempt = 0;
    if (to && to !== from) this.record(s, to, "started");
    await this.persist(s);
    await this.act(s);
  }

  private async rollBack(s: RunState, reason: string): Promise<void> {
    s.error = reason;
    const from = phaseOf(s, s.step);
    if (from && from !== "ROLLING_BACK") this.record(s, from, "failed", reason);
    s.step = "rollback";
    s.attempt = 0;
    s.waitUntil = null;
    this.record(s, "ROLLING_BACK", "started", reason);
    await this.persist(s);
    await this.act(s);
  }

  private async finish(s: RunState, status: DeploymentStatus, error: string | null): Promise<void> {
    s.status = status;
    s.error = error;
    s.step = "done";
    s.awaiting = null;
    s.waitUntil = null;
    s.completedAt = new Date().toISOString();
    s.metrics.totalMs = Date.now() - Date.parse(s.createdAt);
    await this.persist(s);
    // The row says it is over before anyone hears it is: the next deployment of this instance checks the row.
    await this.projection;
    if (status !== "completed") {
      await this.withDb((db) => db.transaction((tx) => appendAudit(tx, [{
        userId: s.createdBy, action: status === "rolled_back" ? "DEPLOYMENT_ROLLED_BACK" : "DEPLOYMENT_FAILED",
        resourceType: "deployment", resourceId: s.id, details: { instanceId: s.instanceId, reason: error, metrics: s.metrics },
      }])));
    }
    await this.ctx.storage.deleteAlarm();
  }

  private record(s: RunState, phase: Phase, status: PhaseRecord["status"], detail?: string): void {
    const now = Date.now();
    s.history.push({ phase, status, at: new Date(now).toISOString(), ...(detail ? { detail } : {}) });
    if (status === "started") s.phaseStartedAt = now;
    else s.metrics.phaseMs[phase] = (s.metrics.phaseMs[phase] ?? 0) + (now - s.phaseStartedAt);
    this.emit({ event: "deployment:phase", data: phaseEvent(s, phase, status, detail) });
  }

  /**
   * Storage first (the source of truth), then the watchers; the deployments
   * row is a projection written in the background, off the critical path
   * (while blue drains, every millisecond here is a millisecond work waits).
   */
  private async persist(s: RunState): Promise<void> {
    await this.save(s);
    this.emit({ event: "deployment:progress", data: progressEvent(s, s.metrics.inFlightAtDrain && !s.holdStartedAt ? s.metrics.inFlightAtDrain : 0) });
    const snapshot = structuredClone(s);
    this.projection = this.projection.then(() => this.project(snapshot));
    this.ctx.waitUntil(this.projection);
  }

  /** Rows are written in transition order (one chain), each in full, so a failed write is repaired by the next. */
  private projection: Promise<void> = Promise.resolve();

  private async project(s: RunState): Promise<void> {
    await this.withDb((db) => db.update(deployments).set({
      status: s.status, currentPhase: phaseOf(s, s.step) ?? (s.status === "completed" ? "CLEANUP" : "ROLLING_BACK"),
      metrics: { ...s.metrics, history: s.history, blue: s.blue, green: s.green, switched: s.switched, progress: progressOf(s) },
      error: s.error, ...(s.completedAt ? { completedAt: new Date(s.completedAt) } : {}),
    }).where(eq(deployments.id, s.id))).catch(() => {
      // The row is a projection: the next transition writes it again in full.
    });
  }

  private async withDb<T>(fn: (db: ReturnType<typeof openDb>["db"]) => Promise<T>): Promise<T> {
    const handle = openDb(this.env.DATABASE_URL!, this.env.NEON_LOCAL_PROXY);
    try {
      return await fn(handle.db);
    } finally {
      await handle.close();
    }
  }

  private emit(event: DeploymentEvent): void {
    const text = JSON.stringify(event);
    for (const ws of this.ctx.getWebSockets("watcher")) {
      try { ws.send(text); } catch { /* closing */ }
    }
  }
}

function view(s: RunState): DeploymentView {
  return {
    id: s.id, instanceId: s.instanceId, strategy: s.strategy, status: s.status, phase: phaseOf(s, s.step),
    progress: progressOf(s), ...(s.blue ? { blue: s.blue } : {}), ...(s.green ? { green: s.green } : {}),
    switched: s.switched, history: s.history, metrics: s.metrics, error: s.error,
    fromVersionId: s.fromVersionId, toVersionId: s.toVersionId, createdAt: s.createdAt, completedAt: s.completedAt,
  };
}

function phaseEvent(s: RunState, phase: Phase, status: PhaseRecord["status"], detail?: string): Extract<DeploymentEvent, { event: "deployment:phase" }>["data"] {
  return { deploymentId: s.id, phase, status, deploymentStatus: s.status, ...(detail ? { detail } : {}), timestamp: new Date().toISOString() };
}

function progressEvent(s: RunState, inFlight: number): Extract<DeploymentEvent, { event: "deployment:progress" }>["data"] {
  return { deploymentId: s.id, messagesHeld: s.metrics.messagesHeld, inFlightCount: inFlight, progress: progressOf(s), timestamp: new Date().toISOString() };
}

function describeChecks(result: Record<string, unknown>): string {
  const checks = Array.isArray(result.checks) ? (result.checks as Array<{ name: string; outcome: string; detail: string }>) : [];
  const bad = checks.filter((c) => c.outcome !== "passed");
  return bad.length ? bad.map((c) => `${c.name} ${c.outcome} (${c.detail})`).join("; ") : String(result.verdict ?? "no verdict");
}
