/**
 * The bridge's half of a blue-green deployment: one handler per step the
 * control plane's DeploymentRun asks for. Each is safe to run again (the
 * ledger answers a redelivered command from its record; a step re-sent under
 * a new attempt converges on the same state).
 */
import type { CommandArgs, CommandResult, SmokeResult } from "../../protocol/commands.ts";
import type { BlueGreenDriver, Driver } from "../drivers/driver.ts";
import type { AdminProbe, GateStatus } from "../drivers/nodeRedAdmin.ts";
import type { RuntimeAdmin } from "../drivers/nodeRedAdmin.ts";
import { runSmoke } from "./smoke.ts";
import { BridgeError } from "../errors.ts";
import { handOver, type FrontCounters } from "../routing/fronts.ts";
import { handOverWorkflows } from "./workflowHandover.ts";


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A counter's growth since `then`; a runtime that restarted in between counts from 0 again (never negative). */
const since = (now: number, then: number) => (now >= then ? now - then : now);
/**
 * Nothing left to finish. Behind a Service, clients may hold idle keep-alive connections to a
 * retired runtime; stopping it closes them under the client, and a POST sent on one at that
 * moment fails ("other side closed", not retried). Each such connection goes once its next
 * request is answered with `Connection: close`, or once the client's idle timeout (shorter than
 * Node-RED's 5 s keepAliveTimeout) closes it.
 */
const finished = (s: GateStatus) => s.inFlight === 0 && (s.mode !== "retire" || !s.openHttp);

/** Both holds' figures summed; a count known for only one of them is not known for the whole. */
export function withEarlierRelease(now: CommandResult<"route.switch">, earlier: CommandResult<"route.switch">): CommandResult<"route.switch"> {
  const both = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? undefined : a + b);
  return {
    ...now,
    replayed: now.replayed + earlier.replayed,
    bufferedDuringSwitch: now.bufferedDuringSwitch + earlier.bufferedDuringSwitch,
    httpReleased: now.httpReleased + earlier.httpReleased,
    heldHttpReleasedOnBlue: now.heldHttpReleasedOnBlue + earlier.heldHttpReleasedOnBlue,
    heldMqtt: both(now.heldMqtt, earlier.heldMqtt),
    httpHeld: both(now.httpHeld, earlier.httpHeld),
    httpRefused: both(now.httpRefused, earlier.httpRefused),
    httpUnanswered: both(now.httpUnanswered, earlier.httpUnanswered),
  };
}

/** How long a hold may stay open without a command from the control plane before the bridge releases it (120 s). */
export const DEFAULT_MAX_HOLD_MS = 120_000;

export interface BlueGreenOptions {
  /** See DEFAULT_MAX_HOLD_MS; 0 turns the bound off. */
  maxHoldMs?: number;
  /** A hold the bridge released on its own (the control plane was away): reported as soon as the link allows. */
  onHoldReleased?: (instanceId: string, reason: string) => void;
  log?: (line: string) => void;
}

export class BlueGreen {
  /** Front counters at the switch, per instance, for the post-switch analysis. */
  private readonly atSwitch = new Map<string, { serverErrors: number; forwarded: number; gate: GateStatus["counters"] }>();
  /**
   * Counters when a hold began (the drain), per instance, so the hand-over can say exactly what it
   * held (the deployment's loss count). In memory only: after a bridge restart the hand-over leaves
   * those figures out and the control plane counts from the drain's, a lower bound it marks as such.
   */
  private readonly atDrain = new Map<string, { runtime: string; gate: GateStatus["counters"]; front?: { held: number; refused: number; unanswered?: number; heldRefused?: number } }>();

