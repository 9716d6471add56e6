/**
 * The bridge's one logging seam. A bridge runs unattended on a cluster, so
 * every line says what happened and what the bridge will do next; tests and
 * `npm start` swap the sink to capture or prefix lines.
 */
export type LogLevel = "info" | "warn" | "error";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A logger that hands each formatted line to `write` (stdout by default). */
export function lineLogger(write: (line: string, level: LogLevel) => void = defaultWrite): Logger {
  const emit = (level: LogLevel) => (message: string) => write(`${new Date().toISOString()} ${level.padEnd(5)} ${message}`, level);
  return { info: emit("info"), warn: emit("warn"), error: emit("error") };
}

function defaultWrite(line: string, level: LogLevel): void {
  (level === "info" ? process.stdout : process.stderr).write(`${line}\n`);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
