/**
 * Delivers AI decision records to the control plane in batches: a batch closes
 * at MAX_AI_BATCH records, at MAX_AI_BATCH_BYTES of JSON, or `flushMs` after
 * its first record, whichever comes first; up to `concurrency` batches are in
 * flight at once. Each batch keeps one batchId across its retries (the control
 * plane stores it once) and gets a fresh webhook-id per attempt (a reused id is
 * refused as a replay).
 *
 * Nothing is dropped without a log line: transient failures (network, 5xx, 429)
 * are retried with jittered backoff for as long as it takes; the queue is
 * bounded (`maxQueued` records) and, when full, the oldest waiting batch is
 * dropped and counted; a batch the control plane refuses (4xx) is logged with
 * its size. A 403 naming foreign instances drops only their records and sends
 * the rest again.
 */
import { randomUUID } from "node:crypto";
import { MAX_AI_BATCH, MAX_AI_BATCH_BYTES, type AiDecisionRecord } from "../protocol/aiDecisions.ts";
import { bridgePaths } from "../protocol/paths.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { ControlPlaneClient, Refused, type PostOptions } from "./controlPlaneClient.ts";
import { errorMessage, type Logger } from "./log.ts";

export interface AiAuditSenderOptions {
  api: string;
  clusterId: string;
  secret: string;
  log: Logger;
  maxBatch?: number;
  flushMs?: number;
  /**
   * Batches in flight at once (default 4). bench/ai-ingest on the idle 2-core machine (session 9,
   * docs/performance-ingest.md): 4 stored 7,482 records/s at 10k offered; 8 stored 8,272/s but
   * its webhook p99 at 5k offered was 1,300 ms against 280 ms, so the default stays 4.
   */
  concurrency?: number;
  /** Records waiting (open batch + closed batches not yet sent) before the oldest batch is dropped. */
  maxQueued?: number;
  retry?: BackoffPolicy;
  requestTimeoutMs?: number;
  /** Called after every webhook attempt with its outcome and round-trip time (benchmarks). */
  onAttempt?: (attempt: { records: number; ms: number; outcome: "delivered" | "retry" | "refused" }) => void;
}

export interface AiAuditStats {
  accepted: number;
  delivered: number;
  /** Records given up: queue overflow, refused batches, shutdown. */
  dropped: number;
  batches: number;
}

interface Batch {
  id: string;
  /** Each record serialised once, when it arrives: its size decides the batch, its text is the body. */
  records: { instanceId: string; json: string }[];
  bytes: number;
}

// "{"batchId":"<uuid>","records":[" + "]}" and the separators between records.
const ENVELOPE_BYTES = 64;

export class AiAuditSender {
  readonly stats: AiAuditStats = { accepted: 0, delivered: 0, dropped: 0, batches: 0 };
  private readonly client: ControlPlaneClient;
  private readonly path: string;
  private open: Batch = newBatch();
  private timer: NodeJS.Timeout | undefined;
  private readonly waiting: Batch[] = [];
  private queued = 0;
  private inFlight = 0;
  private readonly abort = new AbortController();
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly flushMs: number;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly retry: BackoffPolicy;