  /**
   * Open holds (a drain answered, not yet handed over), per instance, each with a timer that a command
   * for the instance re-arms. A hold is the control plane's to end; when no command comes for
   * `maxHoldMs` (the Worker down, the link cut, a deployment paused for a person), the bridge ends it the
   * documented safe way, a rollback before the switch: held work goes back to the runtime that served
   * (blue), whose gate reopens, and the front forwards to it again. A later switch still works (the
   * hand-over then collects nothing), so the deployment can go on once the control plane is back.
   */
  private readonly holds = new Map<string, { runtime: string; since: number; timer?: NodeJS.Timeout; releasing?: boolean }>();
  private readonly maxHoldMs: number;
  /** What a hold this bridge released on its own took in and gave back, until the deployment's next switch reports it. */
  private readonly releasedByBridge = new Map<string, CommandResult<"route.switch">>();

  constructor(private readonly driver: Driver & BlueGreenDriver, private readonly admin: RuntimeAdmin, private readonly mqttConfigured: boolean, private readonly opts: BlueGreenOptions = {}) {
    this.maxHoldMs = opts.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
  }

  /** A command for `instanceId` arrived: an open hold's bound counts from now. */
  private touch(instanceId: string): void {
    const hold = this.holds.get(instanceId);
    // Not while the bridge releases it: its switch is a command of its own, and a second release must not start beside it.
    if (!hold || hold.releasing || this.maxHoldMs <= 0) return;
    clearTimeout(hold.timer);
    hold.timer = setTimeout(() => void this.releaseHold(instanceId), this.maxHoldMs);
    hold.timer.unref();
  }

  /** A command names a runtime only (green's flows): its instance's hold (runtime ids start with the instance id). */
  private touchRuntime(runtime: string): void {
    for (const instanceId of this.holds.keys()) if (runtime.startsWith(instanceId)) this.touch(instanceId);
  }

  private holdEnded(instanceId: string): void {
    clearTimeout(this.holds.get(instanceId)?.timer);
    this.holds.delete(instanceId);
  }

  /** The hold's bound passed with no command: back to the runtime that served, as a rollback before the switch does. */
  async releaseHold(instanceId: string): Promise<void> {
    const hold = this.holds.get(instanceId);
    if (!hold || hold.releasing) return;
    hold.releasing = true;
    clearTimeout(hold.timer);
    const heldFor = Math.round((Date.now() - hold.since) / 1000);
    this.opts.log?.(`hold on ${instanceId} open for ${heldFor} s, ${Math.round(this.maxHoldMs / 1000)} s without a command from the control plane: releasing it to ${hold.runtime}`);
    try {
      const r = await this.switchRoute(instanceId, hold.runtime, hold.runtime);
      const reason = `deployment hold released by the bridge after ${heldFor} s (${Math.round(this.maxHoldMs / 1000)} s without a command from the control plane): `
        + `${r.replayed} held + ${r.bufferedDuringSwitch} buffered MQTT message(s) replayed and ${r.httpReleased} HTTP request(s) released to ${hold.runtime}, which serves again`;
      this.opts.log?.(reason);
      this.releasedByBridge.set(instanceId, r);
      this.opts.onHoldReleased?.(instanceId, reason);
    } catch (err) {
      // Still held: try again after another bound (a runtime or the broker that is down now may be back).
      this.opts.log?.(`releasing the hold on ${instanceId} failed: ${err instanceof Error ? err.message : String(err)}; trying again in ${Math.round(this.maxHoldMs / 1000)} s`);
      hold.releasing = false;
      this.holds.set(instanceId, hold);
      this.touch(instanceId);
    }
  }

  private async base(runtimeId: string): Promise<string> {
    const base = await this.driver.runtimeBase(runtimeId);
    if (!base) throw new BridgeError("not_running", `runtime ${runtimeId} is not running on this bridge`);
    return base;
  }

  async prepare(instanceId: string, args: CommandArgs<"deployment.prepare"> = {}): Promise<CommandResult<"deployment.prepare">> {
    this.touch(instanceId);
    await this.driver.ensureFronts(instanceId);
    const blue = await this.driver.servingOf(instanceId);
    // The hold queue's session exists before any gate drains, so the broker keeps all of it.
    await this.driver.mqttFront(instanceId)?.openHold();
    const green = await this.driver.startGreen(instanceId, args.stack ? { stack: args.stack } : {});
    return { blue: blue.runtimeId, green: green.runtimeId, greenAdmin: green.base, ...(green.stack ? { stack: green.stack } : {}) };
  }

