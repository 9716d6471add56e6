import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { openDb } from "../db/client.ts";
import type { Env } from "../core/env.ts";
import type { ClusterLinkApi, ClusterLinkStatus, EnqueueOptions, OutboxEntry, OutboxStatus, ReplyTo } from "../core/objects.ts";
import { applyInstanceStatus } from "../core/fleet/instanceStatus.ts";
import { announceClusterLink } from "../core/fleet/clusterConnection.ts";
import { assertJsonWithinLimits } from "../core/jsonLimits.ts";
import { recordMetrics, roundTripObserved } from "../core/metrics/record.ts";
import { bridgeFrameSchema, newCommandId, type Command, type CommandType, type ServerFrame } from "../protocol/commands.ts";

/**
 * How long a bridge has to answer a fleet command before the instance is
 * marked `unknown`. Deployment steps are not here: their deadlines live in
 * one table (durable/deploymentRun/steps.ts) and come with the command.
 */
const FLEET_TIMEOUT_MS: Partial<Record<CommandType, number>> = {
  "instance.create": 180_000, "instance.start": 120_000, "instance.stop": 60_000, "instance.destroy": 60_000,
  "instance.scale": 180_000, "instance.restart": 180_000, "health.report": 60_000,
};

const OPEN: OutboxStatus[] = ["pending", "sent", "received"];

interface OutboxRow {
  id: string; type: CommandType; instance_id: string | null; args: string; issued_at: string;
  status: OutboxStatus; not_before: number; deadline: number; attempts: number; reply_to: string | null;
  [key: string]: SqlStorageValue;
}

/**
 * The outbox's schema changes, in order, applied once per object (the version
 * is kept in `meta`); each must be safe on a table with rows in it.
 */
const MIGRATIONS: string[][] = [
  // 1: who an answer belongs to; commands a deployment queued before (its id in the args) keep their owner.
  [
    "ALTER TABLE outbox ADD COLUMN reply_to TEXT",
    `UPDATE outbox SET reply_to = json_object('kind', 'deployment', 'id', json_extract(args, '$.deploymentId'))
      WHERE reply_to IS NULL AND json_extract(args, '$.deploymentId') IS NOT NULL`,
  ],
];

const replyToSchema = z.object({ kind: z.literal("deployment"), id: z.string() }) satisfies z.ZodType<ReplyTo>;

/**
 * One object per cluster: holds the bridge's WebSocket (Hibernation API), an
 * outbox of commands that are redelivered until the bridge answers (the
 * bridge dedupes by id), and one alarm for both delayed sends and deadlines.
 * Every command is written to the outbox before it is sent.
 */
