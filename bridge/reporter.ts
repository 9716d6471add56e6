/**
 * Sends reports to the control plane as signed Standard Webhooks. Each
 * attempt gets a NEW webhook-id (the control plane refuses a seen id as a
 * replay) and a fresh timestamp; transient failures (network, 5xx, 429) are
 * retried with jittered backoff, a bounded number of times. Reports about one
 * instance go out strictly in order, so "failed" never overtakes the
 * "running" that came before it.
 */
import { reportSchema, type Report } from "../protocol/reports.ts";
import { webhookHeaders } from "../protocol/webhooks.ts";
import { backoffDelay, sleep, type BackoffPolicy } from "./backoff.ts";
import { errorMessage, type Logger } from "./log.ts";
import { errorCode, withTimeout } from "./token.ts";

export interface ReporterOptions {
  api: string;
  clusterId: string;
  secret: string;
  log: Logger;
  retry?: BackoffPolicy & { attempts: number };
  requestTimeoutMs?: number;
}

const DEFAULT_RETRY = { attempts: 8, baseMs: 500, capMs: 30_000 };

type Attempt = { done: true; delivered: boolean } | { done: false; problem: string; retryAfterMs?: number };

export class Reporter {
  private readonly url: string;
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly pending = new Set<Promise<boolean>>();
  private readonly abort = new AbortController();

  constructor(private readonly opts: ReporterOptions) {
    this.url = `${opts.api}/api/webhooks/clusters/${encodeURIComponent(opts.clusterId)}`;
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
    let attempts = 0;
    let problem = "";
    while (!this.abort.signal.aborted) {
      const outcome = await this.attempt(body);
      if (outcome.done) return outcome.delivered;
      problem = outcome.problem;
      if (++attempts >= retry.attempts) break;
      const delay = Math.max(backoffDelay(attempts - 1, retry), Math.min(outcome.retryAfterMs ?? 0, retry.capMs));
      this.opts.log.warn(`report ${describe(report)}: ${problem}; attempt ${attempts + 1}/${retry.attempts} in ${(delay / 1000).toFixed(1)} s`);
      await sleep(delay, this.abort.signal);
    }
    // Status changes the bridge's own shutdown causes are expected to go unsent: not an error.
    if (this.abort.signal.aborted) this.opts.log.info(`report ${describe(report)} not sent: the bridge is shutting down`);
    else this.opts.log.error(`report ${describe(report)} given up (${attempts} attempts, last: ${problem})`);
    return false;
  }

  private async attempt(body: string): Promise<Attempt> {
    let res: Response;
    try {
      // A fresh webhook-id per attempt: a retried id would be refused as a replay.
      const headers = await webhookHeaders(this.opts.secret, body);
      res = await fetch(this.url, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
        signal: withTimeout(this.opts.requestTimeoutMs ?? 15_000, this.abort.signal),
      });
    } catch (err) {
      return { done: false, problem: `cannot reach the control plane (${errorMessage(err)})` };
    }
    const text = await res.text().catch(() => "");
    if (res.ok) return { done: true, delivered: true };
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      return { done: false, problem: `HTTP ${res.status} ${errorCode(text)}`, retryAfterMs: retryAfter(res) };
    }
    if (res.status === 401) {
      this.opts.log.error(`report refused (401 ${errorCode(text)}): check the cluster secret and this host's clock; not retried`);
    } else {
      this.opts.log.error(`report refused (HTTP ${res.status} ${errorCode(text)}); not retried`);
    }
    return { done: true, delivered: false };
  }
}

function retryAfter(res: Response): number | undefined {
  const seconds = Number(res.headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

function describe(report: Report): string {
  switch (report.type) {
    case "command.result": return `command.result ${report.commandId}`;
    case "instance.status": return `instance.status ${report.instanceId}=${report.state}`;
    default: return `health.report (${report.instances.length} instance(s))`;
  }
}