  async setGate(instanceId: string, args: CommandArgs<"gate.set">): Promise<CommandResult<"gate.set">> {
    this.touch(instanceId);
    // After a bridge restart the driver knows the instance's fronts only once asked for.
    await this.driver.ensureFronts(instanceId);
    const serving = await this.driver.servingOf(instanceId);
    const runtime = args.runtime ?? serving.runtimeId;
    const base = await this.base(runtime);
    const mqtt = this.driver.mqttFront(instanceId);
    if (args.mode === "active") {
      await mqtt?.publishMode(runtime, "active");
      const status = await this.admin.gate(base, "active");
      return { runtime, mode: status.mode, inFlight: status.inFlight, stragglers: 0, heldHttp: 0, heldMqtt: 0 };
    }
    // Hold at the front first (new requests stop reaching blue), then drain the gate.
    const holdingSince = new Date().toISOString();
    const front = this.driver.front(instanceId);
    // The baseline is read before the gate can hear "drain" (the retained MQTT mode often arrives
    // before the Admin API call returns): what it holds from then on is this hold's.
    const [frontAtDrain, gateAtDrain] = await Promise.all([front?.counters(), this.admin.gate(base)]);
    await front?.hold();
    await mqtt?.publishMode(runtime, "drain");
    const drained = await this.admin.gate(base, "drain");
    // A re-run of the same drain (after a timeout or a restart) keeps the first baseline: the hold did not restart.
    if (this.atDrain.get(instanceId)?.runtime !== runtime) {
      this.atDrain.set(instanceId, { runtime, gate: gateAtDrain.counters, ...(frontAtDrain ? { front: { held: frontAtDrain.held, refused: frontAtDrain.refused, ...(frontAtDrain.unanswered !== undefined ? { unanswered: frontAtDrain.unanswered } : {}), ...(frontAtDrain.heldRefused !== undefined ? { heldRefused: frontAtDrain.heldRefused } : {}) } } : {}) });
    }
    // The hold is open from here (held work waits for a hand-over): bounded, see `holds`.
    if (!this.holds.has(instanceId)) this.holds.set(instanceId, { runtime, since: Date.now() });
    this.touch(instanceId);
    const t0 = Date.now();
    const status = await this.untilIdle(base, args.drainTimeoutMs, drained);
    const frontNow = await front?.counters();
    return {
      runtime, mode: status.mode, inFlight: status.inFlight, drainedInMs: Date.now() - t0, holdingSince,
      // Stragglers past the deadline finish on blue, which stays warm; they are counted, not dropped.
      stragglers: status.inFlight,
      heldHttp: ((await front?.heldCount()) ?? 0) + status.heldHttp,
      // What blue's gate republished to the hold queue since the drain began.
      heldMqtt: since(status.counters.heldMqtt, gateAtDrain.counters.heldMqtt),
      ...(frontNow && frontAtDrain ? { httpRefused: since(frontNow.refused, frontAtDrain.refused) } : {}),
    };
  }

  async deployFlows(runtime: string, flows: unknown[], rev?: string): Promise<CommandResult<"flows.deploy">> {
    this.touchRuntime(runtime);
    const deployed = await this.driver.deployFlowsTo(runtime, flows, rev === undefined ? {} : { rev });
    // FACTS: the deploy reply comes before the new routes are live. Ready = /healthz answers and
    // every gate of the new flows is registered (gates are built with the flows' other nodes).
    const base = await this.base(runtime);
    const gates = (flows as Array<{ type?: unknown }>).filter((n) => n.type === "redforge-gate").length;
    const t0 = Date.now();
    while (Date.now() - t0 < 10_000) {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      await res?.arrayBuffer();
      const gate = res?.ok && gates > 0 ? await this.admin.gate(base).catch(() => undefined) : undefined;
      if (res?.ok && (gates === 0 || (gate?.gates ?? 0) >= gates)) break;
      await sleep(10);
    }
    return { runtime, rev: deployed.rev };
  }

