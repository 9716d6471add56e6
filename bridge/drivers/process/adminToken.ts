/**
 * The Admin API token of every Node-RED this driver runs, kept in the state
 * dir (<stateDir>/admin-token, mode 0600). Node-RED reads the token from its
 * environment once, at boot, so a Node-RED that outlives its bridge keeps the
 * token it was started with: a restarted bridge that made up a new one got 401
 * from every instance it had started (issue 12). Created once, then only read.
 *
 * Synchronous because the driver's constructor needs it. Created by writing a
 * temporary file (fsynced) and hard-linking it to the final name: the link
 * fails when the file already exists, so when two drivers start on the same
 * state dir at once the first writer wins and both read its token (a rename
 * would let the second overwrite a token the first already handed out).
 * Never logged.
 */
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";

export const ADMIN_TOKEN_FILE = "admin-token";

export function persistentAdminToken(stateDir: string): string {
  const file = path.join(stateDir, ADMIN_TOKEN_FILE);
  const existing = readToken(file);
  if (existing) return existing;
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const fd = fs.openSync(tmp, "wx", 0o600);
  try {
    fs.writeSync(fd, randomBytes(32).toString("base64url"));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  syncDir(stateDir);
  const token = readToken(file);
  if (!token) throw new Error(`the admin token file ${file} is empty; move it away to have a new one made (running instances then need a restart)`);
  return token;
}

function readToken(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function syncDir(dir: string): void {
  // Some filesystems refuse fsync on a directory; the link is still atomic there.
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch { /* not supported */ } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
