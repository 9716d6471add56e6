import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import ws from "ws";
import pg from "pg";
import { Client, Pool, neon, neonConfig, NeonDbError } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import { drizzle as drizzleHttp } from "drizzle-orm/neon-http";
import { pgTable, serial, text } from "drizzle-orm/pg-core";
import { eq } from "drizzle-orm";
import { loadConfig } from "../../dev/config.ts";
import { freePort, isReachable } from "../../dev/ports.ts";
import { startEmbeddedPostgres, type RunningPostgres } from "../../dev/postgres.ts";
import { startNeonRelay, neonLocalConfig, FrontendFramer, type NeonRelay } from "../../dev/neon-relay.ts";

const widgets = pgTable("widgets", { id: serial("id").primaryKey(), name: text("name").notNull().unique() });

let tmp: string;
let db: RunningPostgres;
let relay: NeonRelay;
let relayPort: number;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-neon-"));
  await fs.chmod(tmp, 0o755); // as root, Postgres runs as "postgres" and must enter it
  db = await startEmbeddedPostgres(loadConfig(), { dataDir: path.join(tmp, "pg"), port: await freePort() });
  relayPort = await freePort();
  relay = await startNeonRelay({ port: relayPort });
  Object.assign(neonConfig, neonLocalConfig(`127.0.0.1:${relayPort}`, ws));
  const c = new pg.Client({ connectionString: db.connectionString });
  await c.connect();
  await c.query("CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL UNIQUE)");
  await c.query("CREATE TABLE hits (client int NOT NULL, n int NOT NULL)");
  await c.end();
});

