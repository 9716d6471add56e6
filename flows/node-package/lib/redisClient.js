/**
 * A small Redis client without dependencies, for the memory node:
 * - redis:// and rediss:// URLs: RESP2 over one TCP (TLS) socket, commands
 *   pipelined in order; AUTH from the URL's user/password, SELECT from its path.
 * - http(s):// URLs: the Upstash REST protocol (POST the command as a JSON
 *   array, `Authorization: Bearer <token>`; the token is the URL's password
 *   or REDIS_TOKEN).
 * `command(args)` resolves Redis's reply (strings, integers, arrays, null);
 * a Redis error reply rejects with code store_rejected, no answer with
 * store_unavailable.
 */
"use strict";

const net = require("node:net");
const tls = require("node:tls");
const { StoreError, fromFetchError, UNREACHABLE } = require("./storeError.js");

/** Parses one RESP2 reply from buf at offset: [value, nextOffset] or undefined when incomplete. */
function parseReply(buf, at) {
  if (at >= buf.length) return undefined;
  const eol = buf.indexOf("\r\n", at);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString("utf8", at + 1, eol);
  const next = eol + 2;
  if (type === "+") return [line, next];
  if (type === "-") return [new StoreError("store_rejected", `Redis: ${line}`), next];
  if (type === ":") return [Number(line), next];
  if (type === "$") {
    const len = Number(line);
    if (len < 0) return [null, next];
    if (buf.length < next + len + 2) return undefined;
    return [buf.toString("utf8", next, next + len), next + len + 2];
  }
  if (type === "*") {
    const n = Number(line);
    if (n < 0) return [null, next];
    const items = [];
    let pos = next;
    for (let i = 0; i < n; i++) {
      const r = parseReply(buf, pos);
      if (!r) return undefined;
      items.push(r[0]);
      pos = r[1];
    }
    return [items, pos];
  }
  throw new StoreError("store_rejected", `Redis: unexpected reply type ${JSON.stringify(type)}`);
}

function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const s = String(a);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return parts.join("");
}

class RespClient {
  constructor(url, { timeoutMs = 5000 } = {}) {
    this.url = new URL(url);
    this.timeoutMs = timeoutMs;
    this.socket = undefined;
    this.pending = [];
    this.buf = Buffer.alloc(0);
  }

  where() {
    return `${this.url.hostname}:${this.url.port || 6379}`;
  }

  /** Opens the socket (again after a failure) and authenticates; commands wait for it. */
  open() {
    if (this.opening) return this.opening;
    this.opening = new Promise((resolve, reject) => {
      const opts = { host: this.url.hostname, port: Number(this.url.port) || 6379 };
      const socket = this.url.protocol === "rediss:" ? tls.connect({ ...opts, servername: this.url.hostname }) : net.connect(opts);
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect timed out after ${this.timeoutMs} ms`), { code: "ETIMEDOUT" })), this.timeoutMs);
      socket.once(this.url.protocol === "rediss:" ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        this.socket = socket;
        resolve();
      });
      socket.on("data", (chunk) => this.onData(chunk));
      socket.on("error", (err) => {
        clearTimeout(timer);
        this.fail(err);
        reject(err);
      });
      socket.on("close", () => this.fail(Object.assign(new Error("connection closed"), { code: "ECONNRESET" })));
    }).then(async () => {
      const user = decodeURIComponent(this.url.username || "");
      const password = decodeURIComponent(this.url.password || "");
      if (password) await this.send(user ? ["AUTH", user, password] : ["AUTH", password]);
      const db = this.url.pathname.replace(/^\//, "");
      if (db && db !== "0") await this.send(["SELECT", db]);
    }).catch((err) => {
      this.fail(err);
      throw err;
    });
    return this.opening;
  }

  /** Forgets the socket and rejects every waiting command; the next command reconnects. */
  fail(err) {
    if (this.socket) this.socket.destroy();
    this.socket = undefined;
    this.opening = undefined;
    this.buf = Buffer.alloc(0);
    const waiting = this.pending;
    this.pending = [];
    for (const p of waiting) p.reject(unavailable(err, this.where()));
  }

  onData(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    for (;;) {
      let r;
      try {
        r = parseReply(this.buf, at);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (!r) break;
      at = r[1];
      const p = this.pending.shift();
      if (p) r[0] instanceof StoreError ? p.reject(r[0]) : p.resolve(r[0]);
    }
    this.buf = this.buf.subarray(at);
  }

  send(args) {
    return new Promise((resolve, reject) => {
      if (!this.socket) return reject(unavailable(Object.assign(new Error("not connected"), { code: "ECONNRESET" }), this.where()));
      this.pending.push({ resolve, reject });
      this.socket.write(encode(args));
    });
  }

  async command(args) {
    try {
      await this.open();
    } catch (err) {
      throw err instanceof StoreError ? err : unavailable(err, this.where());
    }
    return this.send(args);
  }

  close() {
    const s = this.socket;
    this.socket = undefined;
    this.opening = undefined;
    if (s) s.end();
  }
}

function unavailable(err, where) {
  if (err instanceof StoreError) return err;
  const code = err && err.code;
  return new StoreError(UNREACHABLE.has(code) || !code ? "store_unavailable" : "store_rejected", `Redis at ${where}: ${(err && err.message) || err}`);
}

class UpstashRestClient {
  constructor(url, { token, timeoutMs = 10_000 } = {}) {
    const u = new URL(url);
    this.token = token || decodeURIComponent(u.password || "");
    u.username = "";
    u.password = "";
    this.root = u.toString().replace(/\/+$/, "");
    this.timeoutMs = timeoutMs;
  }

  async command(args) {
    let res;
    try {
      res = await fetch(this.root, { method: "POST", headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" }, body: JSON.stringify(args.map(String)), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw fromFetchError(err, "store_unavailable", "Upstash REST");
    }
    if (res.status === 408 || res.status === 429 || res.status >= 500) throw new StoreError("store_unavailable", `Upstash REST: HTTP ${res.status}`);
    const body = await res.json().catch(() => ({}));
    if (res.status >= 400 || body.error) throw new StoreError("store_rejected", `Upstash REST: ${body.error || `HTTP ${res.status}`}`);
    return body.result;
  }

  close() {}
}

const clients = new Map();

/** The shared client for `url` (one per process). */
function redisClient(url, opts = {}) {
  const key = `${url} ${opts.token || ""}`;
  let c = clients.get(key);
  if (!c) {
    c = /^https?:/.test(url) ? new UpstashRestClient(url, opts) : new RespClient(url, opts);
    clients.set(key, c);
  }
  return c;
}

function closeRedisClients() {
  for (const c of clients.values()) c.close();
  clients.clear();
}

module.exports = { redisClient, closeRedisClients, RespClient, UpstashRestClient, parseReply, encode };
