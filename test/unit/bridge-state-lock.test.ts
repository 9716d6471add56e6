/**
 * One bridge per state dir (bridge/stateLock.ts): a second bridge on the same
 * --state-dir is refused with a message naming the first; a lock left by a
 * bridge that was killed is taken over; a reused pid does not keep a lock alive.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { acquireStateLock, LOCK_FILE, StateDirLocked } from "../../bridge/stateLock.ts";

const dirs: string[] = [];
const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), "redforge-lock-")); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

/** A live process other than this one, holding a lock it wrote (as a second bridge would see it). */
function otherProcess(): { pid: number; startTicks: string; stop(): void } {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  const stat = fs.readFileSync(`/proc/${child.pid}/stat`, "utf8");
  const startTicks = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
  return { pid: child.pid!, startTicks, stop: () => child.kill("SIGKILL") };
}

describe("the bridge's state dir lock", () => {
  it("refuses a second bridge while the first one runs, naming it", () => {
    const dir = tmp();
    const other = otherProcess();
    try {
      fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, startTicks: other.startTicks, host: "h", since: "2026-12-02T00:00:00.000Z" }));
      let thrown: unknown;
      try { acquireStateLock(dir); } catch (err) { thrown = err; }
      expect(thrown).toBeInstanceOf(StateDirLocked);
      expect((thrown as Error).message).toContain(`pid ${other.pid}`);
      expect((thrown as Error).message).toContain(dir);
      // The first bridge's lock is untouched.
      expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid).toBe(other.pid);
    } finally {
      other.stop();
    }
  });

  it("takes over a lock whose bridge was killed, and says from whom", () => {
    const dir = tmp();
    const other = otherProcess();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, startTicks: other.startTicks, since: "2026-12-02T00:00:00.000Z" }));
    other.stop();
    // kill -9 is asynchronous: wait until the process is gone (a reaped or zombie child).
    const t0 = Date.now();
    while (Date.now() - t0 < 10_000) {
      try { process.kill(other.pid, 0); } catch { break; }
      const stat = fs.readFileSync(`/proc/${other.pid}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) break;
    }
    const lock = acquireStateLock(dir);
    expect(lock.tookOverFrom?.pid).toBe(other.pid);
    expect(JSON.parse(fs.readFileSync(lock.file, "utf8")).pid).toBe(process.pid);
    lock.release();
    expect(fs.existsSync(lock.file)).toBe(false);
  });

  it("does not count a pid reused by another process as the bridge that wrote the lock", () => {
    const dir = tmp();
    const other = otherProcess();
    try {
      // Same pid, another start time: the bridge that wrote this is gone and the kernel gave its pid away.
      fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, startTicks: "1", since: "2026-12-02T00:00:00.000Z" }));
      const lock = acquireStateLock(dir);
      expect(lock.tookOverFrom?.pid).toBe(other.pid);
      lock.release();
    } finally {
      other.stop();
    }
  });

  it("is free again once its bridge released it, and a release never removes someone else's lock", () => {
    const dir = tmp();
    const first = acquireStateLock(dir);
    first.release();
    const second = acquireStateLock(dir);
    expect(second.tookOverFrom).toBeUndefined();
    first.release(); // late, from the first holder: the second keeps its lock
    expect(fs.existsSync(second.file)).toBe(true);
    second.release();
  });
});
