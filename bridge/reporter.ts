/**
 * Sends reports to the control plane as signed Standard Webhooks. Each
 * attempt gets a NEW webhook-id (the control plane refuses a seen id as a
 * replay) and a fresh timestamp; transient failures (network, 5xx, 429) are
 * retried with jittered backoff, a bounded number of times. Reports about one
 * instance go out strictly in order, so "failed" never overtakes the
 * "running" that came before it.
 */
import { bridgePaths } from "../protocol/paths.ts";
import { reportSchema, type Report } from "../protocol/reports.ts";
import { ControlPlaneClient, Refused, Undelivered, type RetryPolicy } from "./controlPlaneClient.ts";
import { errorMessage, type Logger } from "./log.ts";

export interface ReporterOptions {
  api: string;
  clusterId: string;
  secret: string;
  log: Logger;
  retry?: RetryPolicy;
  requestTimeoutMs?: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseMs: 500, capMs: 30_000 };

export class Reporter {
  private readonly client: ControlPlaneClient;
  private readonly path: string;
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly pending = new Set<Promise<boolean>>();
  private readonly abort = new AbortController();

  constructor(private readonly opts: ReporterOptions) {
    this.client = new ControlPlaneClient({ api: opts.api, secret: opts.secret, ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}) });
    this.path = bridgePaths.reports(opts.clusterId);
  }

  /**
   * Resolves true once the control plane accepted the report, false when it
   * was given up (logged). Never rejects. Reports with the same `orderKey`
   * are delivered one after another in call order.
   */
  send(report: Report, opts: { orderKey?: string } = {}): Promise<boolean> {
    const key = opts.orderKey;
    const previous = key ? this.chains.get(key) : undefined;
    const run = (previous ?? Promise.resolve()).then(() => this.deliver(report));
    if (key) {
      this.chains.set(key, run);
      void run.then(() => { if (this.chains.get(key) === run) this.chains.delete(key); });
    }
    this.pending.add(run);
    void run.then(() => this.pending.delete(run));
    return run;
  }

  /** Lets queued reports finish for up to `graceMs`, then abandons the rest (the control plane redelivers unanswered commands). */
  async close(graceMs = 5_000): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(), graceMs);
    await Promise.all([...this.pending]);
    clearTimeout(timer);
    this.abort.abort();
  }

  private async deliver(report: Report): Promise<boolean> {
    const checked = reportSchema.safeParse(report);
    if (!checked.success) {
      // Sending it would only earn a 400; this is a bridge bug, so say so loudly.
      this.opts.log.error(`report ${describe(report)} does not match the protocol, not sent: ${checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      return false;
    }
    const body = JSON.stringify(checked.data);
    const retry = this.opts.retry ?? DEFAULT_RETRY;
    try {
      await this.client.post(this.path, body, {
        retry,
        signal: this.abort.signal,
        onRetry: ({ attempt, delayMs, problem }) =>
          this.opts.log.warn(`report ${describe(report)}: ${problem}; attempt ${attempt + 1}/${retry.attempts} in ${(delayMs / 1000).toFixed(1)} s`),
      });
      return true;
    } catch (err) {
      if (err instanceof Refused) {
        this.opts.log.error(err.status === 401
          ? `report refused (401 ${err.code}): check the cluster secret and this host's clock; not retried`
          : `report refused (HTTP ${err.status} ${err.code}); not retried`);
      } else if (err instanceof Undelivered && err.aborted) {
        // Status changes the bridge's own shutdown causes are expected to go unsent: not an error.
        this.opts.log.info(`report ${describe(report)} not sent: the bridge is shutting down`);
      } else if (err instanceof Undelivered) {
        this.opts.log.error(`report ${describe(report)} given up (${err.attempts} attempts, last: ${err.problem})`);
      } else {
        this.opts.log.error(`report ${describe(report)} not sent: ${errorMessage(err)}`);
      }
      return false;
    }
  }
}

function describe(report: Report): string {
  switch (report.type) {
    case "command.result": return `command.result ${report.commandId}`;
    case "instance.status": return `instance.status ${report.instanceId}=${report.state}`;
    case "cluster.warnings": return `cluster.warnings (${report.warnings.map((w) => w.code).join(", ") || "none"})`;
    default: return `health.report (${report.instances.length} instance(s))`;
  }
}
