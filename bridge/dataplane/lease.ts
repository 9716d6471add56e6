/**
 * The data plane's lease on its bridge (issue 12 (f): the bridge killed while blue drains). A bridge that
 * attaches keeps one request open on the control socket (`POST /lease`); the kernel closes it the moment
 * the bridge process dies, however loaded the machine (no heartbeat to lag). With no bridge left, a hold
 * (blue drained, work held at the front and in the hold queue) has nobody to end it, so after `leaseMs`
 * the data plane ends it itself, the way a rollback before the switch does: the hold queue is collected
 * up to an end-of-hold marker and replayed, in order, to the runtime the front serves (the one committed
 * as serving: the hold is before its switch), that runtime's gate is told `active` on its retained control
 * topic (the data plane has no admin token, the gate obeys either), and the HTTP front releases what it held.
 * Held work is then answered after about `leaseMs`, not after the bridge's restart. What was released is
 * kept until the next bridge asks (`hold.takeRelease`), so the deployment's count includes it, and that
 * bridge's switch drains again before it hands over (never a switch without a hold).
 *
 * A hand-over under way (the bridge died inside a switch) is left alone: the restarted bridge's re-sent
 * switch converges on it (mqttFront.ts). A bridge that attaches while a release runs waits for it, so
 * its first call sees the result, never a half-released front.
 */
import type { FrontRegistry } from "../routing/frontRegistry.ts";
import { handOver } from "../routing/fronts.ts";

/** What the data plane released on its own, per instance, until a bridge takes it. */
export interface ReleaseRecord {
  runtime: string;
  at: string;
  replayed: number;
  buffered: number;
  httpReleased: number;
}

/** Used when the bridge does not say (`POST /lease {leaseMs}`); blueGreen.ts DEFAULT_HOLD_LEASE_MS is the same. */
export const DEFAULT_DATA_PLANE_LEASE_MS = 250;

export class HoldLease {
  private bridges = 0;
  private leaseMs = DEFAULT_DATA_PLANE_LEASE_MS;
  private timer?: NodeJS.Timeout;
  private releasing?: Promise<void>;
  private readonly released = new Map<string, ReleaseRecord>();

  constructor(private readonly fronts: FrontRegistry, private readonly log: (line: string) => void) {}

  /** A bridge took the lease; resolves once a release under way (if any) is over. */
  async attach(leaseMs: number | undefined): Promise<void> {
    this.bridges++;
    if (leaseMs !== undefined) this.leaseMs = leaseMs;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.releasing;
  }

  /** A bridge's lease connection closed (it died, stopped or restarts). */
  detach(): void {
    this.bridges = Math.max(0, this.bridges - 1);
    if (this.bridges > 0 || this.leaseMs <= 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.bridges > 0 || this.releasing) return;
      this.releasing = this.releaseAll().finally(() => { this.releasing = undefined; });
    }, this.leaseMs);
    this.timer.unref();
  }

  /** What was released for `instanceId` since a bridge last asked; forgotten once taken. */
  take(instanceId: string): ReleaseRecord | null {
    const r = this.released.get(instanceId) ?? null;
    this.released.delete(instanceId);
    return r;
  }

  private async releaseAll(): Promise<void> {
    for (const instanceId of this.fronts.instanceIds()) {
      if (this.bridges > 0) return; // a bridge is back: the rest is its to decide
      await this.releaseOne(instanceId).catch((err: unknown) => {
        // Still held (the hold spool keeps MQTT work; the front's 30 s bound answers HTTP): the next bridge's steps end it.
        this.log(`[${instanceId}] no bridge for ${this.leaseMs} ms, and releasing the hold failed: ${err instanceof Error ? err.message : String(err)}; it waits for the next bridge`);
      });
    }
  }

  private async releaseOne(instanceId: string): Promise<void> {
    const http = this.fronts.http(instanceId);
    const mqtt = this.fronts.mqtt(instanceId);
    const httpHolding = http?.holdingNow ?? false;
    if (!httpHolding && !mqtt?.holding) return;
    const runtime = mqtt?.serving;
    if (!mqtt || !runtime) {
      // Without the bus the data plane cannot reopen the gate (it has no admin token): released HTTP would only meet a draining gate.
      this.log(`[${instanceId}] no bridge for ${this.leaseMs} ms while a hold is open, but no MQTT front to reopen the gate with: left to the next bridge`);
      return;
    }
    if (mqtt.handingOver) {
      this.log(`[${instanceId}] no bridge for ${this.leaseMs} ms during a hand-over: left for the next bridge's switch to complete`);
      return;
    }
    const t0 = Date.now();
    this.log(`[${instanceId}] no bridge for ${this.leaseMs} ms while a hold is open: releasing it to ${runtime}, which serves`);
    const moved = await handOver(mqtt, runtime, runtime, () => mqtt.publishMode(runtime, "active"));
    const httpReleased = httpHolding && http ? await http.release() : 0;
    const prior = this.released.get(instanceId);
    this.released.set(instanceId, {
      runtime, at: new Date().toISOString(),
      replayed: moved.replayed + (prior?.replayed ?? 0), buffered: moved.buffered + (prior?.buffered ?? 0), httpReleased: httpReleased + (prior?.httpReleased ?? 0),
    });
    this.log(`[${instanceId}] hold released without a bridge in ${Date.now() - t0} ms: ${moved.replayed} held + ${moved.buffered} buffered MQTT message(s) replayed and ${httpReleased} HTTP request(s) released to ${runtime}`);
  }
}
