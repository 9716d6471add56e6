/**
 * One bridge per state dir. Two bridges on the same `--state-dir` would run
 * every command twice against the same Node-REDs, fight over the data plane's
 * fronts and their MQTT sessions, and overwrite each other's instance files.
 *
 * `<state-dir>/bridge.lock` names the bridge that holds the dir: its pid, the
 * process's start time (/proc/<pid>/stat field 22, as runtime.json records a
 * Node-RED: a pid alone is reused by the kernel once its process is gone) and
 * when it took the lock. The lock is created with O_EXCL, so of two bridges
 * that start at once one wins. A lock whose process is gone, or whose pid now
 * belongs to another process (another start time), is stale: left by a bridge
 * that was killed; the next bridge takes it over and says so. Without /proc
 * (not Linux) only the pid's existence is checked.
 *
 * A lock held by this very process is taken over too: an in-process bridge
 * (tests, `npm start`) that was abandoned without `close()` is the only way
 * that happens, and refusing would strand the state dir until a restart.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";

export const LOCK_FILE = "bridge.lock";

const lockSchema = z.object({
  pid: z.number().int().positive(),
  startTicks: z.string().optional(),
  host: z.string().optional(),
  since: z.string(),
  /** Tells two holders apart within one process (a release removes only its own lock). */
  token: z.string().optional(),
});
export type StateLockRecord = z.infer<typeof lockSchema>;

/** Another live bridge holds the state dir: the CLI prints this and exits. */
export class StateDirLocked extends Error {
  constructor(readonly stateDir: string, readonly holder: StateLockRecord) {
    super(`another bridge (pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ""}, since ${holder.since}) uses the state dir ${stateDir}; `
      + `stop it first, or give this bridge its own --state-dir (${path.join(stateDir, LOCK_FILE)})`);
    this.name = "StateDirLocked";
  }
}

export interface StateLock {
  readonly file: string;
  /** The holder the lock was taken over from (a bridge that was killed), when it was stale. */
  readonly tookOverFrom?: StateLockRecord;
  /** Removes the lock if it is still ours. */
  release(): void;
}

function startTicksOf(pid: number): string | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // Field 3 (state) is rest[0]: a zombie has died all the same.
    if (rest[0] === "Z" || rest[0] === "X") return "dead";
    return rest[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `lock` still runs (same pid, same start time). */
export function lockHolderAlive(lock: StateLockRecord): boolean {
  try {
    process.kill(lock.pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user; a bridge of another user on our dir still counts as alive.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const ticks = startTicksOf(lock.pid);
  if (ticks === "dead") return false;
  if (ticks === undefined || lock.startTicks === undefined) return fs.existsSync("/proc/self/stat") ? ticks !== undefined : true;
  return ticks === lock.startTicks;
}

function readLock(file: string): StateLockRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const parsed = lockSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the state dir's lock for this process, or throws StateDirLocked when
 * another live bridge holds it. Synchronous on purpose: nothing else may touch
 * the dir before it returns.
 */
export function acquireStateLock(stateDir: string): StateLock {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, LOCK_FILE);
  const mine: StateLockRecord = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), token: randomUUID(), ...(startTicksOf(process.pid) ? { startTicks: startTicksOf(process.pid)! } : {}) };
  let tookOverFrom: StateLockRecord | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      try { fs.writeSync(fd, JSON.stringify(mine)); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
      return {
        file, ...(tookOverFrom ? { tookOverFrom } : {}),
        release: () => {
          const now = readLock(file);
          if (now && now.token === mine.token) fs.rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = readLock(file);
    // A lock file still being written by a bridge that is starting right now reads as empty: look again.
    if (!holder) {
      const age = Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      if (age < 2_000) { sleepSync(100); continue; }
    } else if (holder.pid !== process.pid && lockHolderAlive(holder)) {
      throw new StateDirLocked(stateDir, holder);
    }
    // Stale (its bridge is gone), unreadable for long, or left by this process: remove it and race for it again.
    tookOverFrom = holder ?? { pid: 0, since: "unknown (unreadable lock file)" };
    fs.rmSync(file, { force: true });
  }
  throw new Error(`could not take the lock ${file} (another bridge keeps starting on this state dir?)`);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
