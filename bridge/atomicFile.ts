/**
 * Whole-file replacement that a crash cannot tear: write a sibling temp file,
 * fsync it, rename it over the target (atomic on POSIX), fsync the directory
 * so the rename itself survives a power cut.
 */
import fs from "node:fs/promises";
import path from "node:path";

export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const handle = await fs.open(tmp, "w", mode);
  try {
    await handle.writeFile(data, "utf8");
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(path.dirname(file));
}

async function syncDir(dir: string): Promise<void> {
  // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  const handle = await fs.open(dir, "r").catch(() => undefined);
  if (!handle) return;
  try { await handle.sync(); } catch { /* not supported */ } finally { await handle.close(); }
}

/** Reads a JSON file; undefined when it does not exist yet. */
export async function readJsonFile<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}
