/**
 * The orchestration in scripts/stack.ts without the Worker: each stand-in is
 * reached the way the Worker reaches it (Postgres only through the Neon relay
 * with the official driver, QStash with its client and token), and close()
 * hands every port back. The individual stand-ins have their own suites.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import ws from "ws";
import { Pool, neonConfig } from "@neondatabase/serverless";
import { Client as QStashClient } from "@upstash/qstash";
import { loadConfig, ROOT, type StackConfig } from "../../dev/config.ts";
import { neonLocalConfig } from "../../dev/neon-relay.ts";
import { assertPortFree, freePort, isReachable } from "../../dev/ports.ts";
import { startStack, type RunningStack } from "../../scripts/stack.ts";

async function stackConfig(stateDir: string): Promise<StackConfig> {
  const base = loadConfig();
  return {
    ...base,
    stateDir,
    ports: {
      api: await freePort(), postgres: await freePort(), neonRelay: await freePort(),
      qstash: await freePort(), upstashRelay: await freePort(), mqtt: await freePort(),
    },
    // Always the embedded stand-ins here, whatever the CI environment points at.
    postgres: { ...base.postgres, url: undefined },
    redisUrl: undefined,
    mqttUrl: undefined,
  };
}

/** The ports this stack binds with worker "none" (no API, no Upstash relay without REDIS_URL). */
const boundPorts = (cfg: StackConfig) => [cfg.ports.postgres, cfg.ports.neonRelay, cfg.ports.qstash, cfg.ports.mqtt];

let stateDir: string;
let cfg: StackConfig;
let stack: RunningStack | undefined;
const lines: string[] = [];

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stack-"));
  await fs.chmod(stateDir, 0o755); // as root, Postgres runs as "postgres" and must enter it
  cfg = await stackConfig(stateDir);
  stack = await startStack(cfg, { worker: "none", log: (s, l) => lines.push(`[${s}] ${l}`) });
});

afterAll(async () => {
  await stack?.close();
  await fs.rm(stateDir, { recursive: true, force: true });
});

describe("startStack without the Worker", () => {
  it("serves the migrated schema through the Neon relay to the official driver", async () => {
    Object.assign(neonConfig, neonLocalConfig(`127.0.0.1:${cfg.ports.neonRelay}`, ws));
    const pool = new Pool({ connectionString: stack!.workerVars.DATABASE_URL });
    try {
      const { rows } = await pool.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
      );
      const tables = rows.map((r) => r.table_name);
      for (const t of ["users", "roles", "clusters", "instances", "deployments", "audit_logs"]) expect(tables).toContain(t);
      // Every migration in the journal was applied, not just the first.
      const journal = JSON.parse(await fs.readFile(path.join(ROOT, "db/migrations/meta/_journal.json"), "utf8")) as { entries: unknown[] };
      const applied = await pool.query<{ n: string }>("SELECT count(*) AS n FROM drizzle.__drizzle_migrations");
      expect(Number(applied.rows[0]!.n)).toBe(journal.entries.length);
    } finally {
      await pool.end();
    }
  });

  it("runs the QStash emulator behind its token, with its state in the state dir", async () => {
    const good = new QStashClient({ token: cfg.qstash.token, baseUrl: stack!.workerVars.QSTASH_URL });
    await expect(good.schedules.list()).resolves.toBeInstanceOf(Array);
    const bad = new QStashClient({ token: "not-the-token", baseUrl: stack!.workerVars.QSTASH_URL, retry: false });
    await expect(bad.schedules.list()).rejects.toThrow();
    expect(stack!.qstash.url).toBe(`http://127.0.0.1:${cfg.ports.qstash}`);
    await good.schedules.create({ scheduleId: "stack-test", destination: "http://127.0.0.1:9/x", cron: "0 0 1 1 *" });
  });

  it("maps the stack onto the Worker's variables", () => {
    const v = stack!.workerVars;
    expect(v.NEON_LOCAL_PROXY).toBe(`127.0.0.1:${cfg.ports.neonRelay}`);
    expect(v.DATABASE_URL).toMatch(new RegExp(`^postgres://.+@127\\.0\\.0\\.1:${cfg.ports.postgres}/`));
    expect(v.PUBLIC_URL).toBe(`http://127.0.0.1:${cfg.ports.api}`);
    expect(v.UPSTASH_REDIS_REST_URL).toBeUndefined(); // no REDIS_URL: the Durable-Object store
    expect(stack!.kvBackend).toBe("durable-object");
    expect(lines.some((l) => l.includes("Durable-Object KV store"))).toBe(true);
  });

  it("starts the in-process MQTT broker and frees every port on close()", async () => {
    expect(stack!.mqttUrl).toBe(`mqtt://127.0.0.1:${cfg.ports.mqtt}`);
    expect(await isReachable(cfg.ports.mqtt)).toBe(true);
    await stack!.close();
    stack = undefined;
    for (const p of boundPorts(cfg)) await expect(assertPortFree(p, "after close")).resolves.toBeUndefined();
    // QStash keeps its schedules in the state dir, so they survive a restart.
    expect(await fs.readFile(path.join(stateDir, "qstash.json"), "utf8")).toContain("stack-test");
  });
});

