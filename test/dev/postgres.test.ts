import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import pg from "pg";
import { loadConfig, ROOT } from "../../dev/config.ts";
import { freePort, PortInUseError } from "../../dev/ports.ts";
import { startEmbeddedPostgres } from "../../dev/postgres.ts";

const cfg = loadConfig();
let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pg-"));
  // As root the server runs as the "postgres" user, which must be able to enter this dir.
  await fs.chmod(tmp, 0o755);
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function query(connectionString: string, text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

function postgresPids(dataDir: string): Promise<number[]> {
  return fs.readdir("/proc").then(async (entries) => {
    const pids: number[] = [];
    for (const e of entries) {
      if (!/^\d+$/.test(e)) continue;
      const cmd = await fs.readFile(`/proc/${e}/cmdline`, "utf8").catch(() => "");
      if (cmd.includes("postgres") && cmd.includes(dataDir)) pids.push(Number(e));
    }
    return pids;
  });
}

describe("embedded postgres", () => {
  it("creates the database, keeps data across restarts and leaves no process behind", async () => {
    const dataDir = path.join(tmp, "persist");
    const port = await freePort();
    const logs: string[] = [];

    const first = await startEmbeddedPostgres(cfg, { dataDir, port, onLog: (l) => logs.push(l) });
    try {
      expect(first.connectionString).toBe(
        `postgres://${cfg.postgres.user}:${cfg.postgres.password}@127.0.0.1:${port}/${cfg.postgres.database}`,
      );
      const db = await query(first.connectionString, "SELECT current_database() AS db");
      expect(db.rows[0].db).toBe(cfg.postgres.database);
      await query(first.connectionString, "CREATE TABLE notes (id int PRIMARY KEY, body text)");
      await query(first.connectionString, "INSERT INTO notes VALUES ($1, $2)", [1, "kept"]);
      expect(logs.some((l) => l.includes("initialising a new cluster"))).toBe(true);
    } finally {
      await first.close();
    }
    expect(await postgresPids(dataDir)).toEqual([]);
    await expect(query(first.connectionString, "SELECT 1")).rejects.toThrow();
    await first.close(); // idempotent

    logs.length = 0;
    const second = await startEmbeddedPostgres(cfg, { dataDir, port, onLog: (l) => logs.push(l) });
    try {
      expect(logs.some((l) => l.includes("initialising a new cluster"))).toBe(false);
      const rows = await query(second.connectionString, "SELECT body FROM notes WHERE id = $1", [1]);
      expect(rows.rows).toEqual([{ body: "kept" }]);
    } finally {
      await second.close();
    }
    expect(await postgresPids(dataDir)).toEqual([]);
  });

  it("refuses a taken port with PortInUseError naming REDFORGE_PG_PORT", async () => {
    const port = await freePort();
    const blocker = net.createServer().listen(port, "127.0.0.1");
    await new Promise((r) => blocker.once("listening", r));
    try {
      const err = await startEmbeddedPostgres(cfg, { dataDir: path.join(tmp, "taken"), port }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as Error).message).toContain("REDFORGE_PG_PORT");
      // Nothing was initialised for a start that could not happen.
      await expect(fs.access(path.join(tmp, "taken", "PG_VERSION"))).rejects.toThrow();
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it("recovers from a run that was killed with SIGKILL (orphan postmaster)", async () => {
    const dataDir = path.join(tmp, "orphan");
    const port = await freePort();
    // A separate Node process starts Postgres and is then killed without any chance to clean up.
    const script =
      `const { startEmbeddedPostgres } = await import(${JSON.stringify(path.join(ROOT, "dev/postgres.ts"))});` +
      `const { loadConfig } = await import(${JSON.stringify(path.join(ROOT, "dev/config.ts"))});` +
      `await startEmbeddedPostgres(loadConfig(), { dataDir: ${JSON.stringify(dataDir)}, port: ${port} });` +
      `console.log("READY"); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => d.toString().includes("READY") && resolve());
      child.once("exit", (code) => reject(new Error(`helper exited early (${code})`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const orphans = await postgresPids(dataDir);
    expect(orphans.length).toBeGreaterThan(0);

    try {
      const logs: string[] = [];
      const again = await startEmbeddedPostgres(cfg, { dataDir, port, onLog: (l) => logs.push(l) });
      try {
        expect(logs.some((l) => l.includes("left running on") && l.includes("killed run"))).toBe(true);
        const r = await query(again.connectionString, "SELECT 1 AS one");
        expect(r.rows[0].one).toBe(1);
      } finally {
        await again.close();
      }
      expect(await postgresPids(dataDir)).toEqual([]);
    } finally {
      // If recovery failed, do not leave the orphan this test created.
      for (const pid of await postgresPids(dataDir)) process.kill(pid, "SIGINT");
    }
  });

  it("removes a postmaster.pid whose PID is not a postgres", async () => {
    const dataDir = path.join(tmp, "stalepid");
    const port = await freePort();
    const first = await startEmbeddedPostgres(cfg, { dataDir, port });
    await first.close();
    // PID reuse after a reboot: the lock file names a live, unrelated process
    // of the server's own user (Postgres ignores PIDs of other users itself).
    const owner = await fs.stat(dataDir);
    const asOwner = process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {};
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore", ...asOwner });
    try {
      await fs.writeFile(path.join(dataDir, "postmaster.pid"), `${sleeper.pid}\n${dataDir}\n`);
      const logs: string[] = [];
      const again = await startEmbeddedPostgres(cfg, { dataDir, port, onLog: (l) => logs.push(l) });
      try {
        expect(logs.some((l) => l.startsWith("removing stale"))).toBe(true);
        expect((await query(again.connectionString, "SELECT 2 AS two")).rows[0].two).toBe(2);
      } finally {
        await again.close();
      }
    } finally {
      sleeper.kill();
    }
  });
});
