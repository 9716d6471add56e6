/**
 * Which OS process is a runtime's Node-RED: recorded in the slot's userDir
 * (<userDir>/runtime.json) when it is spawned, so a restarted bridge finds and
 * adopts the Node-RED an earlier bridge started instead of spawning a second
 * one on the same port (an EADDRINUSE boot loop, issue 12).
 *
 * A pid alone is not an identity: once the process is gone the kernel hands
 * the number to someone else. A recorded pid counts only while the process
 * still has the start time recorded with it (/proc/<pid>/stat field 22, clock
 * ticks since boot), is not a zombie, and works in the runtime's userDir (its
 * cwd; Node-RED sets process.title, which overwrites its argv in /proc, so the
 * userDir is not on its command line). Without /proc (not Linux) only "the
 * pid exists" can be checked; the Admin API answering with our token on the
 * slot's port is then what makes it ours.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { readJsonFile, writeFileAtomic } from "../../atomicFile.ts";

export const RUNTIME_FILE = "runtime.json";
/** Node-RED's own output, appended across boots; the boot-loop reason is read from its tail. */
export const LOG_FILE = "node-red.log";

const recordSchema = z.object({
  pid: z.number().int().positive(),
  /** /proc/<pid>/stat starttime; absent off Linux. */
  startTicks: z.string().optional(),
  port: z.number().int().positive(),
  startedAt: z.string(),
});
export type RuntimeRecord = z.infer<typeof recordSchema>;

/** The recorded process, or undefined when there is none or the file cannot be trusted (then the /proc scan decides). */
export async function readRecord(userDir: string): Promise<RuntimeRecord | undefined> {
  const raw = await readJsonFile<unknown>(path.join(userDir, RUNTIME_FILE)).catch(() => undefined);
  const parsed = recordSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

export async function writeRecord(userDir: string, pid: number, port: number): Promise<void> {
  const startTicks = await procStat(pid).then((s) => s?.startTicks);
  const record: RuntimeRecord = { pid, port, startedAt: new Date().toISOString(), ...(startTicks ? { startTicks } : {}) };
  await writeFileAtomic(path.join(userDir, RUNTIME_FILE), JSON.stringify(record));
}

export async function removeRecord(userDir: string): Promise<void> {
  await fs.rm(path.join(userDir, RUNTIME_FILE), { force: true });
}

const hasProc = fs.access("/proc/self/stat").then(() => true, () => false);

/** State and start time of a pid from /proc; undefined when it does not exist (or there is no /proc). */
async function procStat(pid: number): Promise<{ state: string; startTicks: string } | undefined> {
  const text = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (!text) return undefined;
  // Field 2 (comm) is in parentheses and may hold spaces: count fields after its closing one.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: rest[0] ?? "", startTicks: rest[19] ?? "" };
}

async function sameDir(pid: number, userDir: string): Promise<boolean> {
  const [cwd, real] = await Promise.all([fs.readlink(`/proc/${pid}/cwd`).catch(() => ""), fs.realpath(userDir).catch(() => userDir)]);
  return cwd === real;
}

/** True while `pid` is the Node-RED that works in `userDir` (and, when given, started at `startTicks`). */
export async function isRuntimeProcess(pid: number, userDir: string, startTicks?: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    // ESRCH: gone. EPERM: it exists but belongs to another user, so it is not a Node-RED this bridge started.
    return false;
  }
  if (!(await hasProc)) return true;
  const stat = await procStat(pid);
  // A zombie still answers kill(pid, 0); X is a process being reaped.
  if (!stat || stat.state === "Z" || stat.state === "X") return false;
  if (startTicks && stat.startTicks !== startTicks) return false;
  return sameDir(pid, userDir);
}

/**
 * Node-RED processes working in `userDir` (Linux only; [] elsewhere). Finds one
 * whose record was never written: a bridge killed between spawning Node-RED
 * and recording its pid.
 */
export async function scanRuntimeProcesses(userDir: string): Promise<number[]> {
  if (!(await hasProc)) return [];
  const real = await fs.realpath(userDir).catch(() => userDir);
  const found: number[] = [];
  for (const entry of await fs.readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cwd = await fs.readlink(`/proc/${entry}/cwd`).catch(() => "");
    if (cwd !== real) continue;
    const cmd = await fs.readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    // "node-red" once Node-RED set its title; node + red.js before that.
    if (cmd.startsWith("node-red") || cmd.includes("red.js")) found.push(Number(entry));
  }
  const alive = await Promise.all(found.map(async (pid) => ((await isRuntimeProcess(pid, userDir)) ? pid : undefined)));
  return alive.filter((p): p is number => p !== undefined);
}

/** Whether a Node-RED of this slot runs: its recorded process, or one found working in its userDir. */
export async function slotRuns(userDir: string): Promise<boolean> {
  const record = await readRecord(userDir);
  if (record && (await isRuntimeProcess(record.pid, userDir, record.startTicks))) return true;
  return (await scanRuntimeProcesses(userDir)).length > 0;
}

/**
 * Signals a runtime's whole process group (it was spawned detached, so it
 * leads its own group: nodes like `exec` that started children go with it),
 * or the pid alone when it leads no group (adopted from an older bridge).
 */
/**
 * What a stopped Node-RED left in its process group (an `npm install` it ran for POST /nodes keeps
 * running after Node-RED exits and keeps writing to the userDir): killed. The group only, never the
 * pid alone, which may be gone and reused.
 */
export function reapGroup(pid: number): void {
  try { process.kill(-pid, "SIGKILL"); } catch { /* the group is empty */ }
}

export function signalRuntime(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try { process.kill(pid, signal); } catch { /* already gone */ }
  }
}
