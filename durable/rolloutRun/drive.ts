/**
 * One tick of a rollout, the whole machine in one place. The RolloutRun calls
 * it on every alarm and after every operator action; it reads what the
 * deployments did, then moves the rollout on:
 *
 *   status          what a tick does
 *   running         observe in-flight deployments; start the current wave's pending instances up to `parallelism`;
 *                   a wave over its failure budget starts nothing more and, once settled, stops the rollout
 *                   (`rolling_back` with onFailure "rollback_wave", else `failed`); a settled wave within budget
 *                   completes → timed pause (`nextWaveAt`) | `awaiting_approval` | next wave | late joiners | `completed`
 *   paused          observe only (what runs finishes; nothing new starts)
 *   awaiting_approval  observe only, until POST /approve
 *   rolling_back    roll the stopped wave's switched instances back (their deployment's rollback while its window is
 *                   open, else a deployment of the version they ran before); once all settled → `failed`
 *   completed/failed/aborted  observe what still runs, so its outcome is recorded
 *
 * Every effect on the world goes through `RolloutIo`, so the machine is tested
 * with a scripted world and runs in the object against the real one.
 */
import type { CreateDeployment, DeploymentView } from "../../protocol/deployments.ts";
import type { RolloutEvent, RolloutStatus, WaveStatus } from "../../protocol/api/rollouts.ts";
import { budgetExceeded } from "../../core/rollouts/plan.ts";
import { instanceView, TERMINAL, UNSETTLED, view, type InstanceRun, type RunState, type WaveRun } from "./state.ts";

export type StartAnswer =
  | { ok: true; view: DeploymentView }
  /** `transient`: not a refusal (the database or an object was unreachable): tried again next tick. */
  | { ok: false; code: string; message: string; transient: boolean; unanswered?: boolean };

export interface RolloutIo {
  now(): number;
  /** null: no such deployment; "unanswered": its object did not answer in time (looked at again next tick). */
  deploymentState(id: string): Promise<DeploymentView | null | "unanswered">;
  startDeployment(body: CreateDeployment): Promise<StartAnswer>;
  /** The deployment's own rollback (blue is still warm inside its rollback window). */
  rollbackDeployment(id: string): Promise<{ ok: true } | { ok: false; code: string; message: string }>;
  /** The newest deployment of `instanceId` created at or after `since` (a start whose answer a restart lost). */
  deploymentSince(instanceId: string, since: number): Promise<string | null>;
  /**
   * Live instances the selector picks now that are not in `known`, sorted as the selection was: `free` ones, and
   * those another active rollout has in its waves (`claimed`: instance → that rollout), which stay with it.
   */
  lateJoiners(known: ReadonlySet<string>): Promise<{ free: string[]; claimed: ReadonlyMap<string, string> }>;
  /**
   * Which of these instances were destroyed (DELETE /api/instances/:id) meanwhile. May answer an empty set when it
   * looked only a moment ago or could not look: it is a cheap, periodic question, not a guarantee.
   */
  destroyedAmong(instanceIds: readonly string[]): Promise<ReadonlySet<string>>;
  /** Store the state now (these waves and the meta): called before deployments start. */
  checkpoint(waves: ReadonlySet<number>): Promise<void>;
}

/** What a tick changed, for the object to store, project, audit and tell watchers. */
export interface TickResult {
  dirtyWaves: Set<number>;
  metaChanged: boolean;
  events: RolloutEvent[];
  /** The rollout reached a terminal status in this tick (audit: ROLLOUT_COMPLETED / ROLLOUT_FAILED). */
  finished: RolloutStatus | null;
  /** When the object should look again; null: nothing to wait for. */
  wakeAt: number | null;
}

/** The longest reason an instance keeps (an error message can be anything). */
const MAX_REASON = 500;
/** How often in-flight deployments are looked at: each look is one RPC per deployment. */
export const POLL_MS = 1000;
/**
 * Start attempts that failed for a passing reason (the database or an object busy: a loaded control plane, not the
 * instance) before the instance counts as failed; between them the wait doubles from START_RETRY_MS (1+2+…+32 s).
 */