export class ClusterLink extends DurableObject<Env> implements ClusterLinkApi {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
      id TEXT PRIMARY KEY, type TEXT NOT NULL, instance_id TEXT, args TEXT NOT NULL, issued_at TEXT NOT NULL,
      status TEXT NOT NULL, not_before INTEGER NOT NULL, deadline INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
      result TEXT, updated_at INTEGER NOT NULL)`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS outbox_open ON outbox (status, not_before)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    // The constructor runs before any request or alarm is delivered, so no call sees a half-migrated table.
    for (let v = Number(this.getMeta("schemaVersion") ?? 0); v < MIGRATIONS.length; v++) {
      this.ctx.storage.transactionSync(() => {
        for (const statement of MIGRATIONS[v]!) this.sql.exec(statement);
        this.setMeta("schemaVersion", String(v + 1));
      });
    }
  }

  /** The Worker has already authenticated the bridge (cluster token) before forwarding the upgrade. */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const clusterId = request.headers.get("X-Redforge-Cluster-Id") ?? "";
    this.setMeta("clusterId", clusterId);
    // One bridge per cluster: a reconnecting bridge replaces its stale socket.
    for (const old of this.ctx.getWebSockets("bridge")) {
      try { old.close(4000, "replaced by a newer connection"); } catch { /* gone */ }
    }
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], ["bridge"]);
    this.setMeta("connectedAt", new Date().toISOString());
    this.sendFrame(pair[1], { kind: "welcome", clusterId, pending: this.openCount() });
    this.deliverDue(pair[1], { redeliver: true });
    await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async enqueue(type: CommandType, instanceId: string | undefined, args: Record<string, unknown>, opts: EnqueueOptions = {}): Promise<OutboxEntry> {
    const now = Date.now();
    if (opts.id) {
      const existing = this.sql.exec<OutboxRow>("SELECT * FROM outbox WHERE id = ?", opts.id).toArray()[0];
      if (existing) return toEntry(existing);
    }
    const timeoutMs = opts.timeoutMs ?? FLEET_TIMEOUT_MS[type];
    if (timeoutMs === undefined) throw new Error(`${type} has no default deadline: its sender (a deployment step) passes timeoutMs`);
    const entry: OutboxEntry = { id: opts.id ?? newCommandId(), type, ...(instanceId ? { instanceId } : {}), issuedAt: new Date(now).toISOString(), replyTo: opts.replyTo ?? null };
    const notBefore = now + Math.max(0, opts.delayMs ?? 0);
    this.sql.exec(
      "INSERT INTO outbox (id, type, instance_id, args, issued_at, status, not_before, deadline, updated_at, reply_to) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
      entry.id, type, instanceId ?? null, JSON.stringify(args), entry.issuedAt, notBefore, notBefore + timeoutMs, now,
      entry.replyTo ? JSON.stringify(entry.replyTo) : null,
    );
    const ws = this.bridge();
    if (ws && notBefore <= now) this.deliverDue(ws, { redeliver: false });
    // The new command's next moment (its send, or its deadline once sent); every other open command is
    // already covered by the alarm that is set. Not scheduleAlarm(): it scans every open command and
    // the day's finished ones on each enqueue (~40 % of a creation's time in this object); the alarm
    // does that sweep and sets the exact next time when it runs.
    await this.alarmBy(notBefore > now ? notBefore : notBefore + timeoutMs);
    return entry;
  }

  /**
   * Records the bridge's answer. `first` is false for a duplicate answer, so
   * the caller applies a result's effects exactly once; a late answer to a
   * timed-out command still counts (it corrects the `unknown` status).
   */
  async complete(commandId: string, ok: boolean, result: unknown): Promise<{ command: OutboxEntry | null; first: boolean }> {
    const row = this.sql.exec<OutboxRow>("SELECT * FROM outbox WHERE id = ?", commandId).toArray()[0];
    if (!row) return { command: null, first: false };
    const first = OPEN.includes(row.status) || row.status === "timed_out";
    if (first) {
      this.sql.exec("UPDATE outbox SET status = ?, result = ?, updated_at = ? WHERE id = ?", ok ? "ok" : "error", JSON.stringify(result ?? null), Date.now(), commandId);
    }
    return { command: toEntry(row), first };
  }

  /** A command's outcome as recorded here (a deployment that was away when the answer came asks for it). */
  async result(commandId: string): Promise<{ status: OutboxStatus; resultJson: string | null } | null> {
    const row = this.sql.exec<OutboxRow>("SELECT status, result FROM outbox WHERE id = ?", commandId).toArray()[0];
    return row ? { status: row.status, resultJson: row.result === null ? null : String(row.result) } : null;
  }

  async status(): Promise<ClusterLinkStatus> {
    return {
      connected: this.bridge() !== undefined,
      connectedAt: this.getMeta("connectedAt"),
      lastHello: await this.hello(),
      openCommands: this.openCount(),
      roundTripMs: this.getMeta("roundTripMs") === undefined ? null : Number(this.getMeta("roundTripMs")),
    };
  }

  async hello(): Promise<ClusterLinkStatus["lastHello"]> {
    const hello = this.getMeta("hello");
    return hello ? JSON.parse(hello) : null;
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    let frame;
    try {
      const text = typeof message === "string" ? message : new TextDecoder().decode(message);
      assertJsonWithinLimits(text);
      frame = bridgeFrameSchema.parse(JSON.parse(text));
    } catch {
      return; // A malformed frame (or one past the JSON limits) is ignored, never fatal for the link.
    }
    if (frame.kind === "hello") {
      this.setMeta("hello", JSON.stringify({ ...frame, at: new Date().toISOString() }));
      await this.announce("connected", frame.bridgeVersion, frame.driver);
    } else this.received(frame.commandId);
    void ws;
  }

  /**
   * The bridge's receipt of a command: its delay since the send feeds a smoothed round trip, which
   * deployments read to lengthen their deadlines on a loaded cluster (an event loop that takes
   * 300 ms to acknowledge a frame takes far longer for a drain). Only a first send is timed: a
   * redelivery's `updated_at` is the resend, and a receipt may answer either.
   */
  private received(commandId: string): void {
    const now = Date.now();
    const row = this.sql.exec<{ updated_at: number; attempts: number }>(
      "SELECT updated_at, attempts FROM outbox WHERE id = ? AND status = 'sent'", commandId,
    ).toArray()[0];
    if (!row) return;
    this.sql.exec("UPDATE outbox SET status = 'received', updated_at = ? WHERE id = ?", now, commandId);
    if (row.attempts !== 1) return;
    const sample = Math.max(0, now - Number(row.updated_at));
    const before = Number(this.getMeta("roundTripMs") ?? Number.NaN);
    // EWMA (α 0.2, as TCP's SRTT uses ⅛): one slow receipt moves it, a run of them sets it.
    const smoothed = Number.isFinite(before) ? before * 0.8 + sample * 0.2 : sample;
    this.setMeta("roundTripMs", String(Math.round(smoothed)));
    // Every sample, unsmoothed, into the cluster's round-trip histogram (GET /metrics).
    const clusterId = this.getMeta("clusterId");
    if (clusterId) recordMetrics(this.env, this.ctx, roundTripObserved(clusterId, sample / 1000));
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    this.setMeta("disconnectedAt", new Date().toISOString());
    try { ws.close(code === 1005 ? 1000 : code, "closing"); } catch { /* already closed */ }
    // A socket replaced by the bridge's newer connection closes too: only the last one going is a disconnect.
    if (!this.ctx.getWebSockets("bridge").some((other) => other !== ws && other.readyState === WebSocket.OPEN)) {
      const hello = this.getMeta("hello");
      const last = hello ? (JSON.parse(hello) as { bridgeVersion?: string; driver?: string }) : {};
      await this.announce("disconnected", last.bridgeVersion ?? null, last.driver ?? null);
    }
  }

  private async announce(state: "connected" | "disconnected", bridgeVersion: string | null, driver: string | null): Promise<void> {
    const clusterId = this.getMeta("clusterId");
    if (clusterId) await announceClusterLink(this.env, { clusterId, state, bridgeVersion, driver });
  }

  override async alarm(): Promise<void> {
    const ws = this.bridge();
    if (ws) this.deliverDue(ws, { redeliver: false });
    await this.expireOverdue();
    await this.scheduleAlarm();
  }

  private async expireOverdue(): Promise<void> {
    const now = Date.now();
    const overdue = this.sql.exec<OutboxRow>(
      "SELECT * FROM outbox WHERE status IN ('pending','sent','received') AND deadline <= ?", now,
    ).toArray();
    if (overdue.length === 0) return;
    for (const row of overdue) this.sql.exec("UPDATE outbox SET status = 'timed_out', updated_at = ? WHERE id = ?", now, row.id);
    const clusterId = this.getMeta("clusterId");
    // An owned command's owner (a deployment step) has its own deadline and decides what a silence means.
    const affected = overdue.filter((r) => r.instance_id && r.type !== "health.report" && r.reply_to === null);
    if (!clusterId || affected.length === 0) return;
    // The bridge never answered: we do not know what runs, so we say so rather than guess "running".
    const handle = openDb(this.env.DATABASE_URL!, this.env.NEON_LOCAL_PROXY);
    try {
      for (const row of affected) {
        await applyInstanceStatus(handle.db, this.env, {
          clusterId, instanceId: row.instance_id!, status: "unknown",
          reason: `bridge did not answer ${row.type} within ${Math.round((row.deadline - row.not_before) / 1000)} s`,
        });
      }
    } finally {
      await handle.close();
    }
  }

  /** Sends what is due; `redeliver` (a fresh connection) also resends what the last one never answered. */
  private deliverDue(ws: WebSocket, opts: { redeliver: boolean }): void {
    const now = Date.now();
    const states = opts.redeliver ? "('pending','sent','received')" : "('pending')";
    const due = this.sql.exec<OutboxRow>(
      `SELECT * FROM outbox WHERE status IN ${states} AND not_before <= ? AND deadline > ? ORDER BY not_before, rowid`, now, now,
    ).toArray();
    for (const row of due) {
      if (!this.sendFrame(ws, { kind: "command", command: toCommand(row) })) return;
      this.sql.exec("UPDATE outbox SET status = CASE WHEN status = 'pending' THEN 'sent' ELSE status END, attempts = attempts + 1, updated_at = ? WHERE id = ?", now, row.id);
    }
  }

  private async scheduleAlarm(): Promise<void> {
    const now = Date.now();
    const next = this.sql.exec<{ at: number | null }>(
      "SELECT MIN(CASE WHEN not_before > ? THEN not_before ELSE deadline END) AS at FROM outbox WHERE status IN ('pending','sent','received')", now,
    ).one().at;
    // Finished commands are kept a day for duplicate answers, then dropped.
    this.sql.exec("DELETE FROM outbox WHERE status NOT IN ('pending','sent','received') AND updated_at < ?", now - 86_400_000);
    if (next !== null) await this.ctx.storage.setAlarm(Math.max(next, now + 10));
  }

  /** An alarm comes at `at` or earlier: kept when it is already due by then, else moved to `at`. */
  private async alarmBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(Math.max(at, Date.now() + 10));
  }

  private sendFrame(ws: WebSocket, frame: ServerFrame): boolean {
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  private bridge(): WebSocket | undefined {
    return this.ctx.getWebSockets("bridge").find((ws) => ws.readyState === WebSocket.OPEN);
  }

  private openCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox WHERE status IN ('pending','sent','received')").one().n;
  }

  private getMeta(key: string): string | undefined {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value);
  }
}

function toCommand(row: OutboxRow): Command {
  return {
    id: row.id, type: row.type, ...(row.instance_id ? { instanceId: row.instance_id } : {}),
    args: JSON.parse(row.args), issuedAt: row.issued_at,
  };
}

function toEntry(row: OutboxRow): OutboxEntry {
  return {
    id: row.id, type: row.type, ...(row.instance_id ? { instanceId: row.instance_id } : {}),
    issuedAt: row.issued_at, replyTo: row.reply_to ? replyToSchema.parse(JSON.parse(row.reply_to)) : null,
  };
}