  async smoke(instanceId: string, args: CommandArgs<"smoke.run">): Promise<SmokeResult> {
    this.touch(instanceId);
    const base = await this.base(args.runtime);
    if (args.kind === "analysis") return this.analysis(instanceId, args.runtime, base, args.maxErrorRate);
    const verdict = await runSmoke({
      base,
      probe: () => this.lightProbe(base),
      rev: () => this.admin.flowsRev(base),
      gate: () => this.admin.gate(base),
      mqttConfigured: this.mqttConfigured,
    }, args.checks, args.expectRev);
    return { runtime: args.runtime, ...verdict };
  }

  /**
   * Health for VERIFY, lighter than the sweep's probe (which also lists flows
   * and node sets): node types were checked against GET /nodes before the deploy.
   */
  private async lightProbe(base: string): Promise<AdminProbe> {
    const [healthz, gate] = await Promise.allSettled([
      fetch(`${base}/healthz`, { signal: AbortSignal.timeout(3_000) }).then(async (r) => { await r.arrayBuffer(); return r.ok; }),
      this.admin.gate(base),
    ]);
    const ready = healthz.status === "fulfilled" && healthz.value;
    const live = gate.status === "fulfilled";
    return { live, ready, missingNodeTypes: [], ...(live && ready ? {} : { error: `admin API ${live ? "answers" : "does not answer"}, /healthz ${ready ? "ok" : "not ready"}` }) };
  }

  /** Green's error rate since the switch: in-flight messages that expired plus 5xx/no answer at the front. */
  private async analysis(instanceId: string, runtime: string, base: string, maxErrorRate: number): Promise<SmokeResult> {
    const gate = await this.admin.gate(base);
    const front = await this.driver.front(instanceId)?.counters();
    const start = this.atSwitch.get(instanceId);
    const entered = since(gate.counters.entered, start?.gate.entered ?? 0);
    const expired = since(gate.counters.expired, start?.gate.expired ?? 0);
    const serverErrors = since(front?.serverErrors ?? 0, start?.serverErrors ?? 0);
    const requests = since(front?.forwarded ?? 0, start?.forwarded ?? 0);
    const total = Math.max(entered, requests, 1);
    const errorRate = (expired + serverErrors) / total;
    const verdict = errorRate > maxErrorRate ? "failed" : "passed";
    return {
      runtime, verdict, errorRate, maxErrorRate, entered, expired, serverErrors, requests,
      checks: [{ name: "error rate", outcome: verdict, detail: `${(errorRate * 100).toFixed(2)}% (${expired} expired, ${serverErrors} 5xx of ${total}); limit ${(maxErrorRate * 100).toFixed(2)}%` }],
    };
  }

