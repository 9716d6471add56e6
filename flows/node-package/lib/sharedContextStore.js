/**
 * A Node-RED context store (settings.js `contextStorage`) kept in Redis and
 * reached over the Upstash REST protocol with plain fetch, so blue and green
 * of one instance read and write the same `flow`/`global` context: what blue
 * set before a blue-green switch, green reads after it.
 *
 * Self-contained on purpose (no require of anything but Node's globals):
 * settings.js loads it before Node-RED has installed any package, and the
 * kubernetes driver ships this file's source in the instance's ConfigMap.
 *
 * Layout: one Redis hash per context scope, `<prefix><scope>`, one field per
 * top-level key, the value as JSON. The prefix is per instance (not per
 * colour), so both colours share it.
 *
 * config: { url, token, prefix, timeoutMs? }
 */
"use strict";

const DEFAULT_TIMEOUT_MS = 10_000;

function sharedContextStore(config) {
  const url = String((config && config.url) || "").replace(/\/+$/, "");
  const token = String((config && config.token) || "");
  const prefix = String((config && config.prefix) || "redforge:context:");
  const timeoutMs = Number((config && config.timeoutMs) || DEFAULT_TIMEOUT_MS);
  if (!/^https?:\/\//.test(url)) throw new Error(`shared context store: url must be http(s)://…, got "${url}"`);
  if (!token) throw new Error("shared context store: no token (REDFORGE_CONTEXT_TOKEN)");

  async function command(argv) {
    const res = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(argv),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { body = undefined; }
    if (!res.ok || !body || body.error !== undefined) {
      throw new Error(`shared context store: ${argv[0]} answered ${res.status}: ${body && body.error ? body.error : text.slice(0, 200)}`);
    }
    return body.result;
  }

  const hash = (scope) => prefix + scope;
  const decode = (raw) => (raw === null || raw === undefined ? undefined : JSON.parse(raw));

  async function getOne(scope, key) {
    const { field, path } = splitKey(key);
    const value = decode(await command(["HGET", hash(scope), field]));
    return readPath(value, path);
  }

  async function setOne(scope, key, value) {
    const { field, path } = splitKey(key);
    if (path.length === 0) {
      if (value === undefined) await command(["HDEL", hash(scope), field]);
      else await command(["HSET", hash(scope), field, JSON.stringify(value)]);
      return;
    }
    // A nested property: read the top-level value, change it, write it back (not atomic).
    const top = decode(await command(["HGET", hash(scope), field]));
    const root = top !== null && typeof top === "object" ? top : {};
    writePath(root, path, value);
    await command(["HSET", hash(scope), field, JSON.stringify(root)]);
  }

  return {
    open: () => command(["PING"]).then(() => undefined),
    close: () => Promise.resolve(),
    get(scope, key, callback) {
      if (typeof callback !== "function") throw new Error("the shared context store is asynchronous: pass a callback (flow.get(key, store, cb))");
      const keys = Array.isArray(key) ? key : [key];
      Promise.all(keys.map((k) => getOne(scope, k)))
        .then((values) => callback(null, ...values), (err) => callback(err));
    },
    set(scope, key, value, callback) {
      const keys = Array.isArray(key) ? key : [key];
      const values = Array.isArray(key) ? (Array.isArray(value) ? value : [value]) : [value];
      const done = typeof callback === "function" ? callback : () => {};
      // One after the other: two paths into the same top-level field must not race.
      keys.reduce((p, k, i) => p.then(() => setOne(scope, k, values[i] === undefined ? undefined : values[i])), Promise.resolve())
        .then(() => done(null), (err) => done(err));
    },
    keys(scope, callback) {
      if (typeof callback !== "function") throw new Error("the shared context store is asynchronous: pass a callback");
      command(["HKEYS", hash(scope)]).then((k) => callback(null, k || []), (err) => callback(err));
    },
    delete: (scope) => command(["DEL", hash(scope)]).then(() => undefined),
    // Node-RED calls clean() after every deploy with the node ids now active. Blue and
    // green share this store, and a green starts with no flows: cleaning there would wipe
    // the context blue is still using. Scopes are therefore kept (see docs/agents.md).
    clean: () => Promise.resolve(),
  };
}

/** `a.b[0]["c"]` → field "a", path ["b", 0, "c"]. */
function splitKey(key) {
  const parts = [];
  const re = /\[(\d+)\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\.?([^.[\]]+)/g;
  let m;
  let consumed = 0;
  const text = String(key);
  while ((m = re.exec(text)) !== null) {
    if (m.index !== consumed) throw new Error(`invalid context key: ${text}`);
    consumed = re.lastIndex;
    if (m[1] !== undefined) parts.push(Number(m[1]));
    else if (m[2] !== undefined) parts.push(m[2]);
    else if (m[3] !== undefined) parts.push(m[3]);
    else parts.push(m[4]);
  }
  if (consumed !== text.length || parts.length === 0 || typeof parts[0] !== "string") throw new Error(`invalid context key: ${text}`);
  return { field: parts[0], path: parts.slice(1) };
}

function readPath(value, path) {
  let v = value;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = v[p];
  }
  return v;
}

function writePath(root, path, value) {
  let v = root;
  for (let i = 0; i < path.length - 1; i++) {
    const p = path[i];
    if (v[p] === null || typeof v[p] !== "object") v[p] = typeof path[i + 1] === "number" ? [] : {};
    v = v[p];
  }
  const last = path[path.length - 1];
  if (value === undefined) delete v[last];
  else v[last] = value;
}

module.exports = sharedContextStore;
module.exports.splitKey = splitKey;
