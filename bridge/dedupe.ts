/**
 * The command ledger: every command id this bridge has started, and its
 * outcome once known, kept on disk in the state dir. The control plane
 * redelivers a command until it is answered, also to a restarted bridge, so
 * the ledger is what makes "never execute the same id twice" true: a known
 * id is answered again from the ledger instead of being run again.
 *
 * A command that was started but has no outcome was cut off: the bridge
 * stopped or was killed while it ran. Whether it runs again depends on its
 * type (`rerunsWhenInterrupted`):
 * - the blue-green deployment steps are written to converge when run again
 *   (bridge/deploy/blueGreen.ts: prepare finds or adopts its green, a gate is
 *   set to a mode, flows are deployed whole, a switch or rollback re-checks
 *   which runtime serves, cleanup stops what still runs), so a redelivery runs
 *   them again, at most MAX_STARTS times in all: a step that takes the bridge
 *   down with it every time must not do so forever. Failing the step instead
 *   would roll back (or fail) a deployment that a restarted bridge can finish.
 * - every other command (create, start, stop, destroy, scale, a health sweep)
 *   is answered `interrupted` and not run again: its effect is unknown, and
 *   the control plane decides (the restarted bridge has already converged
 *   each instance on its saved desired state).
 *
 * Storage is an append-only journal (one JSON line per start and per finish,
 * fsynced before the command runs), compacted into a fresh file with an
 * atomic rename on open and whenever it grows past twice the bound. Only the
 * newest `maxEntries` ids are kept: redelivery stops within a day, long
 * before 10,000 newer commands push an id out.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "./atomicFile.ts";

export interface CommandOutcome {
  status: "ok" | "error";
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

export interface LedgerEntry {
  id: string;
  type: string;
  startedAt: string;
  /** How many times it was started (a rerun after an interruption starts it again); 1 when absent. */
  starts?: number;
  finishedAt?: string;
  outcome?: CommandOutcome;
}

type JournalLine = { id: string; type?: string; startedAt?: string; starts?: number; finishedAt?: string; outcome?: CommandOutcome };

/** Command types that run again when a crash or shutdown cut them off (see the header). */
const RERUN_WHEN_INTERRUPTED: ReadonlySet<string> = new Set([
  "deployment.prepare", "gate.set", "flows.deploy", "smoke.run", "route.switch", "deployment.rollback", "deployment.cleanup", "gate.replay",
]);
/** Starts of one command id in all, reruns included. */
export const MAX_STARTS = 3;

/** Whether a command cut off by a stop runs again on redelivery, rather than being answered `interrupted`. */
export function rerunsWhenInterrupted(entry: LedgerEntry): boolean {
  return RERUN_WHEN_INTERRUPTED.has(entry.type) && (entry.starts ?? 1) < MAX_STARTS;
}

const FILE = "commands.jsonl";

export class CommandLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  private handle?: fs.FileHandle;
  private lines = 0;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(private readonly file: string, private readonly maxEntries: number) {}

  static async open(stateDir: string, opts: { maxEntries?: number } = {}): Promise<CommandLedger> {
    await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
    const ledger = new CommandLedger(path.join(stateDir, FILE), opts.maxEntries ?? 10_000);
    await ledger.load();
    // Rewriting at once also drops a line torn by a crash, so the next append starts clean.
    await ledger.compact();
    return ledger;
  }

  get(id: string): LedgerEntry | undefined {
    return this.entries.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Durable before it resolves: a crash after this point is remembered as "started, outcome unknown". */
  begin(id: string, type: string): Promise<void> {
    const starts = (this.entries.get(id)?.starts ?? (this.entries.has(id) ? 1 : 0)) + 1;
    const entry: LedgerEntry = { id, type, startedAt: new Date().toISOString(), ...(starts > 1 ? { starts } : {}) };
    this.entries.delete(id);
    this.remember(entry);
    return this.append({ id, type, startedAt: entry.startedAt, ...(entry.starts ? { starts: entry.starts } : {}) });
  }

  finish(id: string, outcome: CommandOutcome): Promise<void> {
    const entry = this.entries.get(id) ?? { id, type: "unknown", startedAt: new Date().toISOString() };
    entry.outcome = outcome;
    entry.finishedAt = new Date().toISOString();
    if (!this.entries.has(id)) this.remember(entry);
    return this.append({ id, type: entry.type, startedAt: entry.startedAt, ...(entry.starts ? { starts: entry.starts } : {}), finishedAt: entry.finishedAt, outcome });
  }

  async close(): Promise<void> {
    await this.serial(async () => {
      await this.handle?.close();
      this.handle = undefined;
    });
  }

  private remember(entry: LedgerEntry): void {
    this.entries.set(entry.id, entry);
    // Map iteration is insertion order, so the first keys are the oldest ids.
    for (const id of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(id);
    }
  }

  private async load(): Promise<void> {
    const text = await fs.readFile(this.file, "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return "";
      throw err;
    });
    for (const raw of text.split("\n")) {
      const line = parseLine(raw);
      if (!line) continue;
      const known = this.entries.get(line.id);
      if (known) Object.assign(known, stripUndefined(line));
      else this.remember({ id: line.id, type: line.type ?? "unknown", startedAt: line.startedAt ?? line.finishedAt ?? "", ...stripUndefined(line) });
    }
  }

  private append(line: JournalLine): Promise<void> {
    return this.serial(async () => {
      if (this.lines >= this.maxEntries * 2) await this.compactNow();
      this.handle ??= await fs.open(this.file, "a", 0o600);
      await this.handle.appendFile(`${JSON.stringify(line)}\n`, "utf8");
      await this.handle.datasync();
      this.lines++;
    });
  }

  private compact(): Promise<void> {
    return this.serial(() => this.compactNow());
  }

  private async compactNow(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    const body = [...this.entries.values()].map((e) => `${JSON.stringify(e)}\n`).join("");
    await writeFileAtomic(this.file, body);
    this.lines = this.entries.size;
  }

  /** Journal operations run one at a time: appends never interleave with a compaction. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(op, op);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

function parseLine(raw: string): JournalLine | undefined {
  if (!raw.trim()) return undefined;
  try {
    const line = JSON.parse(raw) as JournalLine;
    return typeof line?.id === "string" ? line : undefined;
  } catch {
    return undefined; // a line torn by a crash mid-append
  }
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}