describe("startStack with a port taken", () => {
  it("names the port and its variable, and starts nothing", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stack-"));
    const c = await stackConfig(dir);
    const blocker = net.createServer().listen(c.ports.mqtt, "127.0.0.1");
    await new Promise((r) => blocker.once("listening", r));
    try {
      const err = await startStack(c, { worker: "none" }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toBe(
        `port ${c.ports.mqtt} (mqtt broker) is already in use; stop whatever holds it or set REDFORGE_MQTT_PORT to a free port`,
      );
      for (const p of [c.ports.postgres, c.ports.neonRelay, c.ports.qstash]) await expect(assertPortFree(p, "x")).resolves.toBeUndefined();
      // Not even Postgres' data dir was created.
      expect(await fs.readdir(dir)).toEqual([]);
    } finally {
      blocker.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("stops what it started when a later step fails", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stack-"));
    await fs.chmod(dir, 0o755);
    const c = await stackConfig(dir);
    // Free during the port check, taken by the time the QStash emulator binds:
    // the failure comes after Postgres and the Neon relay are up.
    let blocker: net.Server | undefined;
    const log = (service: string, line: string) => {
      if (service === "neon-relay" && !blocker) blocker = net.createServer().listen(c.ports.qstash, "127.0.0.1");
      void line;
    };
    try {
      const err = await startStack(c, { worker: "none", log }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toContain(`${c.ports.qstash}`);
      for (const p of [c.ports.postgres, c.ports.neonRelay, c.ports.mqtt]) await expect(assertPortFree(p, "x")).resolves.toBeUndefined();
    } finally {
      blocker?.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("unwinds when aborted mid-start (Ctrl-C during start-up)", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stack-"));
    await fs.chmod(dir, 0o755);
    const c = await stackConfig(dir);
    const aborter = new AbortController();
    const log = (service: string) => { if (service === "neon-relay") aborter.abort(new Error("interrupted")); };
    try {
      const err = await startStack(c, { worker: "none", log, signal: aborter.signal }).then(() => undefined, (e: Error) => e);
      expect(err?.message).toBe("interrupted");
      for (const p of boundPorts(c)) await expect(assertPortFree(p, "x")).resolves.toBeUndefined();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

/** The wrangler dev process serving `port`, found as the OS sees it: the leader of its own process group. */
function wranglerPid(port: number): number {
  const rows = execFileSync("ps", ["-eo", "pid=,pgid=,args="], { encoding: "utf8" }).split("\n")
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l)).filter((m) => m !== null)
    .filter((m) => m[1] === m[2] && /wrangler/.test(m[3]!) && m[3]!.includes(` --port ${port} `));
  if (rows.length !== 1) throw new Error(`expected one wrangler dev on port ${port}, found ${rows.length}`);
  return Number(rows[0]![1]);
}

describe("startStack supervises its children (issue 12, item 11)", () => {
  it("wrangler dev killed with SIGKILL is restarted, says so in the log, and /api/health answers again", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stack-"));
    await fs.chmod(dir, 0o755);
    const c = await stackConfig(dir);
    const log: string[] = [];
    const s = await startStack(c, { worker: "wrangler", log: (svc, l) => log.push(`[${svc}] ${l}`), restartBackoff: { initialBackoffMs: 200 } });
    const health = () => fetch(`${s.apiUrl}/api/health`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.status, () => 0);
    try {
      expect(await health()).toBe(200);
      const pid = wranglerPid(c.ports.api);
      process.kill(pid, "SIGKILL");
      const deadline = Date.now() + 120_000;
      while (!(log.some((l) => l.startsWith("[worker] restarted after SIGKILL")) && (await health()) === 200)) {
        if (Date.now() > deadline) throw new Error(`not back within 120 s:\n${log.filter((l) => !l.startsWith("[postgres]")).slice(-20).join("\n")}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(log).toContainEqual(expect.stringMatching(/^\[worker\] exited unexpectedly \(SIGKILL\); restarting in 0\.2 s \(attempt 1\)$/));
      expect(wranglerPid(c.ports.api)).not.toBe(pid);
    } finally {
      await s.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
    // Closing stops supervision for good: nothing is restarted and the API port is free.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(log.filter((l) => l.includes("restarted after"))).toHaveLength(1);
    await expect(assertPortFree(c.ports.api, "after close")).resolves.toBeUndefined();
  }, 240_000);

  it("Postgres killed with SIGKILL is restarted on its data dir and serves the schema again", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stack-"));
    await fs.chmod(dir, 0o755);
    const c = await stackConfig(dir);
    const log: string[] = [];
    const s = await startStack(c, { worker: "none", log: (svc, l) => log.push(`[${svc}] ${l}`), restartBackoff: { initialBackoffMs: 200 } });
    Object.assign(neonConfig, neonLocalConfig(`127.0.0.1:${c.ports.neonRelay}`, ws));
    const users = async () => {
      const pool = new Pool({ connectionString: s.workerVars.DATABASE_URL });
      // Killing Postgres makes a connection still closing get FATAL 57P01 as an 'error' event: expected here, not a crash of the run.
      pool.on("error", () => {});
      try {
        return (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM users")).rows[0]!.n;
      } finally {
        await pool.end().catch(() => {});
      }
    };
    try {
      expect(await users()).toBeGreaterThanOrEqual(0);
      const pg = s.services.find((x) => x.name === "postgres")!;
      const pid = pg.pid!;
      process.kill(pid, "SIGKILL");
      const deadline = Date.now() + 90_000;
      for (;;) {
        if (log.some((l) => l.startsWith("[postgres] restarted after SIGKILL")) && (await users().then(() => true, () => false))) break;
        if (Date.now() > deadline) throw new Error(`not back within 90 s:\n${log.slice(-20).join("\n")}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(log).toContainEqual("[postgres] exited unexpectedly (SIGKILL); restarting in 0.2 s (attempt 1)");
      expect(pg.pid).not.toBe(pid);
    } finally {
      await s.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
    for (const p of boundPorts(c)) await expect(assertPortFree(p, "after close")).resolves.toBeUndefined();
  }, 180_000);
});
