/**
 * The audit log is a hash chain: each row's hash covers its content and the
 * previous row's hash, so editing or deleting a row breaks every hash after
 * it (GET /api/audit/verify walks it). Appends happen under a transaction-
 * scoped advisory lock inside the caller's transaction, so the row commits
 * with the change it describes and concurrent writers cannot fork the chain.
 * The lock and the whole batch of a transaction's rows go to Postgres in one
 * round trip (appendStatement), so the lock is held for that one trip and the
 * COMMIT, however many rows the batch has.
 */
import { and, eq, sql } from "drizzle-orm";
import { auditLogs } from "./schema.ts";
import type { Db } from "./client.ts";

export const GENESIS_HASH = "0".repeat(64);
// Arbitrary constant naming "the audit chain" among advisory locks.
const AUDIT_CHAIN_LOCK = 7_470_001;

export interface AuditEntry {
  userId?: string | null;
  action: string;
  resourceType?: string | null;
  resourceId?: string | null;
  details?: unknown;
  ipAddress?: string | null;
  userAgent?: string | null;
  statusCode?: number | null;
}

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** JSON with object keys sorted at every level: jsonb reorders keys, the hash must not care. */
export function canonicalJson(value: unknown): string {
  // As JSON.stringify (and so jsonb) does: a Date, or anything with toJSON, is hashed as what is stored.
  // Without this a Date in details hashed as "{}" and stored as its ISO string: the row broke the chain.
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    return canonicalJson((value as { toJSON(): unknown }).toJSON());
  }
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** The eight 16-bit groups of an IPv6 address in any textual form (RFC 4291 2.2), or null. */
function ipv6Groups(text: string): number[] | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string, mayEndInIpv4: boolean): number[] | null => {
    if (part === "") return [];
    const groups: number[] = [];
    const texts = part.split(":");
    for (const [i, g] of texts.entries()) {
      if (mayEndInIpv4 && i === texts.length - 1 && IPV4.test(g)) {
        const [a, b, c, d] = g.split(".").map(Number) as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (HEX_GROUP.test(g)) groups.push(parseInt(g, 16));
      else return null;
    }
    return groups;
  };
  if (halves.length === 1) {
    const all = parse(text, true);
    return all?.length === 8 ? all : null;
  }
  const head = parse(halves[0]!, false);
  const tail = parse(halves[1]!, true);
  if (!head || !tail || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/**
 * An address exactly as Postgres's inet prints it back (inet_net_ntop: the
 * first longest run of two or more zero groups compressed, lowercase hex, and
 * IPv4-compatible ::a.b.c.d / mapped ::ffff:a.b.c.d in dotted form), or null
 * when the text is no address. The audit hash covers this text, so a row
 * must store what it hashed: "::1.2.3.4" and "::102:304" are one inet.
 */
export function inetText(raw: string): string | null {
  if (IPV4.test(raw)) return raw;
  const w = ipv6Groups(raw);
  if (!w) return null;
  let best = { base: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > best.len) best = { base: i, len: j - i };
    i = j;
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  const dotted = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (best.base === 0 && (best.len === 6 || (best.len === 5 && w[5] === 0xffff))) {
    return `::${best.len === 5 ? "ffff:" : ""}${dotted(w[6]!, w[7]!)}`;
  }
  const hex = (from: number, to: number) => w.slice(from, to).map((n) => n.toString(16)).join(":");
  if (best.base < 0) return hex(0, 8);
  return `${hex(0, best.base)}::${hex(best.base + best.len, 8)}`;
}

/** The stored (and hashed) columns of an entry: absent fields are null, never missing. */
function columns(e: AuditEntry) {
  return {
    userId: e.userId ?? null,
    action: e.action,
    resourceType: e.resourceType ?? null,
    resourceId: e.resourceId ?? null,
    details: e.details ?? null,
    // Whatever the caller passed, the text hashed is the text Postgres will print back.
    ipAddress: e.ipAddress ? inetText(e.ipAddress) : null,
    userAgent: e.userAgent ?? null,
    statusCode: e.statusCode ?? null,
  };
}

export async function auditRowHash(prevHash: string, timestamp: Date, e: AuditEntry): Promise<string> {
  const content = canonicalJson({ prevHash, timestamp: timestamp.toISOString(), ...columns(e) });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(content));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Appends entries to the chain inside `tx`; call it last in the transaction to hold the lock briefly. */
export async function appendAudit(tx: Tx, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  // The lock travels in the same message as the rows (appendStatement).
  await appendLocked(tx, entries, true);
}

/**
 * Appends `entry` unless the chain already holds its action for its resource;
 * says whether it appended. For a writer that retries without knowing whether
 * its last commit went through (a deployment's AUDIT step, retried by the
 * alarm): checked under the chain's lock, so two attempts cannot both append.
 */
export async function appendAuditOnce(tx: Tx, entry: AuditEntry & { resourceType: string; resourceId: string }): Promise<boolean> {
  await lockChain(tx);
  const [seen] = await tx.select({ id: auditLogs.id }).from(auditLogs)
    .where(and(eq(auditLogs.resourceType, entry.resourceType), eq(auditLogs.resourceId, entry.resourceId), eq(auditLogs.action, entry.action)))
    .limit(1);
  if (seen) return false;
  await appendLocked(tx, [entry]);
  return true;
}

/** Held until the transaction ends: one writer extends the chain at a time. */
async function lockChain(tx: Tx): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`);
}

/**
 * The canonical text of an entry split around its prevHash and timestamp
 * values: the row's hash is SHA-256(head + prevHash + middle + timestamp +
 * tail), exactly auditRowHash's. Canonical keys are sorted, so "prevHash" and
 * then "timestamp" are top-level keys after `details`; the last occurrence of
 * each key in the text is the top-level one (a nested one sits inside
 * `details`, earlier; the later values are scalars, whose quotes are escaped).
 */
export function hashedTextAround(e: AuditEntry): { head: string; middle: string; tail: string } {
  const ts = new Date(0).toISOString();
  const text = canonicalJson({ prevHash: GENESIS_HASH, timestamp: ts, ...columns(e) });
  const atHash = text.lastIndexOf(`"prevHash":"${GENESIS_HASH}"`) + `"prevHash":"`.length;
  const atTs = text.lastIndexOf(`"timestamp":"${ts}"`) + `"timestamp":"`.length;
  return { head: text.slice(0, atHash), middle: text.slice(atHash + GENESIS_HASH.length, atTs), tail: text.slice(atTs + ts.length) };
}

/** A dollar-quoted literal tag that occurs in none of `texts` (dollar quotes take no escapes). */
function quoteTag(texts: string[]): string {
  for (;;) {
    const tag = `$rf${crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)}$`;
    if (!texts.some((t) => t.includes(tag))) return tag;
  }
}

/**
 * The batched append: the lock and every row of the batch in ONE round trip.
 * Writers serialise on the chain only while they hold its lock, and the lock
 * is held until commit, so what counts is how many round trips a holder makes
 * after the grant. Before, that was lock, read the head, one INSERT per row,
 * COMMIT (3 + rows after the grant); now it is this one message (the server
 * runs the INSERT the moment the lock is granted, with no trip back to the
 * Worker) and COMMIT. Postgres chains the batch itself: the head is read and
 * each hash computed (sha256 over the canonical text, split around prevHash
 * and timestamp by hashedTextAround) in one INSERT ... SELECT over a recursive CTE, in the
 * batch's order, so ids ascend along the chain as before. Rows, hashes and
 * the verify walk are unchanged: GET /api/audit/verify and offline export
 * checks see the same chain.
 *
 * It is a simple-protocol, multi-statement query (no bind parameters: the
 * extended protocol takes one statement), so every value is a dollar-quoted
 * literal. Under READ COMMITTED each statement takes a fresh snapshot, so the
 * INSERT sees the head the previous holder committed before the grant.
 */
export function appendStatement(entries: AuditEntry[], lock = true): string {
  const rows = entries.map((e) => ({ c: columns(e), ...hashedTextAround(e) }));
  const texts = rows.flatMap((r) => [r.head, r.middle, r.tail, r.c.action, r.c.userId ?? "", r.c.resourceType ?? "", r.c.resourceId ?? "", r.c.userAgent ?? "", r.c.ipAddress ?? "", JSON.stringify(r.c.details)]);
  const tag = quoteTag(texts);
  const lit = (v: string | null) => (v === null ? "null" : `${tag}${v}${tag}`);
  const values = rows.map((r, i) => `(${i + 1}, ${lit(r.c.userId)}, ${lit(r.c.action)}, ${lit(r.c.resourceType)}, ` +
    `${lit(r.c.resourceId)}, ${r.c.details === null ? "null" : `${lit(JSON.stringify(r.c.details))}`}::jsonb, ${lit(r.c.ipAddress)}::inet, ${lit(r.c.userAgent)}, ` +
    `${r.c.statusCode === null ? "null" : Number(r.c.statusCode).toFixed(0)}::integer, ${lit(r.head)}, ${lit(r.middle)}, ${lit(r.tail)})`);
  // toISOString's form: what JS reads back from the column and hashes on verify.
  const digest = (prev: string) => `encode(sha256(convert_to(i.head || ${prev} || i.middle || clock.iso || i.tail, 'UTF8')), 'hex')`;
  return [
    lock ? `select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK});` : "",
    `with recursive input (n, user_id, action, resource_type, resource_id, details, ip_address, user_agent, status_code, head, middle, tail) as (values ${values.join(", ")}),`,
    `clock (ts, iso) as (select t, to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') from (select date_trunc('milliseconds', clock_timestamp()) as t) x),`,
    // The chain's head: the last row, or, when a retention purge removed every row, the checkpoint that
    // covers them (its up_to_hash is what /api/audit/verify anchors the next row to); genesis only for
    // a log that never had a row. A kept row is always newer than every checkpoint (a purge deletes up to one).
    `head (hash) as (select coalesce((select hash from audit_logs order by id desc limit 1), (select up_to_hash from audit_checkpoints order by up_to_id desc limit 1), '${GENESIS_HASH}')),`,
    `chain (n, prev_hash, hash) as (select i.n, head.hash, ${digest("head.hash")} from head, clock, input i where i.n = 1`,
    `  union all select i.n, c.hash, ${digest("c.hash")} from chain c join input i on i.n = c.n + 1, clock)`,
    `insert into audit_logs (timestamp, user_id, action, resource_type, resource_id, details, ip_address, user_agent, status_code, prev_hash, hash)`,
    `select clock.ts, i.user_id, i.action, i.resource_type, i.resource_id, i.details, i.ip_address, i.user_agent, i.status_code, c.prev_hash, c.hash`,
    `from input i join chain c using (n), clock order by i.n;`,
  ].join("\n");
}

/**
 * The batched append as two statements for a non-interactive HTTP transaction
 * (db/client.ts Batch), which runs each statement by itself (extended protocol,
 * one statement per query): the lock, then the insert. Put them last in the
 * batch: the lock is held from its statement to the batch's COMMIT, all of it
 * inside the database's side of one round trip. Same rows, same hashes.
 */
export function appendQueries(db: Db, entries: AuditEntry[]) {
  return [db.execute(sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`), db.execute(sql.raw(appendStatement(entries, false)))] as const;
}

async function appendLocked(tx: Tx, entries: AuditEntry[], lock = false): Promise<void> {
  await tx.execute(sql.raw(appendStatement(entries, lock)));
}