const MAX_START_ATTEMPTS = 7;
const START_RETRY_MS = 1000;
/**
 * Starts run at most this many at once inside a tick, whatever the parallelism: each is a transaction on the tick's
 * pool (4 connections, 5 s to get one), and 40 at once at load 18 timed out connecting and failed 17 instances
 * (bench/fleet-rollout at parallelism 100). The others wait their turn in the same tick.
 */
const START_CONCURRENCY = 4;
/**
 * Starts per tick. Ticks run one at a time, so a tick that started a whole wave's worth (parallelism 100: 25 rounds
 * of 4 starts, over a minute on a loaded machine) observed nothing meanwhile: the deployments it started first had
 * finished long before their slots were given again, and a 1,000-instance rollout moved in bursts of 100 every
 * 2–3 minutes. A few starts, then the next tick at once (observe, refill the freed slots), keeps the slots full.
 */
export const STARTS_PER_TICK = 2 * START_CONCURRENCY;
/** Refusals that mean the instance is no longer there to change: skipped, not failed. */
const GONE_CODES = new Set(["instance_not_found"]);
/** Codes an instance keeps when its wave rollback could not restore it; the rollout then ends `rollback_incomplete`. */
export const ROLLBACK_GAVE_UP = new Set(["rollback_failed", "rollback_timeout"]);
/** Beyond a deployment's own deadlines: ticks, a loaded machine's RPCs and the projection (what a rollback may take more). */
const ROLLBACK_MARGIN_MS = 30_000;
/** The deployment step table's rollback deadline (durable/deploymentRun/steps.ts), for a deployment whose view is not known. */
const DEFAULT_ROLLBACK_STEP_MS = 180_000;

export class Tick {
  readonly result: TickResult = { dirtyWaves: new Set(), metaChanged: false, events: [], finished: null, wakeAt: null };
  private readonly at: number;
  private moreToStart = false;

  constructor(readonly s: RunState, private readonly io: RolloutIo, private readonly flows: unknown[]) {
    this.at = io.now();
  }

  async run(): Promise<TickResult> {
    await this.observe();
    const m = this.s.meta;
    if (m.status === "running") await this.advance();
    if (m.status === "rolling_back") await this.rollBack();
    this.schedule();
    return this.result;
  }

  // ---- bookkeeping ----

  private touch(): void {
    this.s.meta.updatedAt = new Date(this.at).toISOString();
    this.result.metaChanged = true;
  }

  private setInstance(w: WaveRun, i: InstanceRun, patch: Partial<InstanceRun>): void {
    Object.assign(i, patch);
    // Bounded, so INSTANCES_PER_KEY instances always fit one storage value (durable/rolloutRun/index.ts).
    if (i.reason !== undefined && i.reason.length > MAX_REASON) i.reason = `${i.reason.slice(0, MAX_REASON - 1)}…`;
    this.result.dirtyWaves.add(w.index);
    this.touch();
    this.result.events.push({ event: "rollout:instance", data: { ...instanceView(i), rolloutId: this.s.meta.id, wave: w.index, timestamp: this.s.meta.updatedAt } });
  }

  private setWave(w: WaveRun, status: WaveStatus): void {
    w.status = status;
    if (status === "running" && w.startedAt === null) w.startedAt = this.at;
    if (["completed", "failed", "rolled_back", "aborted"].includes(status)) w.completedAt = this.at;
    this.result.dirtyWaves.add(w.index);
    this.touch();
    this.result.events.push({ event: "rollout:wave", data: { rolloutId: this.s.meta.id, index: w.index, status, rolloutStatus: this.s.meta.status, timestamp: this.s.meta.updatedAt } });
  }

  setStatus(status: RolloutStatus, failure?: { code: string; message: string }): void {
    const m = this.s.meta;
    m.status = status;
    if (failure) m.failure = failure;
    this.touch();
    if (TERMINAL.includes(status)) {
      m.completedAt = m.updatedAt;
      m.nextWaveAt = null;
      this.result.finished = status;
    }
    this.result.events.push({ event: "rollout:state", data: view(this.s) });
  }