afterAll(async () => {
  await relay?.close();
  await db?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Direct (relay-free) check of what actually landed in Postgres. */
async function direct<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: db.connectionString });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what} took over ${ms} ms`)), ms))]);
}

describe("neon relay: WebSocket (Pool/Client)", () => {
  it("runs a parameterised query with types parsed by the driver", async () => {
    const pool = new Pool({ connectionString: db.connectionString });
    try {
      const r = await pool.query("SELECT $1::int + 1 AS n, $2::text AS t, now() AS ts", [41, "hi"]);
      expect(r.rows[0].n).toBe(42);
      expect(r.rows[0].t).toBe("hi");
      expect(r.rows[0].ts).toBeInstanceOf(Date);
    } finally {
      await pool.end();
    }
  });

  it("keeps an interactive transaction on one session: ROLLBACK leaves nothing, COMMIT keeps", async () => {
    const pool = new Pool({ connectionString: db.connectionString });
    try {
      const client = await pool.connect();
      await client.query("BEGIN");
      await client.query("INSERT INTO widgets (name) VALUES ($1)", ["rolled-back"]);
      expect((await client.query("SELECT count(*)::int AS c FROM widgets WHERE name = 'rolled-back'")).rows[0].c).toBe(1);
      await client.query("ROLLBACK");
      await client.query("BEGIN");
      await client.query("INSERT INTO widgets (name) VALUES ($1)", ["committed"]);
      await client.query("COMMIT");
      client.release();
    } finally {
      await pool.end();
    }
    expect(await direct("SELECT name FROM widgets WHERE name IN ('rolled-back', 'committed')")).toEqual([{ name: "committed" }]);
  });

  it("serves 10 concurrent clients, each on its own tunnel, and client.end() returns", async () => {
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const client = new Client({ connectionString: db.connectionString, application_name: "relay-concurrency" });
        await client.connect();
        for (let n = 0; n < 5; n++) await client.query("INSERT INTO hits (client, n) VALUES ($1, $2)", [i, n]);
        await within(client.end(), 3_000, "client.end()");
      }),
    );
    const rows = await direct<{ client: number; c: number }>("SELECT client, count(*)::int AS c FROM hits GROUP BY client ORDER BY client");
    expect(rows).toEqual(Array.from({ length: 10 }, (_, i) => ({ client: i, c: 5 })));
    // The relay keeps the sessions' backends for the next clients: at most one each, none left
    // inside a transaction or running anything.
    let busy = -1;
    let all = 0;
    for (let tries = 0; tries < 40 && busy !== 0; tries++) {
      const [r] = await direct<{ busy: number; all: number }>(
        "SELECT count(*) FILTER (WHERE state <> 'idle')::int AS busy, count(*)::int AS all FROM pg_stat_activity WHERE application_name = 'relay-concurrency'");
      ({ busy, all } = r!);
      if (busy !== 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(busy).toBe(0);
    expect(all).toBeLessThanOrEqual(10);
  });

  it("logs in for the client as Neon's proxy does: the driver's production default (pipelined password) works", async () => {
    const client = new Client({ connectionString: db.connectionString });
    client.neonConfig.pipelineConnect = "password";
    await within(client.connect(), 5_000, "pipelined connect");
    try {
      expect((await client.query("SELECT current_user AS u")).rows[0].u).toBe(new URL(db.connectionString).username);
    } finally {
      await within(client.end(), 3_000, "client.end()");
    }
  });

  it("serves the next session from the backend the last one left, with that session's state discarded", async () => {
    const name = "relay-reuse";
    const first = new Client({ connectionString: db.connectionString, application_name: name });
    await first.connect();
    const pid = (await first.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await first.query("SET statement_timeout = 1234");
    await first.query("CREATE TEMP TABLE scratch (x int)");
    await first.query("SELECT pg_advisory_lock(4242)");
    await first.query("PREPARE leftover AS SELECT 1");
    await first.end();
    const reusedBefore = relay.backends.reused;
    // The backend goes back to the pool once ROLLBACK + DISCARD ALL ran: poll until the next session gets it.
    let second!: InstanceType<typeof Client>;
    let samePid = false;
    for (let tries = 0; tries < 40 && !samePid; tries++) {
      second = new Client({ connectionString: db.connectionString, application_name: name });
      await second.connect();
      samePid = (await second.query("SELECT pg_backend_pid() AS pid")).rows[0].pid === pid;
      if (!samePid) { await second.end(); await new Promise((r) => setTimeout(r, 50)); }
    }
    try {
      expect(samePid).toBe(true);
      expect(relay.backends.reused).toBeGreaterThan(reusedBefore);
      const r = (await second.query(`SELECT current_setting('statement_timeout') AS timeout, to_regclass('pg_temp.scratch') AS scratch,
        (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
        (SELECT count(*)::int FROM pg_prepared_statements) AS prepared, current_setting('application_name') AS app`)).rows[0];
      expect(r).toEqual({ timeout: "0", scratch: null, locks: 0, prepared: 0, app: name });
    } finally {
      await second.end();
    }
  });

  it("rolls back what a session left open in a transaction before another client gets its backend", async () => {
    const client = new Client({ connectionString: db.connectionString });
    await client.connect();
    await client.query("BEGIN");
    await client.query("INSERT INTO widgets (name) VALUES ('left-open')");
    await within(client.end(), 3_000, "client.end()");
    expect(await direct("SELECT name FROM widgets WHERE name = 'left-open'")).toEqual([]);
    const pool = new Pool({ connectionString: db.connectionString });
    try {
      expect((await pool.query("SELECT count(*)::int AS c FROM widgets WHERE name = 'left-open'")).rows[0].c).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it("answers a wrong password with Postgres's own error (28P01)", async () => {
    const url = new URL(db.connectionString);
    url.password = "not-the-password";
    const client = new Client({ connectionString: url.toString() });
    client.on("error", () => undefined);
    const err = await within(client.connect().then(() => undefined, (e: unknown) => e), 5_000, "refused connect");
    expect(err).toMatchObject({ code: "28P01" });
  });

  it("surfaces a Postgres error with its SQLSTATE", async () => {
    const pool = new Pool({ connectionString: db.connectionString });
    try {
      await pool.query("INSERT INTO widgets (name) VALUES ('dup-ws')");
      const err = await pool.query("INSERT INTO widgets (name) VALUES ('dup-ws')").catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "23505", constraint: "widgets_name_key" });
    } finally {
      await pool.end();
    }
  });

  it("works under drizzle-orm/neon-serverless", async () => {
    const pool = new Pool({ connectionString: db.connectionString });
    try {
      const orm = drizzle({ client: pool });
      const [inserted] = await orm.insert(widgets).values({ name: "drizzled" }).returning();
      const rows = await orm.select().from(widgets).where(eq(widgets.name, "drizzled"));
      expect(rows).toEqual([{ id: inserted!.id, name: "drizzled" }]);
    } finally {
      await pool.end();
    }
  });

  it("refuses a non-loopback address before connecting anywhere", async () => {
    // 0.0.0.0 would reach this machine's Postgres if the check were missing, so
    // a broken relay makes this test fail without sending traffic off the box.
    const status = await new Promise<number>((resolve, reject) => {
      const sock = new ws(`ws://127.0.0.1:${relayPort}/v2?address=0.0.0.0:${new URL(db.connectionString).port}`);
      sock.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      sock.on("open", () => reject(new Error("upgrade was accepted")));
      sock.on("error", () => undefined);
    });
    expect(status).toBe(403);
    const pool = new Pool({ connectionString: db.connectionString.replace("127.0.0.1", "0.0.0.0") });
    pool.on("error", () => undefined);
    try {
      await expect(within(pool.query("SELECT 1"), 5_000, "refused query")).rejects.toThrow();
    } finally {
      await pool.end().catch(() => undefined);
    }
  });

  it("in tunnel mode (the driver does SCRAM itself) runs a query", async () => {
    relay.auth = "tunnel";
    const pool = new Pool({ connectionString: db.connectionString });
    try {
      expect((await pool.query("SELECT 41 + 1 AS n")).rows[0].n).toBe(42);
    } finally {
      await pool.end();
      relay.auth = "relay";
    }
  });

  it("half-closes the TCP side on Terminate even if the server would not hang up (tunnel mode)", async () => {
    relay.auth = "tunnel";
    // A fake server that, unlike Postgres, never closes on 'X' (PGlite behaves so).
    let sawEnd!: () => void;
    const ended = new Promise<void>((r) => (sawEnd = r));
    const fake = net.createServer((s) => {
      s.on("data", () => undefined);
      s.on("end", () => sawEnd());
    });
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
    const fakePort = (fake.address() as net.AddressInfo).port;
    const sock = new ws(`ws://127.0.0.1:${relayPort}/v2?address=127.0.0.1:${fakePort}`);
    try {
      await new Promise((r, j) => (sock.once("open", r), sock.once("error", j)));
      const startup = Buffer.alloc(8);
      startup.writeInt32BE(8, 0);
      startup.writeInt32BE(196608, 4); // protocol 3.0, no parameters
      sock.send(startup);
      sock.send(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
      await within(ended, 2_000, "FIN after Terminate");
    } finally {
      relay.auth = "relay";
      sock.terminate();
      await new Promise((r) => fake.close(r));
    }
  });
});

