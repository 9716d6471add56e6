/**
 * The broker check (bridge/brokerCheck.ts) at start and again every `everyMs`: a broker that is
 * restarted with another configuration while the bridge runs (Mosquitto back on its default
 * `max_queued_messages 1000`, say) would otherwise go unnoticed until a host restart loses work.
 *
 * Each outcome goes to the log and, as `cluster.warnings`, to the control plane: a platform team
 * reads the console and the API, not this host's log. The first check always reports (an empty list
 * clears a warning an earlier start left); a later one reports only when the outcome changed, so a
 * warning's `detectedAt` stays when it was first seen. A check that could not run (broker away)
 * reports nothing: it learnt nothing, so what the control plane shows stays as it was.
 */
import { MAX_WARNING_MESSAGE, type ClusterWarning } from "../protocol/reports.ts";
import { checkBrokerQueue, type BrokerCheckOptions } from "./brokerCheck.ts";
import { errorMessage, type Logger } from "./log.ts";
import type { Reporter } from "./reporter.ts";

/** Default time between checks after the first: an hour (a check parks ~1,200 small QoS 1 messages for a moment). */
export const BROKER_CHECK_EVERY_MS = 60 * 60_000;

export interface BrokerWatchOptions {
  mqttUrl: string;
  reporter: Pick<Reporter, "send">;
  log: Logger;
  /** Time between the end of one check and the start of the next; 0: only at start. */
  everyMs?: number;
  check?: BrokerCheckOptions;
}

export class BrokerWatch {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** What the control plane was last told (warning codes and messages); undefined before the first report. */
  private reported: string | undefined;

  constructor(private readonly opts: BrokerWatchOptions) {}

  start(): void {
    this.run();
  }

  /** The check in progress, if any (close waits for it, bounded by the caller). */
  get current(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private run(): void {
    this.running = this.checkOnce().finally(() => {
      this.running = undefined;
      const every = this.opts.everyMs ?? BROKER_CHECK_EVERY_MS;
      if (!this.closed && every > 0) this.timer = setTimeout(() => this.run(), every).unref();
    });
  }

  private async checkOnce(): Promise<void> {
    const { log } = this.opts;
    let warnings: ClusterWarning[];
    try {
      const r = await checkBrokerQueue(this.opts.mqttUrl, this.opts.check);
      if (r.ok) log.info(`broker check: an offline session got all ${r.sent} of ${r.sent} queued QoS 1 messages`);
      else log.warn(`broker check: ${r.advice}`);
      warnings = r.ok ? [] : [{ code: "broker_queue_limit", message: (r.advice ?? `the broker kept only ${r.queued} of ${r.sent} queued QoS 1 messages`).slice(0, MAX_WARNING_MESSAGE), detectedAt: new Date().toISOString() }];
    } catch (err) {
      log.warn(`broker check could not run (the bridge goes on): ${errorMessage(err)}`);
      return;
    }
    const key = JSON.stringify(warnings.map((w) => [w.code, w.message]));
    if (key === this.reported) return;
    this.reported = key;
    // Retried like every report (Reporter); a give-up is logged there, and the next start reports again.
    await this.opts.reporter.send({ type: "cluster.warnings", warnings }, { orderKey: "cluster.warnings" });
  }
}
