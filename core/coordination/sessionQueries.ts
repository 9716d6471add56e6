/** Reads of coordination sessions for GET /api/coordination/sessions (+ /:id), newest first. */
import { and, desc, eq, isNotNull, isNull, lt, or, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { coordinationSessions } from "../../db/schema.ts";
import type { Cursor } from "../platform/pagination.ts";

export type SessionRow = typeof coordinationSessions.$inferSelect;

export interface SessionFilters {
  instanceId?: string;
  pattern?: "voting" | "refinement";
  /** live: not decided yet; past: decided. */
  state?: "live" | "past";
}

export async function listSessions(db: Db, f: SessionFilters, limit: number, cursor?: Cursor): Promise<SessionRow[]> {
  const t = coordinationSessions;
  const where: (SQL | undefined)[] = [
    f.instanceId ? eq(t.instanceId, f.instanceId) : undefined,
    f.pattern ? eq(t.pattern, f.pattern) : undefined,
    f.state === "live" ? isNull(t.decidedAt) : f.state === "past" ? isNotNull(t.decidedAt) : undefined,
    cursor ? or(lt(t.startedAt, cursor.createdAt), and(eq(t.startedAt, cursor.createdAt), lt(t.id, cursor.id))) : undefined,
  ];
  return db.select().from(t).where(and(...where)).orderBy(desc(t.startedAt), desc(t.id)).limit(limit + 1);
}

export async function getSession(db: Db, id: string): Promise<SessionRow | undefined> {
  const [row] = await db.select().from(coordinationSessions).where(eq(coordinationSessions.id, id)).limit(1);
  return row;
}