  /**
   * RESUME's switch: the HTTP front points at `to` and releases what it held;
   * the MQTT work stream moves with held work replayed first, in order; then
   * `from`'s gate reopens so HTTP requests it held finish there (answered, not dropped).
   */
  async switchRoute(instanceId: string, from: string, to: string): Promise<CommandResult<"route.switch">> {
    this.touch(instanceId);
    await this.driver.ensureFronts(instanceId); // the fronts may not be known to this bridge process yet (see setGate)
    const toBase = await this.base(to);
    const front = this.driver.front(instanceId);
    await front?.hold(); // already holding after a drain; a no-op then
    const mqtt = this.driver.mqttFront(instanceId);
    let gateAtSwitch: GateStatus | undefined;
    let fromAtMarker: GateStatus | undefined;
    const activate = async () => {
      // The end-of-hold marker is back: `from`'s gate has republished everything it will hold.
      const fromBase = await this.driver.runtimeBase(from);
      fromAtMarker = fromBase ? await this.admin.gate(fromBase).catch(() => undefined) : undefined;
      await mqtt?.publishMode(to, "active");
      gateAtSwitch = await this.admin.gate(toBase, "active");
    };
    const moved = mqtt ? await handOver(mqtt, from, to, activate) : (await activate(), { replayed: 0, buffered: 0 });
    // The analysis counts from here, released requests included (one local round trip before they go).
    const counters = await front?.counters();
    this.atSwitch.set(instanceId, { serverErrors: counters?.serverErrors ?? 0, forwarded: counters?.forwarded ?? 0, gate: gateAtSwitch!.counters });
    await front?.setTarget(toBase);
    const httpReleased = (await front?.release()) ?? 0;
    // Routing moves (a proxy target, or a Service selector once kube-proxy follows) before `from` reopens.
    await this.driver.setServing(to);
    const switchedAt = new Date().toISOString();
    // Handed over: whatever was held now flows to `to`.
    this.holdEnded(instanceId);
    // `from`'s gate reopens so HTTP requests it held finish there (answered, not dropped). Without a
    // bridge proxy, clients may still hold keep-alive connections to it: "retire" closes each after its answer.
    const fromBase = from !== to ? await this.driver.runtimeBase(from) : undefined;
    const fromMode = front ? "active" : "retire";
    const blueReleased = fromBase
      ? (await Promise.all([mqtt?.publishMode(from, fromMode), this.admin.gate(fromBase, fromMode)]))[1].counters.released
      : 0;
    // Checkpointed workflows (and the drain's stragglers among them) continue on `to` from their last checkpoint.
    if (fromBase) {
      const wf = await handOverWorkflows(this.admin, fromBase, toBase);
      if (wf.handedOver || wf.problem) this.opts.log?.(`workflows ${from} -> ${to}: ${wf.handedOver} handed over, ${wf.resumed} resumed, ${wf.failed} failed${wf.problem ? `; ${wf.problem}` : ""}`);
    }
    const result = {
      from, to, replayed: moved.replayed, bufferedDuringSwitch: moved.buffered, httpReleased, heldHttpReleasedOnBlue: blueReleased, switchedAt,
      ...this.heldDuring(instanceId, from, fromAtMarker, counters),
    };
    // A hold this bridge released on its own (the control plane was away) belongs to this deployment's
    // count: without it, the drain's held messages looked lost (replayed 0 at the real switch).
    const earlier = this.holds.get(instanceId)?.releasing ? undefined : this.releasedByBridge.get(instanceId);
    if (!earlier) return result;
    this.releasedByBridge.delete(instanceId);
    return withEarlierRelease(result, earlier);
  }

  /**
   * What this hold took in, for the deployment's loss count: MQTT republished by `from`'s gate since
   * its drain (the one end-of-hold marker of this hand-over excluded), HTTP held at the front and in
   * the gate, and requests the full front refused. Left out when the drain's baseline is not known
   * here (a bridge restarted since) or the gate could not be read: the control plane then counts a lower bound.
   */
  private heldDuring(instanceId: string, from: string, gate: GateStatus | undefined, front: FrontCounters | undefined): { heldMqtt?: number; httpHeld?: number; httpRefused?: number; httpHeldRefused?: number; httpUnanswered?: number } {
    const start = this.atDrain.get(instanceId);
    this.atDrain.delete(instanceId);
    if (!start || start.runtime !== from || !gate) return {};
    const frontHeld = front && start.front ? since(front.held, start.front.held) : 0;
    return {
      heldMqtt: Math.max(0, since(gate.counters.heldMqtt, start.gate.heldMqtt) - 1),
      httpHeld: frontHeld + since(gate.counters.heldHttp, start.gate.heldHttp),
      ...(front && start.front ? { httpRefused: since(front.refused, start.front.refused) + since(gate.counters.refusedHttp, start.gate.refusedHttp) } : {}),
      // Held, then refused past the bound: in httpHeld and httpRefused both (the accounting takes them out of lost).
      ...(front?.heldRefused !== undefined && start.front?.heldRefused !== undefined
        ? { httpHeldRefused: since(front.heldRefused, start.front.heldRefused) + since(gate.counters.refusedHeldHttp ?? 0, start.gate.refusedHeldHttp ?? 0) } : {}),
      ...(front?.unanswered !== undefined && start.front?.unanswered !== undefined ? { httpUnanswered: since(front.unanswered, start.front.unanswered) } : {}),
    };
  }

