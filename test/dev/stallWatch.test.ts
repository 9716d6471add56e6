/**
 * The stall watch names a session that waits on a lock and the session that holds it, once per stall,
 * and stays quiet about short work.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "../../dev/config.ts";
import { freePort } from "../../dev/ports.ts";
import { startEmbeddedPostgres, type RunningPostgres } from "../../dev/postgres.ts";
import { startStallWatch } from "../../dev/stallWatch.ts";
import { until } from "../harness/eventually.ts";

let tmp: string;
let db: RunningPostgres;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-stall-"));
  await fs.chmod(tmp, 0o755); // as root, Postgres runs as "postgres" and must enter it
  db = await startEmbeddedPostgres(loadConfig(), { dataDir: path.join(tmp, "pg"), port: await freePort() });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe("stall watch", () => {
  it("reports a session waiting on a lock with the session that holds it, once; not quick work", async () => {
    const holder = new pg.Client({ connectionString: db.connectionString });
    const waiter = new pg.Client({ connectionString: db.connectionString });
    const quick = new pg.Client({ connectionString: db.connectionString });
    await Promise.all([holder.connect(), waiter.connect(), quick.connect()]);
    const lines: string[] = [];
    const watch = startStallWatch({ databaseUrl: db.connectionString, afterMs: 1_000, everyMs: 200, report: (l) => lines.push(l) });
    try {
      const holderPid = (await holder.query("select pg_backend_pid() as pid")).rows[0].pid as number;
      const waiterPid = (await waiter.query("select pg_backend_pid() as pid")).rows[0].pid as number;
      await holder.query("begin");
      await holder.query("select pg_advisory_xact_lock(4242)");
      const waiting = waiter.query("select pg_advisory_lock(4242)");
      await quick.query("select 1"); // short work, never reported

      const stalls = await until("the waiter's and the holder's stall lines", () => {
        const parsed = lines.map((l) => JSON.parse(l));
        const w = parsed.find((x) => x.pid === waiterPid);
        const h = parsed.find((x) => x.pid === holderPid);
        return w && h ? { w, h } : undefined;
      }, { timeoutMs: 30_000, explain: () => lines.join("\n") });
      expect(stalls.w).toMatchObject({ msg: "database stall", state: "active", wait: "Lock:advisory", blockedBy: [holderPid] });
      expect(stalls.w.query).toContain("pg_advisory_lock(4242)");
      // The holder is idle inside its transaction: the application, not the database, keeps it open.
      expect(stalls.h).toMatchObject({ state: "idle in transaction", blockedBy: [] });
      const seen = lines.length;
      await new Promise((r) => setTimeout(r, 1_000));
      expect(lines.length, "each stall is reported once").toBe(seen);
      expect(lines.every((l) => !l.includes("select 1"))).toBe(true);

      await holder.query("commit");
      await waiting;
    } finally {
      await watch.close();
      await Promise.all([holder.end(), waiter.end(), quick.end()]);
    }
  }, 60_000);
});
