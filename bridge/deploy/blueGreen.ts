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
/**
 * How long a hold stays open once the bridge knows its controller is gone (the link to the control plane
 * closed) before it is released to the serving runtime (250 ms): held work then waits about that long, not as
 * long as the control plane is away. Held work waits the lease plus the release, so the lease is most of p99
 * in the switch window of a fault: 1 s (sessions 9-12) gave 1.3-1.4 s on a quiet machine, over the 1 s target
 * (issue 12); 250 ms gives (bench/zero-loss (f), (i)) well under it. A link or bridge that is back inside the
 * lease keeps the hold; one that is not (a restarted bridge always takes longer) costs a second drain at the
 * switch, never a message, so a longer lease buys nothing but latency.
 */
export const DEFAULT_HOLD_LEASE_MS = 250;

/** What a hold released without the control plane gave back (the data plane's own release: bridge/dataplane/lease.ts). */
export interface ReleasedElsewhere {
  runtime: string;
  at: string;
  replayed: number;
  buffered: number;
  httpReleased: number;
}
/** A front that can say whether it released a hold on its own (the process driver's data plane, after losing its bridge). */
interface ReleasingRoute {
  takeRelease?(): Promise<ReleasedElsewhere | undefined>;
}

export interface BlueGreenOptions {
  /** See DEFAULT_MAX_HOLD_MS; 0 turns the bound off. */
  maxHoldMs?: number;
  /** See DEFAULT_HOLD_LEASE_MS; 0: a hold waits for the control plane (up to maxHoldMs) even when the link is down. */
  leaseMs?: number;
  /** A hold the bridge released on its own (the control plane was away): reported as soon as the link allows. */
  onHoldReleased?: (instanceId: string, reason: string) => void;
  log?: (line: string) => void;
}

interface Hold {
  runtime: string;
  since: number;
  /** The long bound (maxHoldMs), re-armed by each command for the instance. */
  timer?: NodeJS.Timeout;
  /** The short lease, while the link to the control plane is down. */
  lease?: NodeJS.Timeout;
  releasing?: boolean;
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
  private readonly holds = new Map<string, Hold>();
  private readonly maxHoldMs: number;
  private readonly leaseMs: number;
  /** What a hold this bridge released on its own took in and gave back, until the deployment's next switch reports it. */
  private readonly releasedByBridge = new Map<string, CommandResult<"route.switch">>();
  /**
   * The link to the control plane is down (controllerGone until controllerBack): every open hold is on a
   * short lease (`leaseMs`) instead of the long bound.
   */
  private controllerAway = false;
  /**
   * Per instance, the hold's commands (drain, switch, rollback) and the bridge's own release run one at a
   * time: a release must not start beside a switch the control plane already sent (it would hand the
   * stream over twice), and a switch that arrives during a release waits for it, then sees no hold.
   */
  private readonly chains = new Map<string, Promise<unknown>>();
  /**
   * The last hand-over's answer per instance. A switch the control plane sends again (the first answer came late:
   * steps.ts SWITCH_RETRY) finds the hand-over done and answers what it did, not zeros: zeros would read as held work
   * never replayed (a loss that did not happen). In memory: a restarted bridge answers zeros (a lower bound).
   */
  private readonly lastSwitch = new Map<string, { from: string; to: string; result: CommandResult<"route.switch"> }>();

  constructor(private readonly driver: Driver & BlueGreenDriver, private readonly admin: RuntimeAdmin, private readonly mqttConfigured: boolean, private readonly opts: BlueGreenOptions = {}) {
    this.maxHoldMs = opts.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    this.leaseMs = opts.leaseMs ?? DEFAULT_HOLD_LEASE_MS;
  }