  /** An abort cuts the running wave short (what runs in it finishes and is still recorded). */
  abortWave(w: WaveRun): void {
    this.setWave(w, "aborted");
  }

  /** Every instance not started yet becomes skipped (the rollout stopped or was aborted). */
  skipRemaining(reason: string): void {
    for (const w of this.s.waves) {
      for (const i of w.instances) if (i.status === "pending") this.setInstance(w, i, { status: "skipped", reason });
      if (w.status === "pending") this.setWave(w, "aborted");
    }
  }

  // ---- observing deployments ----

  private async observe(): Promise<void> {
    await this.letGoDestroyed();
    const looks: Promise<void>[] = [];
    for (const w of this.s.waves) {
      for (const i of w.instances) {
        if (i.status === "deploying") looks.push(this.observeDeployment(w, i));
        else if (i.rollback) looks.push(this.observeRollback(w, i));
      }
    }
    await Promise.all(looks);
  }

  /**
   * An instance destroyed while its deployment (or its wave rollback) runs is let go at once: `skipped` with code
   * `instance_destroyed`, like one destroyed before its turn, not counted against the budget. Its deployment ends on
   * its own (its commands fail or time out once the runtime is gone), which could otherwise hold the wave for minutes.
   */
  private async letGoDestroyed(): Promise<void> {
    const watched = this.s.waves.flatMap((w) => w.instances.filter((i) => i.status === "deploying" || i.rollback).map((i) => ({ w, i })));
    if (watched.length === 0) return;
    const gone = await this.io.destroyedAmong(watched.map((x) => x.i.instanceId));
    for (const { w, i } of watched) {
      if (!gone.has(i.instanceId)) continue;
      const what = i.rollback ? "its wave rollback" : `its deployment${i.deploymentId ? ` ${i.deploymentId}` : ""}`;
      this.setInstance(w, i, { status: "skipped", rollback: undefined, code: "instance_destroyed", reason: `the instance was destroyed during ${what}; the rollout let it go` });
    }
  }

  private async observeDeployment(w: WaveRun, i: InstanceRun): Promise<void> {
    if (i.deploymentId === null) {
      // Stored as starting, but the start's answer never was: a restart in between. Adopt what it created, or start again.
      const found = await this.io.deploymentSince(i.instanceId, i.startedAt ?? 0);
      if (found) this.setInstance(w, i, { deploymentId: found });
      else this.setInstance(w, i, { status: "pending" });
      return;
    }
    const v = await this.io.deploymentState(i.deploymentId);
    if (v === "unanswered") return;
    if (!v) return this.setInstance(w, i, { status: "failed", code: "start_failed", reason: "its deployment does not exist" });
    const outcome = deploymentOutcome(v);
    if (outcome === "completed") this.setInstance(w, i, { status: "completed", fromVersionId: v.fromVersionId, reason: undefined, code: undefined });
    else if (outcome === "failed") this.setInstance(w, i, { status: "failed", code: v.error?.code ?? "step_failed", reason: v.error?.message ?? `deployment ${v.status}` });
    else {
      const waiting = v.attention?.state === "waiting" ? `waiting for a person: ${v.attention.message}` : undefined;
      if (waiting !== i.reason) this.setInstance(w, i, { reason: waiting });
    }
  }