describe("neon relay: SQL over HTTP (neon())", () => {
  it("runs parameterised queries in object, array and full-result modes", async () => {
    const sql = neon(db.connectionString);
    expect(await sql`SELECT ${7}::int AS n, ${"x"} AS s, ${null}::text AS nothing, true AS b`).toEqual([
      { n: 7, s: "x", nothing: null, b: true },
    ]);
    expect(await sql.query("SELECT $1::int * 2 AS d, '{1,2}'::int[] AS arr", [21], { arrayMode: true })).toEqual([[42, [1, 2]]]);
    const full = await sql.query("SELECT 1::int AS one", [], { fullResults: true });
    expect(full).toMatchObject({ command: "SELECT", rowCount: 1, rows: [{ one: 1 }] });
    expect(full.fields[0]).toMatchObject({ name: "one", dataTypeID: 23 });
  });

  it("runs sql.transaction() as one transaction, rolled back as a whole on error", async () => {
    const sql = neon(db.connectionString);
    const [ins, count] = await sql.transaction([
      sql`INSERT INTO widgets (name) VALUES (${"tx-a"}) RETURNING name`,
      sql`SELECT count(*)::int AS c FROM widgets WHERE name = ${"tx-a"}`,
    ]);
    expect(ins).toEqual([{ name: "tx-a" }]);
    expect(count).toEqual([{ c: 1 }]);

    const err = await sql
      .transaction([sql`INSERT INTO widgets (name) VALUES ('tx-b')`, sql`INSERT INTO widgets (name) VALUES ('tx-a')`])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeonDbError);
    expect(err).toMatchObject({ code: "23505", constraint: "widgets_name_key", severity: "ERROR" });
    expect(await direct("SELECT name FROM widgets WHERE name = 'tx-b'")).toEqual([]);
  });

  it("honours isolation level and read-only on a batch", async () => {
    const sql = neon(db.connectionString);
    const [settings] = await sql.transaction(
      [sql`SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro`],
      { isolationLevel: "Serializable", readOnly: true },
    );
    expect(settings).toEqual([{ iso: "serializable", ro: "on" }]);
    const err = await sql.transaction([sql`INSERT INTO widgets (name) VALUES ('ro')`], { readOnly: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "NeonDbError", code: "25006" });
  });

  it("returns Postgres errors as NeonDbError (HTTP 400) and rejects multi-statement strings like Neon", async () => {
    const sql = neon(db.connectionString);
    await sql`INSERT INTO widgets (name) VALUES ('dup-http')`;
    const dup = await sql`INSERT INTO widgets (name) VALUES ('dup-http')`.catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(NeonDbError);
    expect(dup).toMatchObject({ code: "23505", table: "widgets", detail: expect.stringContaining("dup-http") });
    const multi = await sql.query("SELECT 1; SELECT 2").catch((e: unknown) => e);
    expect(multi).toMatchObject({ code: "42601", message: expect.stringContaining("multiple commands") });
  });

  it("works under drizzle-orm/neon-http", async () => {
    const orm = drizzleHttp({ client: neon(db.connectionString) });
    await orm.insert(widgets).values({ name: "drizzle-http" });
    expect(await orm.select({ name: widgets.name }).from(widgets).where(eq(widgets.name, "drizzle-http"))).toEqual([
      { name: "drizzle-http" },
    ]);
  });

  it("refuses a non-loopback connection string", async () => {
    const sql = neon(db.connectionString.replace("127.0.0.1", "0.0.0.0"));
    await expect(sql`SELECT 1`).rejects.toThrow(/HTTP status 403.*not a loopback address/);
  });
});

