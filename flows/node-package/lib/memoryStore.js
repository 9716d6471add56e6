/**
 * Conversation memory for the memory primitive: append turns to a
 * conversation, recall its last N turns (oldest first, the order a chat
 * prompt wants them).
 * - Postgres (default): one table (default `redforge_memory`) created at first
 *   use; `seq` (bigserial) orders turns, also when two appends race.
 * - Redis when REDIS_URL is set: one list per conversation
 *   (`<prefix><conversationId>`, RPUSH / LRANGE), optional TTL refreshed on
 *   every append (MEMORY_TTL_S), optional cap on kept turns (MEMORY_MAX_KEPT, LTRIM).
 */
"use strict";

const { invalid, fromPgError } = require("./storeError.js");
const { PostgresTable, poolFor } = require("./pgPool.js");
const { redisClient } = require("./redisClient.js");

const MAX_TURNS_PER_APPEND = 100;
const MAX_CONTENT = 100_000;
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function checkConversation(id) {
  if (typeof id !== "string" || id.length === 0 || id.length > 200) throw invalid("conversationId must be a string of 1..200 characters");
  return id;
}

/** Turns as stored: {role, content, metadata}; role is free text (user, assistant, system, tool, …). */
function normalizeTurns(turns) {
  if (!Array.isArray(turns) || turns.length === 0) throw invalid("turns must be a non-empty array of {role, content, metadata?}");
  if (turns.length > MAX_TURNS_PER_APPEND) throw invalid(`at most ${MAX_TURNS_PER_APPEND} turns per append`);
  return turns.map((t, i) => {
    if (!isObject(t)) throw invalid(`turn ${i} is not an object`);
    if (typeof t.role !== "string" || t.role.length === 0 || t.role.length > 50) throw invalid(`turn ${i}'s role must be a string of 1..50 characters`);
    if (typeof t.content !== "string" || t.content.length > MAX_CONTENT) throw invalid(`turn ${i}'s content must be a string of at most ${MAX_CONTENT} characters`);
    if (t.metadata !== undefined && !isObject(t.metadata)) throw invalid(`turn ${i}'s metadata must be an object`);
    return { role: t.role, content: t.content, metadata: t.metadata || {} };
  });
}

function checkLast(last) {
  const n = Number(last);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw invalid("last must be an integer 1..1000");
  return n;
}

class PostgresMemory extends PostgresTable {
  constructor(opts) {
    super(opts, "redforge_memory");
  }

  ready() {
    if (!this.readyPromise) {
      this.readyPromise = (async () => {
        if (this.ident.schema) await this.query(`CREATE SCHEMA IF NOT EXISTS "${this.ident.schema}"`, [], "creating the memory table's schema");
        try {
          await poolFor(this.url, this.onError).query(`CREATE TABLE IF NOT EXISTS ${this.ident.sql} (
  seq bigserial PRIMARY KEY,
  conversation_id text NOT NULL,
  role text NOT NULL,
  content text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now())`);
          await poolFor(this.url, this.onError).query(`CREATE INDEX IF NOT EXISTS "${this.ident.bare}_conversation" ON ${this.ident.sql} (conversation_id, seq)`);
        } catch (err) {
          if (!["23505", "42P07"].includes(err && err.code)) throw fromPgError(err, "creating the memory table");
        }
      })().catch((err) => { this.readyPromise = undefined; throw err; });
    }
    return this.readyPromise;
  }

  async append(conversationId, rawTurns) {
    checkConversation(conversationId);
    const turns = normalizeTurns(rawTurns);
    await this.ready();
    // One statement: the turns get consecutive seq values in the order given.
    const r = await this.query(
      `INSERT INTO ${this.ident.sql} (conversation_id, role, content, metadata)
       SELECT $1, x.e->>'role', x.e->>'content', COALESCE(x.e->'metadata', '{}') FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(e, n)
       ORDER BY x.n RETURNING seq`,
      [conversationId, JSON.stringify(turns)], "appending turns");
    const total = await this.query(`SELECT count(*)::int AS n FROM ${this.ident.sql} WHERE conversation_id = $1`, [conversationId], "counting turns");
    return { conversationId, appended: r.rowCount, turns: total.rows[0].n, backend: "postgres" };
  }