  private async observeRollback(w: WaveRun, i: InstanceRun): Promise<void> {
    const rb = i.rollback!;
    const id = rb.via === "deployment" ? i.deploymentId : i.rollbackDeploymentId;
    const seen = id ? await this.io.deploymentState(id) : null;
    const v = seen === "unanswered" ? null : seen;
    if (v && rb.via === "deployment") {
      if (v.status === "rolled_back") return this.setInstance(w, i, { status: "rolled_back", rollback: undefined, reason: "wave rolled back", code: undefined });
      if (v.status === "completed" || v.status === "failed") {
        // The window closed before the rollback could run: restore the version it ran before with a new deployment.
        return this.setInstance(w, i, { rollback: { via: "redeploy", since: this.at } });
      }
    } else if (v) {
      const outcome = deploymentOutcome(v);
      if (outcome === "completed") return this.setInstance(w, i, { status: "rolled_back", rollback: undefined, reason: "wave rolled back (previous version redeployed)", code: undefined });
      if (outcome === "failed") {
        return this.setInstance(w, i, { rollback: undefined, code: "rollback_failed", reason: `could not restore the previous version: ${v.error?.message ?? v.status}` });
      }
    }
    // Not settled (or its object did not answer): a rollback ends within its deadlines, or is given up by name.
    const allowed = rollbackAllowanceMs(rb.via, v, this.s.meta.deployment.analysisSeconds);
    if (this.at - rb.since < allowed) return;
    const where = v ? `deployment ${v.id} is ${v.status}${v.phase ? ` at ${v.phase}` : ""}${v.attention?.lastError ? ` (last error: ${v.attention.lastError})` : ""}`
      : id ? `deployment ${id} did not answer` : "its redeploy could not start";
    this.setInstance(w, i, {
      rollback: undefined, code: "rollback_timeout",
      reason: `its rollback did not end within ${Math.round(allowed / 1000)} s: ${where}; it may still finish (GET /api/deployments/${id ?? i.deploymentId})`,
    });
  }

  // ---- running: waves ----

  private async advance(): Promise<void> {
    const m = this.s.meta;
    if (m.currentWave === null) return this.openWave(0);
    if (m.nextWaveAt !== null) {
      if (this.at < m.nextWaveAt) return;
      m.nextWaveAt = null;
      return this.openWave(m.currentWave + 1);
    }
    const w = this.s.waves[m.currentWave]!;
    this.checkBudget(w);
    if (!w.stopping) {
      await this.startPending(w);
      // A start can fail at once (a policy, a quota, an instance not running): judge those before the wave is.
      this.checkBudget(w);
    }
    if (w.instances.some((i) => UNSETTLED.includes(i.status))) return;
    if (w.stopping) return this.stopWave(w, w.instances.filter((i) => i.status === "failed").length);
    this.setWave(w, "completed");
    await this.afterWave(w);
  }

  /** Over its budget, a wave starts nothing more: its pending instances are skipped. */
  private checkBudget(w: WaveRun): void {
    const failed = w.instances.filter((i) => i.status === "failed").length;
    if (w.stopping || !budgetExceeded(this.s.meta.plan.failureBudget, failed, w.instances.length)) return;
    w.stopping = true;
    for (const i of w.instances) if (i.status === "pending") this.setInstance(w, i, { status: "skipped", reason: "the wave exceeded its failure budget" });
  }

  private async openWave(index: number): Promise<void> {
    const m = this.s.meta;
    const w = this.s.waves[index];
    if (!w) return this.finishOrJoin();
    m.currentWave = index;
    this.setWave(w, "running");
    this.result.events.push({ event: "rollout:state", data: view(this.s) });
    await this.advance();
  }

  private async afterWave(w: WaveRun): Promise<void> {
    const m = this.s.meta;
    const last = w.index === this.s.waves.length - 1;
    if (last) return this.finishOrJoin();
    const pause = m.plan.pause;
    if (pause.kind === "approval") {
      this.setStatus("awaiting_approval");
    } else if (pause.seconds > 0) {
      m.nextWaveAt = this.at + pause.seconds * 1000;
      this.touch();
      this.result.events.push({ event: "rollout:state", data: view(this.s) });
    } else {
      await this.openWave(w.index + 1);
    }
  }

