/**
 * The emulator's state machine: pending messages, retries with backoff, the
 * DLQ, deduplication and cron schedules, driven by one timer armed for the
 * earliest due item. HTTP concerns live in api.ts; this module only knows
 * about messages, so tests can drive it with a virtual clock through tick().
 */
import crypto from "node:crypto";
import { attemptDelivery, createTransport, destroyTransport, type Transport } from "./deliver.ts";
import { matches, type Filter } from "./filter.ts";
import { dedupKey, type PublishOptions } from "./parse.ts";
import { evalRetryDelay } from "./retry-delay.ts";
import { ScheduleBook } from "./schedules.ts";
import { loadState, saveState } from "./store.ts";
import type { AttemptResult, DeliverySpec, DlqEntry, StoredMessage, StoredSchedule } from "./types.ts";

/** QStash's documented backoff: min(1 day, e^(2.5·n)) seconds before retry n (n = 1, 2, ...). */
export const defaultRetryBackoff = (retried: number): number => Math.min(86_400, Math.exp(2.5 * retried)) * 1000;
const MAX_RETRY_DELAY_MS = 86_400_000;

const DEDUP_WINDOW_MS = 10 * 60_000;
// Real QStash parallelism is plan-limited; a cap here keeps a burst from flooding a local dev server.
const MAX_CONCURRENT_DELIVERIES = 50;
// setTimeout overflows past ~24.8 days; re-arming hourly is plenty for a dev clock.
const MAX_TIMER_MS = 3_600_000;
// Saves are coalesced: a burst of publishes rewrites the file once, not once per message.
// close() always flushes, so only a hard kill can lose this last window.
const SAVE_DELAY_MS = 25;

export interface EngineOptions {
  currentSigningKey: string;
  stateFile?: string;
  retryBackoff?: (retried: number) => number;
  log: (line: string) => void;
}

const rid = (prefix: string) => `${prefix}${crypto.randomBytes(12).toString("base64url")}`;

export class QStashEngine {
  private readonly messages = new Map<string, StoredMessage>();
  private readonly schedules = new ScheduleBook();
  private readonly dlq = new Map<string, DlqEntry>();
  private readonly dedup = new Map<string, { messageId: string; expiresAt: number }>();
  private readonly inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly transport: Transport = createTransport();
  private readonly backoff: (retried: number) => number;
  private timer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private dlqSeq = 0;
  private closed = false;

  constructor(private readonly opts: EngineOptions) {
    this.backoff = opts.retryBackoff ?? defaultRetryBackoff;
    if (opts.stateFile) this.restore(opts.stateFile);
  }

  private restore(file: string): void {
    const state = loadState(file, this.opts.log);
    const now = Date.now();
    for (const m of state.messages) {
      // An attempt cut short by the shutdown is simply due again: at-least-once, like QStash.
      if (m.state === "IN_PROGRESS") m.state = m.retried > 0 ? "RETRY" : "CREATED";
      this.messages.set(m.messageId, m);
    }
    this.schedules.restore(state.schedules, now);
    for (const d of state.dlq) this.dlq.set(d.dlqId, d);
    for (const [k, v] of state.dedup) if (v.expiresAt > now) this.dedup.set(k, v);
    const n = state.messages.length + state.schedules.length + state.dlq.length;
    if (n > 0) {
      this.opts.log(`restored ${state.messages.length} pending message(s), ${state.schedules.length} schedule(s), ${state.dlq.length} DLQ entr(y/ies) from ${file}`);
    }
  }

  start(): void {
    this.arm();
  }

  // ---- messages -------------------------------------------------------------

  publish(p: PublishOptions, now = Date.now(), scheduleId?: string): { messageId: string; deduplicated: boolean } {
    const key = dedupKey(p);
    if (key) {
      const hit = this.dedup.get(key);
      if (hit && hit.expiresAt > now) return { messageId: hit.messageId, deduplicated: true };
    }
    const m: StoredMessage = {
      ...p.spec,
      messageId: rid("msg_"),
      createdAt: now,
      notBefore: p.notBefore,
      retried: 0,
      state: "CREATED",
      ...(scheduleId ? { scheduleId } : {}),
      ...(key ? { dedupKey: key } : {}),
    };
    if (key) this.dedup.set(key, { messageId: m.messageId, expiresAt: now + DEDUP_WINDOW_MS });
    this.messages.set(m.messageId, m);
    this.changed();
    return { messageId: m.messageId, deduplicated: false };
  }

