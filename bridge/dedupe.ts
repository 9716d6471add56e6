/**
 * The command ledger: every command id this bridge has started, and its
 * outcome once known, kept on disk in the state dir. The control plane
 * redelivers a command until it is answered, also to a restarted bridge, so
 * the ledger is what makes "never execute the same id twice" true: a known
 * id is answered again from the ledger instead of being run again.
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
  finishedAt?: string;
  outcome?: CommandOutcome;
}

type JournalLine = { id: string; type?: string; startedAt?: string; finishedAt?: string; outcome?: CommandOutcome };

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
    const entry: LedgerEntry = { id, type, startedAt: new Date().toISOString() };
    this.remember(entry);
    return this.append({ id, type, startedAt: entry.startedAt });
  }

  finish(id: string, outcome: CommandOutcome): Promise<void> {
    const entry = this.entries.get(id) ?? { id, type: "unknown", startedAt: new Date().toISOString() };
    entry.outcome = outcome;
    entry.finishedAt = new Date().toISOString();
    if (!this.entries.has(id)) this.remember(entry);
    return this.append({ id, type: entry.type, startedAt: entry.startedAt, finishedAt: entry.finishedAt, outcome });
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