  /** After the last wave: the instances that joined the selection meanwhile get their wave, then the rollout completes. */
  private async finishOrJoin(): Promise<void> {
    const m = this.s.meta;
    if (!m.lateJoinersChecked) {
      m.lateJoinersChecked = true;
      m.lateJoinersCheckedAt = this.at;
      this.touch();
      const known = new Set(this.s.waves.flatMap((w) => w.instances.map((i) => i.instanceId)));
      const { free, claimed } = await this.io.lateJoiners(known);
      if (free.length + claimed.size > 0) {
        const index = this.s.waves.length;
        this.s.waves.push({
          index, target: known.size + free.length + claimed.size, status: "pending", lateJoiners: true, startedAt: null, completedAt: null,
          instances: [
            ...free.map((instanceId): InstanceRun => ({ instanceId, deploymentId: null, status: "pending" })),
            // Visible, not silently left out: labelled into this selector after another rollout took it.
            ...[...claimed].map(([instanceId, other]): InstanceRun => ({
              instanceId, deploymentId: null, status: "skipped", code: "rollout_conflict", reason: `joined the selection late, and rollout ${other} has it; it stays with that rollout`,
            })),
          ],
        });
        m.waveCount = this.s.waves.length;
        if (free.length > 0) return this.openWave(index);
        this.setWave(this.s.waves[index]!, "completed");
      }
    }
    this.setStatus("completed");
  }

  private async startPending(w: WaveRun): Promise<void> {
    const m = this.s.meta;
    const running = w.instances.filter((i) => i.status === "deploying").length;
    const slots = Math.max(0, m.plan.parallelism - running);
    const ready = w.instances.filter((i) => i.status === "pending" && (i.retryAt ?? 0) <= this.at);
    const next = ready.slice(0, Math.min(slots, STARTS_PER_TICK));
    // Slots still free and instances still ready: the next tick comes at once instead of after POLL_MS.
    this.moreToStart = ready.length > next.length && slots > next.length;
    if (next.length === 0) return;
    // Stored as starting before any start: if the object stops before an answer is stored, the next tick adopts
    // the deployment the start created (deploymentSince) instead of starting a second one.
    for (const i of next) Object.assign(i, { status: "deploying", startedAt: this.at, deploymentId: null });
    this.result.dirtyWaves.add(w.index);
    await this.io.checkpoint(this.result.dirtyWaves);
    let k = 0;
    await Promise.all(Array.from({ length: Math.min(START_CONCURRENCY, next.length) }, async () => {
      while (k < next.length) await this.startOne(w, next[k++]!);
    }));
  }

  private async startOne(w: WaveRun, i: InstanceRun): Promise<void> {
    const d = this.s.meta.deployment;
    const answer = await this.io.startDeployment({
      instanceId: i.instanceId, strategy: d.strategy, flows: this.flows as CreateDeployment["flows"], verify: d.verify,
      drainTimeoutSeconds: d.drainTimeoutSeconds, analysisSeconds: d.analysisSeconds, maxErrorRate: d.maxErrorRate,
      rollbackWindowSeconds: d.rollbackWindowSeconds, holdDuring: d.holdDuring, timeouts: d.timeouts,
      description: `rollout ${this.s.meta.id}, wave ${w.index + 1}`,
    });
    if (answer.ok) return this.setInstance(w, i, { status: "deploying", deploymentId: answer.view.id, reason: undefined, retryAt: undefined });
    // No answer in time: it may have started. Kept as starting, so the next tick adopts the deployment or starts again.
    if (answer.unanswered) return this.setInstance(w, i, { status: "deploying", deploymentId: null, reason: answer.message });
    const attempts = (i.attempts ?? 0) + 1;
    // deployment_in_progress: the instance's last deployment is still waiting out its rollback window (a previous
    // rollout counted it done; core/rollouts/overlap.ts lets this rollout start): tried again like a transient failure.
    if ((answer.transient || answer.code === "deployment_in_progress") && attempts < MAX_START_ATTEMPTS) {
      const retryAt = this.io.now() + START_RETRY_MS * 2 ** (attempts - 1);
      return this.setInstance(w, i, { status: "pending", attempts, retryAt, reason: `start attempt ${attempts} failed (${answer.message}); trying again` });
    }
    // A late joiner still starting up is not a failure of the rollout: it was not there when the rollout began.
    const skip = GONE_CODES.has(answer.code) || (w.lateJoiners && answer.code === "instance_not_running");
    this.setInstance(w, i, { status: skip ? "skipped" : "failed", code: answer.code, reason: answer.message });
  }