  private serially<T>(instanceId: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.chains.get(instanceId) ?? Promise.resolve()).then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(instanceId, tail);
    void tail.then(() => { if (this.chains.get(instanceId) === tail) this.chains.delete(instanceId); });
    return next;
  }

  /**
   * The link to the control plane closed: nobody can end a hold now. Each open hold is released to the
   * runtime that serves after `leaseMs` (held work answered by it, exactly once, in order) unless the link
   * is back first. The deployment goes on when the control plane returns: its switch drains again first.
   */
  controllerGone(): void {
    if (this.controllerAway) return;
    this.controllerAway = true;
    for (const id of this.holds.keys()) this.startLease(id);
  }

  /** The link is back (welcomed): holds wait for the control plane's next step again. */
  controllerBack(): void {
    this.controllerAway = false;
    for (const hold of this.holds.values()) {
      clearTimeout(hold.lease);
      hold.lease = undefined;
    }
  }

  private startLease(instanceId: string): void {
    const hold = this.holds.get(instanceId);
    if (!hold || hold.releasing || hold.lease || this.leaseMs <= 0) return;
    hold.lease = setTimeout(() => {
      hold.lease = undefined;
      void this.releaseHold(instanceId, "lease");
    }, this.leaseMs);
    hold.lease.unref();
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
    const hold = this.holds.get(instanceId);
    clearTimeout(hold?.timer);
    clearTimeout(hold?.lease);
    this.holds.delete(instanceId);
  }

  /**
   * Back to the runtime that served, as a rollback before the switch does: `bound`, the hold's bound passed
   * with no command; `lease`, the link to the control plane is down and stayed down for `leaseMs`. Waits for
   * a hold command under way (a switch the control plane sent before it went away ends the hold itself).
   */
  releaseHold(instanceId: string, why: "bound" | "lease" = "bound"): Promise<void> {
    const hold = this.holds.get(instanceId);
    if (!hold || hold.releasing) return Promise.resolve();
    hold.releasing = true;
    clearTimeout(hold.timer);
    clearTimeout(hold.lease);
    return this.serially(instanceId, () => this.release(instanceId, hold, why));
  }

  private async release(instanceId: string, hold: Hold, why: "bound" | "lease"): Promise<void> {
    // Ended while this waited (a switch or a rollback ran), or the control plane came back: nothing to release.
    if (this.holds.get(instanceId) !== hold || (why === "lease" && !this.controllerAway)) {
      hold.releasing = false;
      if (this.holds.get(instanceId) === hold) this.touch(instanceId);
      return;
    }
    const heldFor = ((Date.now() - hold.since) / 1000).toFixed(1);
    const because = why === "lease"
      ? `the link to the control plane is down (lease ${this.leaseMs} ms)`
      : `${Math.round(this.maxHoldMs / 1000)} s without a command from the control plane`;
    this.opts.log?.(`hold on ${instanceId} open for ${heldFor} s, ${because}: releasing it to ${hold.runtime}`);
    try {
      const r = await this.switchRouteNow(instanceId, hold.runtime, hold.runtime, { ownRelease: true });
      const reason = `deployment hold released by the bridge after ${heldFor} s (${because}): `
        + `${r.replayed} held + ${r.bufferedDuringSwitch} buffered MQTT message(s) replayed and ${r.httpReleased} HTTP request(s) released to ${hold.runtime}, which serves again; `
        + "the deployment's switch drains again first";
      this.opts.log?.(reason);
      this.releasedByBridge.set(instanceId, this.releasedByBridge.has(instanceId) ? withEarlierRelease(r, this.releasedByBridge.get(instanceId)!) : r);
      this.opts.onHoldReleased?.(instanceId, reason);
    } catch (err) {
      // Still held: try again after another bound or lease (a runtime or the broker that is down now may be back).
      this.opts.log?.(`releasing the hold on ${instanceId} failed: ${err instanceof Error ? err.message : String(err)}; trying again`);
      hold.releasing = false;
      this.holds.set(instanceId, hold);
      this.touch(instanceId);
      if (this.controllerAway) this.startLease(instanceId);
    }
  }

  /**
   * A hold the process driver's data plane released on its own (it lost its bridge: bridge/dataplane/lease.ts):
   * no longer open, and what it replayed belongs to the deployment's next switch, like the bridge's own release.
   */
  private async takeReleasedElsewhere(instanceId: string): Promise<void> {
    const route = this.driver.mqttFront(instanceId) as (ReturnType<BlueGreenDriver["mqttFront"]> & ReleasingRoute) | undefined;
    const r = await route?.takeRelease?.().catch((err: unknown) => {
      this.opts.log?.(`cannot read whether the data plane released the hold on ${instanceId}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
    if (!r) return;
    // A hold this bridge opened after that release (a drain re-run by the restarted bridge) is still open: it stays, with its baseline.
    const current = this.holds.get(instanceId);
    if (!current || current.since <= Date.parse(r.at)) {
      this.holdEnded(instanceId);
      this.atDrain.delete(instanceId);
    }
    // Gate and front figures of that hold are not known here: the control plane counts a lower bound for it.
    const asSwitch: CommandResult<"route.switch"> = {
      from: r.runtime, to: r.runtime, replayed: r.replayed, bufferedDuringSwitch: r.buffered, httpReleased: r.httpReleased, heldHttpReleasedOnBlue: 0, switchedAt: r.at,
    };
    this.releasedByBridge.set(instanceId, this.releasedByBridge.has(instanceId) ? withEarlierRelease(asSwitch, this.releasedByBridge.get(instanceId)!) : asSwitch);
    const reason = `deployment hold released by the data plane at ${r.at} (it lost its bridge): ${r.replayed} held + ${r.buffered} buffered MQTT message(s) replayed and ${r.httpReleased} HTTP request(s) released to ${r.runtime}`;
    this.opts.log?.(reason);
    this.opts.onHoldReleased?.(instanceId, reason);
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

  setGate(instanceId: string, args: CommandArgs<"gate.set">): Promise<CommandResult<"gate.set">> {
    this.touch(instanceId);
    return this.serially(instanceId, () => this.setGateNow(instanceId, args));
  }

  /** `baseline: false`: a drain re-done where this bridge does not know the hold's start (after a restart): its held figures are left out. */
  private async setGateNow(instanceId: string, args: CommandArgs<"gate.set">, opts: { baseline?: boolean } = {}): Promise<CommandResult<"gate.set">> {
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
    if (opts.baseline !== false && this.atDrain.get(instanceId)?.runtime !== runtime) {
      this.atDrain.set(instanceId, { runtime, gate: gateAtDrain.counters, ...(frontAtDrain ? { front: { held: frontAtDrain.held, refused: frontAtDrain.refused, ...(frontAtDrain.unanswered !== undefined ? { unanswered: frontAtDrain.unanswered } : {}), ...(frontAtDrain.heldRefused !== undefined ? { heldRefused: frontAtDrain.heldRefused } : {}) } } : {}) });
    }
    // The hold is open from here (held work waits for a hand-over): bounded, see `holds`.
    if (!this.holds.has(instanceId)) this.holds.set(instanceId, { runtime, since: Date.now() });
    this.touch(instanceId);
    // Opened while the control plane is away (the drain ran on as the link dropped): on the short lease at once.
    if (this.controllerAway) this.startLease(instanceId);
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
  switchRoute(instanceId: string, from: string, to: string): Promise<CommandResult<"route.switch">> {
    this.touch(instanceId);
    return this.serially(instanceId, () => this.switchRouteNow(instanceId, from, to));
  }

  /** `ownRelease`: the bridge's own release of a hold, whose figures wait for the deployment's next switch instead of carrying earlier ones. */
  private async switchRouteNow(instanceId: string, from: string, to: string, opts: { ownRelease?: boolean } = {}): Promise<CommandResult<"route.switch">> {
    this.touch(instanceId);
    await this.driver.ensureFronts(instanceId); // the fronts may not be known to this bridge process yet (see setGate)
    await this.takeReleasedElsewhere(instanceId);
    const servingNow = from !== to ? (await this.driver.servingOf(instanceId)).runtimeId : undefined;
    const prior = this.lastSwitch.get(instanceId);
    if (from !== to && servingNow === to && !this.holds.has(instanceId) && prior?.from === from && prior.to === to) {
      this.opts.log?.(`switch of ${instanceId} ${from} -> ${to} sent again after it completed: answering what it did`);
      return prior.result;
    }
    // Only while `from` is the committed serving runtime: a switch re-sent after it moved the routing must not hold anything again.
    if (from !== to && !this.holds.has(instanceId) && servingNow === from) {
      // Never a switch without a hold: this bridge knows of no open hold on `from` (it released it while the
      // control plane was away, its data plane did after losing its bridge, or it restarted since the drain).
      // Drain again first; on a gate and a front that still hold, this changes nothing. Stragglers past 10 s
      // finish on `from`, which stays warm (as in a rollback's drain of green).
      const known = this.releasedByBridge.has(instanceId);
      this.opts.log?.(`switch of ${instanceId} ${from} -> ${to}: no open hold known here (${known ? "released while the control plane was away" : "this bridge did not open it"}); draining ${from} again first`);
      await this.setGateNow(instanceId, { mode: "drain", runtime: from, drainTimeoutMs: 10_000 }, { baseline: known });
    }
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
    const earlier = opts.ownRelease ? undefined : this.releasedByBridge.get(instanceId);
    if (earlier) this.releasedByBridge.delete(instanceId);
    const answer = earlier ? withEarlierRelease(result, earlier) : result;
    if (!opts.ownRelease) this.lastSwitch.set(instanceId, { from, to, result: answer });
    return answer;
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
    // No baseline (this bridge restarted since the drain): requests a killed data plane cut inside this hold are still known to the front that came back (its request journal).
    if (!start || start.runtime !== from || !gate) return !start && front?.cutInHold ? { httpUnanswered: front.cutInHold } : {};
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
  rollback(instanceId: string, args: CommandArgs<"deployment.rollback">): Promise<CommandResult<"deployment.rollback">> {
    this.touch(instanceId);
    return this.serially(instanceId, () => this.rollbackNow(instanceId, args));
  }

  private async rollbackNow(instanceId: string, args: CommandArgs<"deployment.rollback">): Promise<CommandResult<"deployment.rollback">> {
    const { blue, green } = args;
    let result: CommandResult<"route.switch">;
    const serving = (await this.driver.servingOf(instanceId)).runtimeId;
    if (serving === green && green) {
      // After the switch: drain green like blue was drained, then move everything back.
      await this.setGateNow(instanceId, { mode: "drain", runtime: green, drainTimeoutMs: 10_000 });
      result = await this.switchRouteNow(instanceId, green, blue);
    } else {
      // Before the switch: blue's own hold queue goes back into blue.
      result = await this.switchRouteNow(instanceId, blue, blue);
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