  /** Back to blue; works before the switch (blue drained) and after it (green serving). */
  async rollback(instanceId: string, args: CommandArgs<"deployment.rollback">): Promise<CommandResult<"deployment.rollback">> {
    const { blue, green } = args;
    let result: CommandResult<"route.switch">;
    const serving = (await this.driver.servingOf(instanceId)).runtimeId;
    if (serving === green && green) {
      // After the switch: drain green like blue was drained, then move everything back.
      await this.setGate(instanceId, { mode: "drain", runtime: green, drainTimeoutMs: 10_000 });
      result = await this.switchRoute(instanceId, green, blue);
    } else {
      // Before the switch: blue's own hold queue goes back into blue.
      result = await this.switchRoute(instanceId, blue, blue);
    }
    const greenStragglers = green && green !== blue ? await this.idle(green) : 0;
    if (green && green !== blue) await this.driver.stopRuntime(green).catch(() => {});
    return { ...result, serving: blue, greenStopped: Boolean(green), greenStragglers };
  }

  async cleanup(runtime: string, instanceId?: string): Promise<CommandResult<"deployment.cleanup">> {
    const stragglers = await this.idle(runtime);
    // Checkpointed workflows started on the retired runtime after the switch (held requests it answered) go on where the instance serves.
    if (instanceId) await this.handOverBeforeStop(instanceId, runtime);
    await this.driver.stopRuntime(runtime);
    return { stopped: runtime, stragglers };
  }

  private async handOverBeforeStop(instanceId: string, runtime: string): Promise<void> {
    const serving = await this.driver.servingOf(instanceId).catch(() => undefined);
    const fromBase = serving && serving.runtimeId !== runtime ? await this.driver.runtimeBase(runtime) : undefined;
    if (!serving || !fromBase) return;
    const wf = await handOverWorkflows(this.admin, fromBase, serving.base);
    if (wf.handedOver || wf.problem) this.opts.log?.(`workflows ${runtime} -> ${serving.runtimeId} before stopping ${runtime}: ${wf.handedOver} handed over, ${wf.resumed} resumed, ${wf.failed} failed${wf.problem ? `; ${wf.problem}` : ""}`);
  }

  /**
   * Before a runtime is stopped: wait (bounded) until its gate counts nothing
   * in flight, so what it was still answering (requests it held and released,
   * a last request on a keep-alive connection) finishes instead of dying with it;
   * a retired runtime also until no client connection is open to it (see `finished`).
   * Returns what was still in flight at the deadline.
   */
  private async idle(runtime: string, timeoutMs = 10_000): Promise<number> {
    const base = await this.driver.runtimeBase(runtime);
    // A runtime whose gate no longer answers has nothing left to finish.
    return base ? ((await this.untilIdle(base, timeoutMs).catch(() => undefined))?.inFlight ?? 0) : 0;
  }

  /** Polls a runtime's gate until it has `finished` or `timeoutMs` passes; the last status. */
  private async untilIdle(base: string, timeoutMs: number, first?: GateStatus): Promise<GateStatus> {
    const t0 = Date.now();
    let status = first ?? (await this.admin.gate(base));
    while (!finished(status) && Date.now() - t0 < timeoutMs) {
      await sleep(20);
      status = await this.admin.gate(base);
    }
    return status;
  }

  async replay(instanceId: string, args: CommandArgs<"gate.replay">): Promise<CommandResult<"gate.replay">> {
    const serving = (await this.driver.servingOf(instanceId)).runtimeId;
    return this.switchRoute(instanceId, args.from ?? serving, args.to ?? serving);
  }
}