  // ---- stopping a wave ----

  private stopWave(w: WaveRun, failed: number): void {
    const m = this.s.meta;
    const message = `wave ${w.index + 1}: ${failed} of ${w.instances.length} instances failed, over its failure budget (${budgetText(m.plan.failureBudget)})`;
    this.skipRemaining(`the rollout stopped: ${message}`);
    if (m.plan.onFailure === "rollback_wave" && w.instances.some((i) => i.status === "completed")) {
      m.failure = { code: "failure_budget_exceeded", message };
      this.setWave(w, "rolling_back");
      this.setStatus("rolling_back");
      return;
    }
    this.setWave(w, "failed");
    this.setStatus("failed", { code: "failure_budget_exceeded", message });
  }

  private async rollBack(): Promise<void> {
    const m = this.s.meta;
    const w = this.s.waves[m.currentWave ?? 0]!;
    const todo = w.instances.filter((i) => i.status === "completed" && !i.rollback && !ROLLBACK_GAVE_UP.has(i.code ?? ""));
    let redeploys = w.instances.filter((i) => i.rollback?.via === "redeploy" && i.rollbackDeploymentId).length;
    // Each deployment's own rollback first, `parallelism` at a time (one serial RPC each made a 100-instance wave's tick minutes long).
    const asked = new Map<InstanceRun, Awaited<ReturnType<RolloutIo["rollbackDeployment"]>>>();
    for (let k = 0; k < todo.length; k += m.plan.parallelism) {
      const chunk = todo.slice(k, k + m.plan.parallelism).filter((i) => i.deploymentId);
      await Promise.all(chunk.map(async (i) => asked.set(i, await this.io.rollbackDeployment(i.deploymentId!))));
    }
    for (const i of todo) {
      const r = asked.get(i);
      // Unanswered: it may be rolling back now; observing it decides (rolled back, or a redeploy once its window is shut).
      if (r && (r.ok || r.code === "unanswered")) { this.setInstance(w, i, { rollback: { via: "deployment", since: this.at } }); continue; }
      if (redeploys >= m.plan.parallelism) continue;
      redeploys++;
      this.setInstance(w, i, { rollback: { via: "redeploy", since: this.at } });
    }
    // Redeploys of the version each ran before (blue was gone), `parallelism` at a time.
    const starts = w.instances.filter((x) => x.rollback?.via === "redeploy" && !x.rollbackDeploymentId);
    for (let k = 0; k < starts.length; k += m.plan.parallelism) {
      await Promise.all(starts.slice(k, k + m.plan.parallelism).map((i) => this.redeployPrevious(w, i)));
    }
    const open = w.instances.some((i) => i.rollback || UNSETTLED.includes(i.status) || (i.status === "completed" && !ROLLBACK_GAVE_UP.has(i.code ?? "")));
    if (open) return;
    const incomplete = w.instances.filter((i) => i.status === "completed" && ROLLBACK_GAVE_UP.has(i.code ?? "")).length;
    this.setWave(w, "rolled_back");
    const base = m.failure ?? { code: "failure_budget_exceeded", message: `wave ${w.index + 1} exceeded its failure budget` };
    this.setStatus("failed", incomplete > 0
      ? { code: "rollback_incomplete", message: `${base.message}; ${incomplete} instance(s) could not be rolled back (see each instance's code: rollback_failed or rollback_timeout)` }
      : { code: base.code, message: `${base.message}; the wave was rolled back` });
  }

