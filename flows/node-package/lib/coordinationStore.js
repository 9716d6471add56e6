/**
 * Where coordination sessions live between messages, so a coordinator that
 * restarts picks its open sessions up again: Redis over the Upstash REST
 * protocol (POST the command as a JSON array with `Authorization: Bearer`;
 * Upstash in production, dev/upstash-relay.ts locally). Without a URL, a
 * process-local map: sessions then end with the process (the node says so).
 *
 * Keys: `{pattern}_session:{id}:state` (JSON, expires after `ttlSeconds`) and
 * `coordination:{instance}:open`, the set of session ids not yet decided.
 */
"use strict";

const DEFAULT_TTL_SECONDS = 7 * 24 * 3600;

const stateKey = (pattern, id) => `${pattern}_session:${id}:state`;
const openKey = (instanceId) => `coordination:${instanceId}:open`;

class UpstashStore {
  constructor(url, token, { timeoutMs = 5000 } = {}) {
    this.url = String(url).replace(/\/+$/, "");
    this.token = token;
    this.timeoutMs = timeoutMs;
    this.durable = true;
  }

  async command(args) {
    let res;
    try {
      res = await fetch(this.url, {
        method: "POST",
        headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
        body: JSON.stringify(args.map(String)),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new Error(`coordination store ${this.url} unreachable: ${err.message}`);
    }
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || body.error) throw new Error(`coordination store ${this.url} answered ${res.status}: ${(body && body.error) || "not JSON"}`);
    return body.result;
  }

  async get(key) {
    const v = await this.command(["GET", key]);
    return v === null || v === undefined ? undefined : JSON.parse(v);
  }

  async set(key, value, ttlSeconds = DEFAULT_TTL_SECONDS) {
    await this.command(["SET", key, JSON.stringify(value), "EX", ttlSeconds]);
  }

  async addOpen(instanceId, id) { await this.command(["SADD", openKey(instanceId), id]); }
  async removeOpen(instanceId, id) { await this.command(["SREM", openKey(instanceId), id]); }
  async open(instanceId) { return (await this.command(["SMEMBERS", openKey(instanceId)])) || []; }
}

class MemoryStore {
  constructor() {
    this.values = new Map();
    this.sets = new Map();
    this.durable = false;
  }
  async get(key) { const v = this.values.get(key); return v === undefined ? undefined : JSON.parse(v); }
  async set(key, value) { this.values.set(key, JSON.stringify(value)); }
  setOf(instanceId) {
    let s = this.sets.get(instanceId);
    if (!s) this.sets.set(instanceId, (s = new Set()));
    return s;
  }
  async addOpen(instanceId, id) { this.setOf(instanceId).add(id); }
  async removeOpen(instanceId, id) { this.setOf(instanceId).delete(id); }
  async open(instanceId) { return [...this.setOf(instanceId)]; }
}

/** The store for `url` (an Upstash REST URL) and `token`; a memory store when url is empty. */
function openStore(url, token) {
  return url ? new UpstashStore(url, token || "") : new MemoryStore();
}

module.exports = { openStore, stateKey, openKey, UpstashStore, MemoryStore };
