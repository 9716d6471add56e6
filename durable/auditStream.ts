/**
 * /ws/audit: audit rows as `audit:entry` events, live and from a cursor. The
 * rows are read back from Postgres, not pushed by their writers: the chain is
 * appended from routes, queues and Durable Objects alike, and only what
 * committed is in the log. Row ids grow in commit order (appends hold the
 * chain's advisory lock until they commit, db/auditChain.ts), so "id > cursor"
 * misses nothing. Each socket keeps its own cursor in its attachment, so a
 * late subscriber catches up from where it asked, without the others waiting.
 * Polling runs on the object's alarm only while sockets are open. Watchers
 * are cached and access-checked by the streams' one mechanism
 * (durable/watchers.ts); each row is serialised once per poll, not per socket.
 */
import { asc, desc, gt, max } from "drizzle-orm";
import { openDb, type Db } from "../db/client.ts";
import { auditLogs } from "../db/schema.ts";
import type { Env } from "../core/env.ts";
import { openKv } from "../core/platform/kv.ts";
import { watcherOf, type Watcher } from "../core/platform/watcherAccess.ts";
import { accessMarks, closeIfRevoked, WatcherCache } from "./watchers.ts";

export const AUDIT_TAG = "audit";
/** How often new rows are looked for while someone watches. */
export const AUDIT_POLL_MS = 1_000;
/** Rows read per poll; a full batch polls again at once. */
const BATCH = 500;
/** A cursor further back than this resumes here instead, with an `audit:gap` event (page the rest from GET /api/audit). */
export const MAX_BACKLOG = 1_000;

interface AuditWatcher extends Watcher {
  /** The last row id this socket was sent. */
  cursor: number;
}

type Row = typeof auditLogs.$inferSelect;

export class AuditStream {
  private readonly watchers = new WatcherCache<AuditWatcher>();

  constructor(private readonly ctx: DurableObjectState, private readonly env: Env) {}

  async accept(request: Request): Promise<Response> {
    const afterText = new URL(request.url).searchParams.get("after");
    const after = afterText === null ? null : Number(afterText);
    const head = await this.withDb(async (db) => (await db.select({ id: max(auditLogs.id) }).from(auditLogs))[0]?.id ?? 0);
    const asked = after === null || after > head ? head : after;
    // Ids have holes (rolled-back appends, retention's purged prefix), so "1,000 back" is counted in rows, not ids.
    const resumeAfter = head - asked > MAX_BACKLOG ? await this.withDb((db) => backlogStart(db, asked)) : null;
    const cursor = resumeAfter ?? asked;
    // Everything awaited is done: accept, greet and attach the cursor in one turn, so a poll never sees the socket half set up.
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [AUDIT_TAG]);
    pair[1].send(JSON.stringify({ event: "audit:hello", data: { cursor: after === null ? head : asked, head, timestamp: new Date().toISOString() } }));
    if (resumeAfter !== null) {
      pair[1].send(JSON.stringify({ event: "audit:gap", data: { after: asked, resumeAfter, message: `more than ${MAX_BACKLOG} entries behind; page the rest with GET /api/audit` } }));
    }
    const watcher: AuditWatcher = { ...(watcherOf(request) ?? { userId: "", openedAt: Date.now() }), cursor };
    this.watchers.attach(pair[1], watcher);
    await this.schedule(cursor < head ? Date.now() : Date.now() + AUDIT_POLL_MS);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** The alarm: new rows to each socket past its cursor; then the next poll, while sockets remain. */
  async poll(): Promise<void> {
    const sockets = this.ctx.getWebSockets(AUDIT_TAG);
    if (sockets.length === 0) return;
    const watched = sockets.map((ws) => ({ ws, w: this.watchers.of(ws) }));
    const from = Math.min(...watched.map(({ w }) => w?.cursor ?? 0));
    const rows = await this.withDb((db) => db.select().from(auditLogs).where(gt(auditLogs.id, from)).orderBy(asc(auditLogs.id)).limit(BATCH));
    if (rows.length) {
      // Only now, with something to send: a watcher whose access changed is closed instead (as on /ws/fleet).
      const marks = await accessMarks(openKv(this.env), watched.map(({ w }) => w));
      const texts = rows.map((r) => JSON.stringify({ event: "audit:entry", data: r }));
      for (const { ws, w } of watched) {
        if (w && !closeIfRevoked(ws, w, marks)) this.sendNew(ws, w, rows, texts);
      }
    }
    if (this.ctx.getWebSockets(AUDIT_TAG).length) await this.schedule(Date.now() + (rows.length === BATCH ? 0 : AUDIT_POLL_MS));
  }

  private sendNew(ws: WebSocket, w: AuditWatcher, rows: Row[], texts: string[]): void {
    let last = w.cursor;
    try {
      for (const [i, r] of rows.entries()) {
        if (r.id <= last) continue;
        ws.send(texts[i]!);
        last = r.id;
      }
    } catch {
      // A socket closing under us is not an error for the others.
    }
    if (last !== w.cursor) this.watchers.attach(ws, { ...w, cursor: last });
  }

  private async schedule(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  private async withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const handle = openDb(this.env.DATABASE_URL!, this.env.NEON_LOCAL_PROXY);
    try {
      return await fn(handle.db);
    } finally {
      await handle.close();
    }
  }
}

/** The id after which exactly MAX_BACKLOG rows follow, or null when no more than that follow `cursor`. */
async function backlogStart(db: Db, cursor: number): Promise<number | null> {
  const [row] = await db.select({ id: auditLogs.id }).from(auditLogs).where(gt(auditLogs.id, cursor)).orderBy(desc(auditLogs.id)).offset(MAX_BACKLOG).limit(1);
  return row?.id ?? null;
}