  async recall(conversationId, last) {
    checkConversation(conversationId);
    const n = checkLast(last);
    await this.ready();
    const r = await this.query(
      `SELECT seq, role, content, metadata, created_at FROM ${this.ident.sql} WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2`,
      [conversationId, n], "recalling turns");
    const turns = r.rows.reverse().map((row) => ({ role: row.role, content: row.content, metadata: row.metadata, at: new Date(row.created_at).toISOString() }));
    return { conversationId, turns, backend: "postgres" };
  }

  async forget(conversationId) {
    checkConversation(conversationId);
    await this.ready();
    const r = await this.query(`DELETE FROM ${this.ident.sql} WHERE conversation_id = $1`, [conversationId], "forgetting a conversation");
    return { conversationId, deleted: r.rowCount, backend: "postgres" };
  }
}

class RedisMemory {
  constructor({ url, token, prefix, ttlSeconds, maxKept }) {
    this.client = redisClient(url, { token });
    this.prefix = prefix || "redforge:memory:";
    this.ttl = Number(ttlSeconds) > 0 ? Math.floor(Number(ttlSeconds)) : 0;
    this.maxKept = Number(maxKept) > 0 ? Math.floor(Number(maxKept)) : 0;
  }

  get backend() {
    return "redis";
  }

  key(id) {
    return `${this.prefix}${id}`;
  }

  async append(conversationId, rawTurns) {
    checkConversation(conversationId);
    const turns = normalizeTurns(rawTurns);
    const at = new Date().toISOString();
    // One RPUSH with every turn: they land together and in order.
    const length = await this.client.command(["RPUSH", this.key(conversationId), ...turns.map((t) => JSON.stringify({ ...t, at }))]);
    if (this.maxKept) await this.client.command(["LTRIM", this.key(conversationId), -this.maxKept, -1]);
    if (this.ttl) await this.client.command(["EXPIRE", this.key(conversationId), this.ttl]);
    return { conversationId, appended: turns.length, turns: this.maxKept ? Math.min(Number(length), this.maxKept) : Number(length), backend: "redis" };
  }

  async recall(conversationId, last) {
    checkConversation(conversationId);
    const n = checkLast(last);
    const items = await this.client.command(["LRANGE", this.key(conversationId), -n, -1]);
    const turns = (items || []).map((s) => {
      try {
        const t = JSON.parse(s);
        return { role: t.role, content: t.content, metadata: t.metadata || {}, at: t.at };
      } catch {
        return { role: "unknown", content: String(s), metadata: {}, at: undefined };
      }
    });
    return { conversationId, turns, backend: "redis" };
  }

  async forget(conversationId) {
    checkConversation(conversationId);
    const n = await this.client.command(["DEL", this.key(conversationId)]);
    return { conversationId, deleted: Number(n), backend: "redis" };
  }
}

const memories = new Map();

/** Redis when `redisUrl` is set, else Postgres at `postgresUrl`; one per process and settings. */
function conversationMemory(settings) {
  const key = JSON.stringify([settings.redisUrl || "", settings.redisToken || "", settings.prefix || "", settings.ttlSeconds || "", settings.maxKept || "", settings.postgresUrl || "", settings.table || ""]);
  let m = memories.get(key);
  if (!m) {
    m = settings.redisUrl
      ? new RedisMemory({ url: settings.redisUrl, token: settings.redisToken, prefix: settings.prefix, ttlSeconds: settings.ttlSeconds, maxKept: settings.maxKept })
      : new PostgresMemory({ url: settings.postgresUrl, table: settings.table, onError: settings.onError });
    memories.set(key, m);
  }
  return m;
}

module.exports = { conversationMemory, normalizeTurns, PostgresMemory, RedisMemory };