  private async redeployPrevious(w: WaveRun, i: InstanceRun): Promise<void> {
    const d = this.s.meta.deployment;
    if (!i.fromVersionId) {
      return this.setInstance(w, i, { rollback: undefined, code: "rollback_failed", reason: "no previous version is known for this instance" });
    }
    const answer = await this.io.startDeployment({
      instanceId: i.instanceId, strategy: d.strategy, versionId: i.fromVersionId, verify: d.verify,
      drainTimeoutSeconds: d.drainTimeoutSeconds, analysisSeconds: d.analysisSeconds, maxErrorRate: d.maxErrorRate,
      rollbackWindowSeconds: 0, holdDuring: d.holdDuring, timeouts: d.timeouts,
      description: `rollout ${this.s.meta.id}: wave ${w.index + 1} rolled back`,
    });
    if (answer.ok) return this.setInstance(w, i, { rollbackDeploymentId: answer.view.id, rollback: { via: "redeploy", since: this.at } });
    // Its own deployment is still cleaning up (one per instance): the next tick tries again, until the rollback's deadline.
    if (answer.transient || answer.code === "deployment_in_progress") {
      const allowed = rollbackAllowanceMs("deployment", null);
      if (this.at - i.rollback!.since < allowed) return;
      return this.setInstance(w, i, { rollback: undefined, code: "rollback_timeout", reason: `its redeploy could not start within ${Math.round(allowed / 1000)} s (last: ${answer.message})` });
    }
    this.setInstance(w, i, { rollback: undefined, code: "rollback_failed", reason: `could not restore the previous version: ${answer.message}` });
  }

  // ---- when to look again ----

  private schedule(): void {
    const m = this.s.meta;
    const busy = this.s.waves.some((w) => w.instances.some((i) => i.status === "deploying" || i.rollback));
    const startable = m.status === "running" && m.nextWaveAt === null;
    let wake: number | null = busy || startable || m.status === "rolling_back" ? this.at + POLL_MS : null;
    if (startable && this.moreToStart) wake = this.io.now();
    if (m.status === "running" && m.nextWaveAt !== null) wake = wake === null ? m.nextWaveAt : Math.min(wake, m.nextWaveAt);
    this.result.wakeAt = wake;
  }
}

/** A deployment as a rollout counts it: switched for good (its rollback window may still be open), failed, or still going. */
export function deploymentOutcome(v: DeploymentView): "completed" | "failed" | "running" {
  if (v.status === "completed") return "completed";
  if (v.status === "failed" || v.status === "rolled_back") return "failed";
  // Rolling back: it will not switch to the new version. Its own rollback may retry for long (held work waits on it),
  // which must not hold the wave: the instance counts as failed now, its deployment keeps restoring blue.
  if (v.phase === "ROLLING_BACK" && v.status === "in_progress") return "failed";
  // Past the switch and the post-switch analysis: only a person's rollback moves it back now.
  if (v.switched && v.phase === "CLEANUP") return "completed";
  return "running";
}

/**
 * How long one instance's wave rollback may take before it is given up as `rollback_timeout`: its own rollback gets
 * two attempts of the deployment's rollback deadline; a redeploy of the previous version gets every deadline of its
 * steps (and the analysis wait). Each deadline is the deployment's own (its view's `timeouts`), so a slow cluster's
 * longer deadlines lengthen this too.
 */
export function rollbackAllowanceMs(via: "deployment" | "redeploy", v: DeploymentView | null, analysisSeconds = 0): number {
  const steps = v?.timeouts?.stepSeconds;
  if (via === "deployment" || !steps) {
    const rollbackMs = steps?.rollback !== undefined ? steps.rollback * 1000 : DEFAULT_ROLLBACK_STEP_MS * (v?.timeouts?.scale ?? 1);
    return 2 * rollbackMs + ROLLBACK_MARGIN_MS;
  }
  const all = Object.values(steps).reduce((a, b) => a + (b ?? 0), 0) * 1000;
  return all + analysisSeconds * 1000 + ROLLBACK_MARGIN_MS;
}

function budgetText(b: { maxFailedInstances?: number; maxFailedPercent?: number }): string {
  return [
    b.maxFailedInstances !== undefined ? `at most ${b.maxFailedInstances} instance(s)` : null,
    b.maxFailedPercent !== undefined ? `at most ${b.maxFailedPercent} %` : null,
  ].filter(Boolean).join(" and ");
}
