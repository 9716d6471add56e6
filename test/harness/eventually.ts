/**
 * The one way the Node suites wait for something real (a process, a socket,
 * a report) to happen. Generous deadlines: tests pass on a loaded machine.
 */
type Probe<T> = () => T | undefined | false | null | Promise<T | undefined | false | null>;

export interface UntilOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Added to the timeout error: what the test saw (log lines, process output). */
  explain?: () => string;
  /** Stops waiting at once with this message (e.g. the process under test exited). */
  failIf?: () => string | undefined;
}

/** Polls `probe` until it returns a value other than undefined/false/null; a throw counts as "not yet". */
export async function until<T>(what: string, probe: Probe<T>, opts: UntilOptions = {}): Promise<T> {
  const { timeoutMs = 15_000, intervalMs = 50, explain, failIf } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve().then(probe).catch(() => undefined);
    if (value !== undefined && value !== false && value !== null) return value;
    const failure = failIf?.();
    if (failure) throw new Error(`${failure} while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${explain ? `:\n${explain()}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls `probe` until it returns something other than undefined (errors count as "not yet"). */
export function eventually<T>(probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  return until("condition", async () => {
    const v = await probe();
    return v === undefined ? undefined : { v };
  }, { timeoutMs: ms, intervalMs: 100 }).then(({ v }) => v);
}
