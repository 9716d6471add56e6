import { z } from "zod";
import { ApiError } from "../errors.ts";
import { fromBase64, toBase64Url } from "../../protocol/encoding.ts";

/** Keyset pagination over (created_at desc, id desc): stable under inserts, O(limit) per page. */
export interface Cursor {
  createdAt: Date;
  id: string;
}

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
};

export function encodeCursor(c: Cursor): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify([c.createdAt.toISOString(), c.id])));
}

export function decodeCursor(raw: string | undefined): Cursor | undefined {
  if (!raw) return undefined;
  try {
    const b64 = raw.replace(/-/g, "+").replace(/_/g, "/");
    const [t, id] = JSON.parse(new TextDecoder().decode(fromBase64(b64 + "=".repeat((4 - (b64.length % 4)) % 4))));
    const createdAt = new Date(t);
    if (typeof id !== "string" || !z.uuid().safeParse(id).success || Number.isNaN(createdAt.getTime())) throw new Error();
    return { createdAt, id };
  } catch {
    throw new ApiError(400, "invalid_cursor", "cursor is not one this API issued; start again without it");
  }
}

/** Fetches limit+1 rows to know whether a next page exists. */
export function page<T extends { createdAt: Date; id: string }>(rows: T[], limit: number) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
}

/** Keyset over a bigserial id alone (append-only tables like audit_logs: id order is insert order). */
export function encodeIdCursor(id: number): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify(["id", id])));
}

export function decodeIdCursor(raw: string | undefined): number | undefined {
  if (!raw) return undefined;
  try {
    const b64 = raw.replace(/-/g, "+").replace(/_/g, "/");
    const [tag, id] = JSON.parse(new TextDecoder().decode(fromBase64(b64 + "=".repeat((4 - (b64.length % 4)) % 4))));
    if (tag !== "id" || !Number.isSafeInteger(id) || id < 1) throw new Error();
    return id;
  } catch {
    throw new ApiError(400, "invalid_cursor", "cursor is not one this API issued; start again without it");
  }
}