  getMessage(id: string): StoredMessage | undefined {
    return this.messages.get(id);
  }

  cancelMessages(filter: Filter): number {
    let n = 0;
    for (const m of [...this.messages.values()]) {
      if (!matches(filter, m.messageId, m)) continue;
      this.messages.delete(m.messageId);
      // Cancelling means no (further) delivery: an attempt on the wire is aborted and its outcome ignored.
      this.inFlight.get(m.messageId)?.controller.abort();
      n++;
    }
    if (n) this.changed();
    return n;
  }

  // ---- DLQ ------------------------------------------------------------------

  listDlq(filter: Filter): DlqEntry[] {
    return [...this.dlq.values()].filter((d) => matches(filter, d.dlqId, d.message, d.responseStatus));
  }

  deleteDlq(filter: Filter): number {
    const hit = this.listDlq(filter);
    for (const d of hit) this.dlq.delete(d.dlqId);
    if (hit.length) this.changed();
    return hit.length;
  }

  /** Re-publishes DLQ entries as fresh messages (new id, retry count reset). */
  retryDlq(filter: Filter, now = Date.now()): string[] {
    const ids: string[] = [];
    for (const d of this.listDlq(filter)) {
      this.dlq.delete(d.dlqId);
      const { messageId: _old, retried: _r, state: _s, dedupKey: _k, notBefore: _n, createdAt: _c, ...spec } = d.message;
      const m: StoredMessage = { ...spec, messageId: rid("msg_"), createdAt: now, notBefore: now, retried: 0, state: "CREATED" };
      this.messages.set(m.messageId, m);
      ids.push(m.messageId);
    }
    if (ids.length) this.changed();
    return ids;
  }

  // ---- schedules ------------------------------------------------------------

  upsertSchedule(args: { scheduleId?: string; cron: string; spec: DeliverySpec; delayMs: number }, now = Date.now()): string {
    const id = this.schedules.upsert(args, now);
    this.changed();
    return id;
  }
  getSchedule(id: string): StoredSchedule | undefined {
    return this.schedules.get(id);
  }
  listSchedules(): StoredSchedule[] {
    return this.schedules.list();
  }
  deleteSchedule(id: string): boolean {
    const had = this.schedules.delete(id);
    if (had) this.changed();
    return had;
  }
  setPaused(id: string, paused: boolean, now = Date.now()): boolean {
    const ok = this.schedules.setPaused(id, paused, now);
    if (ok) this.changed();
    return ok;
  }

  /** One firing: publish the schedule's message now (test hook and timer path alike). */
  fireSchedule(id: string, now = Date.now()): string {
    const s = this.schedules.get(id);
    if (!s) throw new Error(`no schedule ${id}`);
    const { messageId } = this.publish({ spec: s.spec, notBefore: now + s.delayMs, delayMs: s.delayMs, contentBasedDeduplication: false, ignored: [] }, now, s.scheduleId);
    s.lastScheduleTime = now;
    s.lastScheduleStates = { [messageId]: "IN_PROGRESS" };
    this.opts.log(`schedule ${id} (${s.cron}) fired → ${messageId}`);
    this.changed();
    return messageId;
  }

  // ---- the clock ------------------------------------------------------------

  /** Does everything due at `now` and resolves when the attempts it started have finished. */
  async tick(now = Date.now()): Promise<void> {
    await Promise.all(this.runDue(now));
  }

