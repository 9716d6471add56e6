/**
 * Node-RED's output goes to a file in its userDir (<userDir>/node-red.log),
 * not to a pipe into the bridge: a Node-RED that outlives its bridge would
 * otherwise write into a closed pipe (EPIPE) and die with it. The bridge
 * follows the file for its own log and reads its tail for a boot loop's reason.
 */
import fs from "node:fs";

/** Rotated at a spawn once it is this big: one previous file (.1) is kept. */
const ROTATE_BYTES = 10 * 1024 * 1024;
/** How much of the file a boot-loop reason looks at. */
const TAIL_BYTES = 16 * 1024;

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Opens the log for a new boot (append), rotating it first when it grew too big; the fd and where this boot's output starts. */
export function openForBoot(file: string): { fd: number; offset: number } {
  if (fileSize(file) > ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
  const fd = fs.openSync(file, "a", 0o600);
  return { fd, offset: fs.fstatSync(fd).size };
}

/** The non-empty lines written since `from` (at most the last TAIL_BYTES of them). */
export function linesSince(file: string, from: number): string[] {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    const end = fs.fstatSync(fd).size;
    const start = Math.max(from, end - TAIL_BYTES);
    if (end <= start) return [];
    const buf = Buffer.alloc(end - start);
    fs.readSync(fd, buf, 0, buf.length, start);
    return buf.toString("utf8").split("\n").map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Follows the file from an offset, handing each new complete line to `onLine`. */
export class LogFollower {
  private offset = 0;
  private partial = "";
  private timer?: NodeJS.Timeout;
  private reading = false;

  constructor(private readonly file: string, private readonly onLine: (line: string) => void) {}

  start(offset: number): void {
    this.offset = offset;
    this.partial = "";
    this.timer ??= setInterval(() => this.poll(), 500);
    // Following a log never keeps the bridge alive.
    this.timer.unref();
  }

  stop(): void {
    this.poll();
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads what was appended since the last poll (synchronously: small reads, and no overlap with a rotation). */
  poll(): void {
    if (this.reading) return;
    this.reading = true;
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.file, "r");
      const end = fs.fstatSync(fd).size;
      // Rotated or truncated under us: start over at its beginning.
      if (end < this.offset) this.offset = 0;
      const len = Math.min(end - this.offset, 256 * 1024);
      if (len <= 0) return;
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, this.offset);
      this.offset += len;
      const lines = (this.partial + buf.toString("utf8")).split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) this.onLine(line);
    } catch {
      /* not there yet */
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
      this.reading = false;
    }
  }
}
