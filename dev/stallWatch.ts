/**
 * Names database stalls while they happen: every few seconds it asks Postgres
 * which sessions have run a statement or held a transaction open longer than
 * `afterMs`, and reports each once with what it waits on and which sessions
 * block it. A lock cycle through the application (a transaction holding a lock
 * while its request waits for a second connection that needs that lock) is
 * invisible to Postgres' deadlock detector; this line is what a hung test or a
 * stuck `npm start` leaves behind to say where (docs/ci.md).
 */
import fs from "node:fs";
import pg from "pg";

export interface StallWatchOptions {
  databaseUrl: string;
  report: (line: string) => void;
  /** A statement or a transaction older than this is a stall. */
  afterMs?: number;
  everyMs?: number;
}

export interface StallWatch {
  close(): Promise<void>;
  /** Stalls reported so far. */
  readonly reported: number;
}

interface Row {
  pid: number;
  state: string | null;
  wait: string | null;
  xact_s: number | null;
  query_s: number | null;
  blocked_by: number[];
  application_name: string;
  query: string;
  xact_start: string | null;
}

const ACTIVITY = `
  select pid, state, concat_ws(':', wait_event_type, wait_event) as wait,
         extract(epoch from now() - xact_start)::float8 as xact_s,
         extract(epoch from now() - query_start)::float8 as query_s,
         pg_blocking_pids(pid) as blocked_by, application_name,
         left(regexp_replace(query, '\\s+', ' ', 'g'), 200) as query, xact_start::text
  from pg_stat_activity
  where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
    and (xact_start < now() - make_interval(secs => $1) or (state = 'active' and query_start < now() - make_interval(secs => $1)))`;

/**
 * A report function that logs the line and, when REDFORGE_STALL_LOG names a file, appends it there
 * with its source (npm test points it into its report dir, and .ci/run prints that file at the end).
 */
export function stallLogTo(source: string, log: (line: string) => void): (line: string) => void {
  const file = process.env.REDFORGE_STALL_LOG;
  return (line) => {
    log(line);
    if (file) {
      try {
        fs.appendFileSync(file, `${new Date().toISOString()} [${source}] ${line}\n`);
      } catch {
        // A report that cannot be written must not break the stack it watches.
      }
    }
  };
}

export function startStallWatch(opts: StallWatchOptions): StallWatch {
  const afterS = (opts.afterMs ?? 8_000) / 1000;
  const seen = new Set<string>();
  let reported = 0;
  let client: pg.Client | undefined;
  let closed = false;
  let running: Promise<void> | undefined;

  const check = async () => {
    if (!client) {
      client = new pg.Client({ connectionString: opts.databaseUrl, application_name: "redforge-stall-watch", connectionTimeoutMillis: 5_000 });
      client.on("error", () => {});
      await client.connect();
    }
    const { rows } = await client.query<Row>({ text: ACTIVITY, values: [afterS], query_timeout: 5_000 } as pg.QueryConfig);
    for (const r of rows) {
      const key = `${r.pid}/${r.xact_start}/${r.query}`;
      if (seen.has(key)) continue;
      seen.add(key);
      reported++;
      opts.report(JSON.stringify({
        msg: "database stall", pid: r.pid, state: r.state, wait: r.wait || null,
        transactionSeconds: r.xact_s === null ? null : Math.round(r.xact_s), statementSeconds: r.query_s === null ? null : Math.round(r.query_s),
        blockedBy: r.blocked_by, query: r.query,
      }));
    }
  };
  const timer = setInterval(() => {
    if (running || closed) return;
    running = check()
      .catch(async () => {
        // The database restarting or going away: reconnect on the next tick.
        await client?.end().catch(() => {});
        client = undefined;
      })
      .finally(() => (running = undefined));
  }, opts.everyMs ?? 3_000);
  timer.unref();

  return {
    get reported() { return reported; },
    close: async () => {
      closed = true;
      clearInterval(timer);
      await running;
      await client?.end().catch(() => {});
    },
  };
}