  /** Resolves once no delivery attempt is on the wire. */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight.values()].map((f) => f.done));
  }

  stats(): { pending: number; inFlight: number; dlq: number; schedules: number } {
    return { pending: this.messages.size, inFlight: this.inFlight.size, dlq: this.dlq.size, schedules: this.schedules.size };
  }

  private runDue(now: number): Promise<void>[] {
    if (this.closed) return [];
    for (const s of this.schedules.takeDue(now)) this.fireSchedule(s.scheduleId, now);
    const started: Promise<void>[] = [];
    for (const m of this.messages.values()) {
      if (this.inFlight.size >= MAX_CONCURRENT_DELIVERIES) break;
      if (m.state !== "IN_PROGRESS" && m.notBefore <= now) started.push(this.startAttempt(m));
    }
    this.arm();
    return started;
  }

  private arm(): void {
    if (this.closed) return;
    let next = this.schedules.nextDue();
    if (this.inFlight.size < MAX_CONCURRENT_DELIVERIES) {
      for (const m of this.messages.values()) if (m.state !== "IN_PROGRESS") next = Math.min(next, m.notBefore);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (next === Infinity) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runDue(Date.now());
    }, wait);
    this.timer.unref();
  }

  private startAttempt(m: StoredMessage): Promise<void> {
    m.state = "IN_PROGRESS";
    const controller = new AbortController();
    const done = (async () => {
      let result: AttemptResult;
      try {
        result = await attemptDelivery(m, this.opts.currentSigningKey, this.transport, controller.signal);
      } catch (err) {
        result = { ok: false, error: (err as Error).message };
      }
      this.inFlight.delete(m.messageId);
      if (this.closed) {
        // Left pending in the state file; delivered again after the restart.
        m.state = m.retried > 0 ? "RETRY" : "CREATED";
        return;
      }
      if (this.messages.get(m.messageId) === m) this.settle(m, result);
      this.arm();
    })();
    this.inFlight.set(m.messageId, { controller, done });
    return done;
  }

  private settle(m: StoredMessage, r: AttemptResult): void {
    const what = r.status !== undefined ? `HTTP ${r.status}` : (r.error ?? "error");
    if (r.ok) {
      this.messages.delete(m.messageId);
      this.schedules.recordOutcome(m.scheduleId, m.messageId, "SUCCESS");
      this.opts.log(`delivered ${m.messageId} → ${m.method} ${m.url} (${what}, retried ${m.retried})`);
    } else if (r.nonRetryable || m.retried >= m.maxRetries) {
      this.messages.delete(m.messageId);
      const dlqId = `${Date.now()}-${this.dlqSeq++}`;
      this.dlq.set(dlqId, {
        dlqId,
        message: { ...m, state: "CREATED" },
        failedAt: Date.now(),
        ...(r.status !== undefined ? { responseStatus: r.status } : {}),
        ...(r.headers ? { responseHeader: r.headers } : {}),
        ...(r.body ? { responseBody: r.body } : {}),
        ...(r.error ? { error: r.error } : {}),
      });
      this.schedules.recordOutcome(m.scheduleId, m.messageId, "FAIL");
      this.opts.log(`${m.messageId} → ${m.url} failed (${what}) after ${m.retried} retr(y/ies); moved to DLQ as ${dlqId}`);
    } else {
      // The destination's Retry-After wins, then the message's own expression, then the backoff.
      const delay = Math.min(
        MAX_RETRY_DELAY_MS,
        r.retryAfterMs ?? (m.retryDelay !== undefined ? evalRetryDelay(m.retryDelay, m.retried) : this.backoff(m.retried + 1)),
      );
      m.retried++;
      m.notBefore = Date.now() + delay;
      m.state = "RETRY";
      this.opts.log(`${m.messageId} → ${m.url} failed (${what}); retry ${m.retried}/${m.maxRetries} in ${Math.round(delay)} ms`);
    }
    this.changed();
  }

  // ---- persistence & shutdown ----------------------------------------------

  /** Something changed: re-arm the timer and (coalesced) persist. */
  private changed(): void {
    this.arm();
    if (!this.opts.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save();
    }, SAVE_DELAY_MS);
  }

  save(): void {
    if (!this.opts.stateFile) return;
    const now = Date.now();
    for (const [k, v] of this.dedup) if (v.expiresAt <= now) this.dedup.delete(k);
    try {
      saveState(this.opts.stateFile, {
        messages: [...this.messages.values()],
        schedules: this.schedules.list(),
        dlq: [...this.dlq.values()],
        dedup: [...this.dedup.entries()],
      });
    } catch (err) {
      this.opts.log(`could not save state to ${this.opts.stateFile}: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.saveTimer) clearTimeout(this.saveTimer);
    for (const f of this.inFlight.values()) f.controller.abort();
    await Promise.all([...this.inFlight.values()].map((f) => f.done));
    destroyTransport(this.transport);
    this.save();
  }
}