describe("FrontendFramer", () => {
  it("finds Terminate only at a message boundary, across chunk splits", () => {
    const f = new FrontendFramer();
    const startup = Buffer.alloc(12);
    startup.writeInt32BE(12, 0);
    startup.writeInt32BE(196608, 4);
    startup.write("user", 8, "latin1"); // body bytes, never read as types
    // A Query whose payload contains 'X' bytes, then a Terminate split over two chunks.
    const query = Buffer.concat([Buffer.from("Q"), int32(4 + 5), Buffer.from("XXXX\0")]);
    const all = Buffer.concat([startup, query, Buffer.from([0x58, 0, 0, 0, 4])]);
    const cut = all.length - 3;
    expect(f.feed(all.subarray(0, cut))).toBe(false);
    expect(f.feed(all.subarray(cut))).toBe(true);
  });

  it("stops looking once TLS was accepted", () => {
    const f = new FrontendFramer();
    const ssl = Buffer.concat([int32(8), int32(80877103)]);
    expect(f.feed(ssl)).toBe(false);
    f.fromServer(Buffer.from("S"));
    expect(f.feed(Buffer.from([0x58, 0, 0, 0, 4]))).toBe(false);
  });
});

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

const machinePg = await isReachable(5432);
const machineUrl = "postgres://postgres@127.0.0.1:5432/test";

describe.skipIf(!machinePg)(`neon relay against the machine's Postgres (${machinePg ? "127.0.0.1:5432" : "skipped: nothing listens on 127.0.0.1:5432"})`, () => {
  it("runs a Pool query over the WebSocket tunnel", async () => {
    const pool = new Pool({ connectionString: machineUrl });
    try {
      const r = await pool.query("SELECT $1::int + 1 AS n, current_database() AS db", [1]);
      expect(r.rows[0]).toEqual({ n: 2, db: "test" });
    } finally {
      await pool.end();
    }
  });
});
