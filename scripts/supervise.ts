/**
 * Keeps a child process of the local stack running: when it ends without
 * being asked to (wrangler dev once exited under a hostile request sequence
 * and the API stayed down, issue 12), it is started again after a backoff,
 * and the log says so each time. Only close() (Ctrl-C, SIGTERM, the stack's
 * own close) stops it for good.
 */
import type { RunningService } from "../dev/config.ts";

export interface SuperviseOptions {
  log: (line: string) => void;
  /** First wait before a restart; doubles per failed attempt up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A child that stayed up this long crashed afresh: its backoff starts over. */
  stableAfterMs?: number;
}

/**
 * Wraps `first` (already running) so that `restart()` replaces it whenever it
 * exits by itself (restart is given a signal that aborts when the stack
 * closes mid-restart). The wrapper is a RunningService whose pid is the current
 * child's and whose close() stops supervision, then the child.
 */
export function supervise(first: RunningService, restart: (signal: AbortSignal) => Promise<RunningService>, opts: SuperviseOptions): RunningService {
  if (!first.exited) return first;
  const initial = opts.initialBackoffMs ?? 1_000;
  const max = opts.maxBackoffMs ?? 30_000;
  const stableAfter = opts.stableAfterMs ?? 60_000;
  let current = first;
  let closing = false;
  // Aborts a restart in progress when the stack is closed (Ctrl-C while wrangler is coming back).
  const aborter = new AbortController();
  let wake: (() => void) | undefined;
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => { clearTimeout(timer); resolve(); };
  });

  const watch = async () => {
    let startedAt = Date.now();
    let attempt = 0;
    for (;;) {
      const how = await current.exited!;
      if (closing) return;
      if (Date.now() - startedAt >= stableAfter) attempt = 0;
      // The dead child's process group (e.g. workerd under wrangler) may still hold its port.
      await current.close().catch(() => {});
      for (;;) {
        attempt++;
        const delay = Math.min(max, initial * 2 ** (attempt - 1));
        opts.log(`exited unexpectedly (${how}); restarting in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})`);
        await sleep(delay);
        if (closing) return;
        try {
          current = await restart(aborter.signal);
        } catch (err) {
          if (closing) return;
          opts.log(`restart attempt ${attempt} failed: ${(err as Error).message.split("\n")[0]}`);
          continue;
        }
        if (closing) { await current.close(); return; }
        startedAt = Date.now();
        opts.log(`restarted after ${how} (attempt ${attempt}), pid ${current.pid ?? "?"}`);
        break;
      }
    }
  };
  const watching = watch().catch((err: unknown) => opts.log(`supervision stopped: ${String(err)}`));

  return {
    name: first.name,
    get url() { return current.url; },
    get pid() { return current.pid; },
    get exited() { return current.exited; },
    async close() {
      closing = true;
      aborter.abort(new Error("the stack is stopping"));
      wake?.();
      await current.close();
      await watching;
    },
  };
}
