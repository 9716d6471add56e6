/**
 * Cron schedules: bookkeeping only. Firing (publishing the message) is the
 * engine's job; this module answers "what is due" and "when next".
 */
import crypto from "node:crypto";
import { nextCronTime } from "./parse.ts";
import type { DeliverySpec, StoredSchedule } from "./types.ts";

export class ScheduleBook {
  private readonly byId = new Map<string, StoredSchedule>();

  /** Restored schedules: firings missed while the emulator was down are skipped, not replayed in a burst. */
  restore(list: StoredSchedule[], now: number): void {
    for (const s of list) {
      if (s.nextScheduleTime === undefined || s.nextScheduleTime < now) s.nextScheduleTime = nextCronTime(s.cron, now);
      this.byId.set(s.scheduleId, s);
    }
  }

  /** Create, or replace the configuration of an existing id (keeping createdAt, pause state and history). */
  upsert(args: { scheduleId?: string; cron: string; spec: DeliverySpec; delayMs: number }, now: number): string {
    const id = args.scheduleId ?? `scd_${crypto.randomBytes(12).toString("base64url")}`;
    const prev = this.byId.get(id);
    this.byId.set(id, {
      scheduleId: id,
      cron: args.cron,
      createdAt: prev?.createdAt ?? now,
      spec: args.spec,
      delayMs: args.delayMs,
      isPaused: prev?.isPaused ?? false,
      nextScheduleTime: nextCronTime(args.cron, now),
      lastScheduleStates: prev?.lastScheduleStates ?? {},
      ...(prev?.lastScheduleTime !== undefined ? { lastScheduleTime: prev.lastScheduleTime } : {}),
    });
    return id;
  }

  get(id: string): StoredSchedule | undefined {
    return this.byId.get(id);
  }
  list(): StoredSchedule[] {
    return [...this.byId.values()];
  }
  get size(): number {
    return this.byId.size;
  }
  delete(id: string): boolean {
    return this.byId.delete(id);
  }

  setPaused(id: string, paused: boolean, now: number): boolean {
    const s = this.byId.get(id);
    if (!s) return false;
    s.isPaused = paused;
    // Resuming must not fire for every slot that passed while paused.
    if (!paused) s.nextScheduleTime = nextCronTime(s.cron, now);
    return true;
  }

  /** Schedules whose slot has come; each one's next slot is advanced past `now`. */
  takeDue(now: number): StoredSchedule[] {
    const due: StoredSchedule[] = [];
    for (const s of this.byId.values()) {
      if (s.isPaused || s.nextScheduleTime === undefined || s.nextScheduleTime > now) continue;
      due.push(s);
      s.nextScheduleTime = nextCronTime(s.cron, now);
    }
    return due;
  }

  /** Earliest upcoming slot of an active schedule, or Infinity. */
  nextDue(): number {
    let next = Infinity;
    for (const s of this.byId.values()) if (!s.isPaused && s.nextScheduleTime !== undefined) next = Math.min(next, s.nextScheduleTime);
    return next;
  }

  /** Records a delivery outcome against the firing that produced it. */
  recordOutcome(scheduleId: string | undefined, messageId: string, outcome: "SUCCESS" | "FAIL"): void {
    const s = scheduleId ? this.byId.get(scheduleId) : undefined;
    if (s && messageId in s.lastScheduleStates) s.lastScheduleStates[messageId] = outcome;
  }
}