  constructor(private readonly opts: AiAuditSenderOptions) {
    this.client = new ControlPlaneClient({ api: opts.api, secret: opts.secret, ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}) });
    this.path = bridgePaths.aiDecisions(opts.clusterId);
    this.maxBatch = Math.min(opts.maxBatch ?? MAX_AI_BATCH, MAX_AI_BATCH);
    this.flushMs = opts.flushMs ?? 200;
    this.concurrency = opts.concurrency ?? 4;
    this.maxQueued = opts.maxQueued ?? 100_000;
    this.retry = opts.retry ?? { baseMs: 250, capMs: 30_000 };
  }

  /** Queues one record (already validated against the protocol). */
  add(record: AiDecisionRecord): void {
    if (this.abort.signal.aborted) {
      this.drop(1, "the bridge is shutting down");
      return;
    }
    const json = JSON.stringify(record);
    const bytes = Buffer.byteLength(json) + 1;
    if (bytes + ENVELOPE_BYTES > MAX_AI_BATCH_BYTES) {
      this.drop(1, `a record of ${bytes} bytes is larger than a whole batch may be`);
      return;
    }
    if (this.open.bytes + bytes + ENVELOPE_BYTES > MAX_AI_BATCH_BYTES) this.cut();
    this.open.records.push({ instanceId: record.instanceId, json });
    this.open.bytes += bytes;
    this.stats.accepted++;
    this.queued++;
    if (this.open.records.length >= this.maxBatch) this.cut();
    else this.timer ??= setTimeout(() => this.cut(), this.flushMs);
    this.shed();
  }

  /** Resolves once everything accepted so far was delivered or given up. */
  idle(): Promise<void> {
    this.cut();
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Sends what is queued for up to `graceMs`, then gives up the rest (logged). */
  async close(graceMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((r) => { timer = setTimeout(r, graceMs); })]);
    clearTimeout(timer);
    this.abort.abort();
    const left = this.waiting.splice(0);
    for (const b of left) this.giveUp(b, "the bridge is shutting down");
  }

  private cut(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.open.records.length === 0) return;
    this.waiting.push(this.open);
    this.open = newBatch();
    this.pump();
  }

  /** Over the bound: the oldest waiting batch goes (the newest records are the ones still worth having). */
  private shed(): void {
    while (this.queued > this.maxQueued && this.waiting.length > 0) {
      this.giveUp(this.waiting.shift()!, `queue over ${this.maxQueued} records (control plane too slow or unreachable)`);
    }
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.waiting.length > 0 && !this.abort.signal.aborted) {
      const batch = this.waiting.shift()!;
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        this.pump();
        this.settleIdle();
      });
    }
  }

  private settleIdle(): void {
    if (this.queued === 0 && this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Until delivered, refused or the bridge shuts down: a control plane that is
   * away for hours gets the records when it is back (the queue bound sheds the oldest meanwhile).
   */
  private async deliver(batch: Batch): Promise<void> {
    const body = `{"batchId":${JSON.stringify(batch.id)},"records":[${batch.records.map((r) => r.json).join(",")}]}`;
    const options: PostOptions = {
      retry: { ...this.retry, attempts: Infinity },
      signal: this.abort.signal,
      onAttempt: ({ ms, outcome }) => this.opts.onAttempt?.({ records: batch.records.length, ms, outcome }),
      onRetry: ({ attempt, delayMs, problem }) => {
        if (attempt === 1 || attempt % 10 === 0) {
          this.opts.log.warn(`ai decisions: batch of ${batch.records.length}: ${problem}; retrying (attempt ${attempt + 1}) in ${(delayMs / 1000).toFixed(1)} s`);
        }
      },
    };
    try {
      await this.client.post(this.path, body, options);
    } catch (err) {
      if (!(err instanceof Refused)) return this.giveUp(batch, this.abort.signal.aborted ? "the bridge is shutting down" : errorMessage(err));
      const foreign = err.code === "instance_not_in_cluster" ? foreignIds(err.text) : [];
      if (!foreign.length) return this.giveUp(batch, `refused by the control plane (HTTP ${err.status} ${err.code})`);
      const theirs = new Set(foreign);
      const kept = batch.records.filter((r) => !theirs.has(r.instanceId));
      this.giveUp({ ...batch, records: batch.records.filter((r) => theirs.has(r.instanceId)) }, `instance(s) ${foreign.join(", ")} are not this cluster's`);
      // Nothing of the refused batch was stored, so the rest goes again under a new batch id.
      if (kept.length > 0) return this.deliver({ id: randomUUID(), records: kept, bytes: batch.bytes });
      return;
    }
    this.stats.delivered += batch.records.length;
    this.stats.batches++;
    this.queued -= batch.records.length;
  }

  private giveUp(batch: Batch, why: string): void {
    this.queued -= batch.records.length;
    this.drop(batch.records.length, why);
    this.settleIdle();
  }

  private drop(n: number, why: string): void {
    if (n === 0) return;
    this.stats.dropped += n;
    this.opts.log.error(`ai decisions: ${n} record(s) dropped: ${why} (${this.stats.dropped} dropped since start)`);
  }
}

function newBatch(): Batch {
  return { id: randomUUID(), records: [], bytes: 0 };
}

function foreignIds(text: string): string[] {
  try {
    const ids = (JSON.parse(text) as { error?: { details?: { instanceIds?: unknown } } }).error?.details?.instanceIds;
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return [];
  }
}
