/**
 * The instances this bridge manages, kept in the state dir. The Driver
 * interface cannot list instances, yet a health sweep without explicit ids
 * must cover every one of them, also after the bridge restarts.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { readJsonFile, writeFileAtomic } from "./atomicFile.ts";

const FILE = "instances.json";

export class InstanceRegistry {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(private readonly file: string, private readonly known: Set<string>) {}

  static async open(stateDir: string): Promise<InstanceRegistry> {
    await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
    const file = path.join(stateDir, FILE);
    const saved = await readJsonFile<{ instances?: unknown }>(file);
    const ids = Array.isArray(saved?.instances) ? saved.instances.filter((x): x is string => typeof x === "string") : [];
    return new InstanceRegistry(file, new Set(ids));
  }

  ids(): string[] {
    return [...this.known];
  }

  has(id: string): boolean {
    return this.known.has(id);
  }

  add(id: string): Promise<void> {
    if (this.known.has(id)) return this.tail.then(() => undefined);
    this.known.add(id);
    return this.save();
  }

  remove(id: string): Promise<void> {
    if (!this.known.delete(id)) return this.tail.then(() => undefined);
    return this.save();
  }

  /** Saves run one after another, each writing the set as it is then, so the last write wins with the latest state. */
  private save(): Promise<void> {
    const run = this.tail.then(() => writeFileAtomic(this.file, JSON.stringify({ instances: [...this.known] })));
    this.tail = run.catch(() => undefined);
    return run;
  }
}
