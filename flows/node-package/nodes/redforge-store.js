/**
 * Nodes of the storage, memory and file-converter primitives
 * (flows/primitives/ in the RedForge repository):
 *
 * - redforge-vector-store: upsert / search / delete in a vector store
 *   (Postgres with pgvector or a float8[] fallback; Milvus REST when MILVUS_URL is set).
 * - redforge-memory: conversation memory, append / recall / forget
 *   (Postgres, or Redis when REDIS_URL is set).
 * - redforge-convert: PDF / DOCX / text to text (Tika when TIKA_URL is set).
 *
 * Each reads its request from msg.payload and answers in msg.payload. Inside a
 * primitive (msg.agent set by redforge-message) a failure becomes
 * msg.agent.error: bad input leaves on output 1 (the answer says
 * invalid_input), an unreachable or refusing store / converter on output 2
 * (to a dead letter). Outside a primitive a failure is thrown (catch node).
 */
"use strict";

const { StoreError, invalid } = require("../lib/storeError.js");
const { vectorStore } = require("../lib/vectorStore.js");
const { conversationMemory } = require("../lib/memoryStore.js");
const { convertDocument, documentBytes } = require("../lib/convertDocument.js");

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
/**
 * A node setting after ${ENV} substitution: "" counts as absent, and so does a
 * "${NAME}" left as is (Node-RED keeps the text when the variable is unset).
 */
const setting = (v) => (v === undefined || v === null || String(v).trim() === "" || /^\$\{\w+\}$/.test(String(v).trim()) ? undefined : String(v).trim());
const number = (v) => (setting(v) === undefined ? undefined : Number(v));

/** Runs `work`, then routes: result → output 1; invalid_input → output 1 with msg.agent.error; unavailable/rejected → output 2. */
function handle(node, msg, send, done, work) {
  work().then((result) => {
    msg.payload = result.payload;
    if (msg.agent && result.contentType) msg.agent.contentType = result.contentType;
    node.status({ fill: "green", shape: "dot", text: result.status });
    send([msg, null]);
    done();
  }, (err) => {
    const code = err instanceof StoreError ? err.code : "internal_error";
    node.status({ fill: "red", shape: "ring", text: code });
    if (!msg.agent) return done(err);
    msg.agent.error = { code, message: err.message };
    send(code === "invalid_input" ? [msg, null] : [null, msg]);
    done();
  });
}

module.exports = function (RED) {
  const logPoolError = (err) => RED.log.warn(`[redforge-store] idle Postgres connection: ${err.message}`);

  function RedforgeVectorStoreNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const settings = {
      postgresUrl: setting(config.postgresUrl) || process.env.DATABASE_URL,
      table: setting(config.table) || "redforge_vectors",
      mode: setting(config.backend) || "auto",
      milvusUrl: setting(config.milvusUrl),
      milvusToken: setting(config.milvusToken),
      milvusDb: setting(config.milvusDb),
      onError: logPoolError,
    };
    const defaultCollection = setting(config.collection) || "default";
    node.on("input", (msg, send, done) => handle(node, msg, send, done, async () => {
      if (!["auto", "pgvector", "array"].includes(settings.mode)) throw new StoreError("store_rejected", `STORE_BACKEND must be auto, pgvector or array, not ${settings.mode}`);
      const store = vectorStore(settings);
      const over = (msg.agent && msg.agent.config) || {};
      // A bare array (embeddings' answer) is an upsert.
      const req = Array.isArray(msg.payload) ? { action: "upsert", items: msg.payload } : msg.payload;
      if (!isObject(req)) throw invalid("payload must be items to upsert ([{id?, text, embedding|vector, metadata?}]) or {action: upsert|search|delete, …}");
      const collection = req.collection !== undefined ? req.collection : over.collection !== undefined ? over.collection : defaultCollection;
      if (req.action === "upsert") {
        const r = await store.upsert(collection, req.items);
        return { payload: r, status: `${r.upserted} upserted into ${collection}` };
      }
      if (req.action === "search") {
        const r = await store.search(collection, req.vector, {
          topK: req.topK !== undefined ? req.topK : over.topK !== undefined ? over.topK : number(config.topK),
          minScore: req.minScore !== undefined ? req.minScore : over.minScore,
        });
        return { payload: r, status: `${r.results.length} found in ${collection}` };
      }
      if (req.action === "delete") {
        const r = await store.remove(collection, req.ids);
        return { payload: r, status: `${r.deleted} deleted from ${collection}` };
      }
      throw invalid(`action must be upsert, search or delete, not ${JSON.stringify(req.action)}`);
    }));
  }
  RED.nodes.registerType("redforge-vector-store", RedforgeVectorStoreNode);

  function RedforgeMemoryNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const settings = {
      redisUrl: setting(config.redisUrl),
      redisToken: setting(config.redisToken),
      prefix: setting(config.prefix) || "redforge:memory:",
      ttlSeconds: number(config.ttl),
      maxKept: number(config.maxKept),
      postgresUrl: setting(config.postgresUrl) || process.env.DATABASE_URL,
      table: setting(config.table) || "redforge_memory",
      onError: logPoolError,
    };
    const defaultLast = number(config.last) || 20;
    node.on("input", (msg, send, done) => handle(node, msg, send, done, async () => {
      const memory = conversationMemory(settings);
      const req = msg.payload;
      if (!isObject(req)) throw invalid("payload must be {action: append|recall|forget, conversationId, …}");
      if (req.action === "append") {
        const turns = req.turns !== undefined ? req.turns : [{ role: req.role, content: req.content, metadata: req.metadata }];
        const r = await memory.append(req.conversationId, turns);
        return { payload: r, status: `${r.turns} turn(s) in ${req.conversationId}` };
      }
      if (req.action === "recall") {
        const over = (msg.agent && msg.agent.config) || {};
        const r = await memory.recall(req.conversationId, req.last !== undefined ? req.last : over.last !== undefined ? over.last : defaultLast);
        return { payload: r, status: `${r.turns.length} recalled` };
      }
      if (req.action === "forget") {
        const r = await memory.forget(req.conversationId);
        return { payload: r, status: "forgot" };
      }
      throw invalid(`action must be append, recall or forget, not ${JSON.stringify(req.action)}`);
    }));
  }
  RED.nodes.registerType("redforge-memory", RedforgeMemoryNode);

  function RedforgeConvertNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const opts = { tikaUrl: setting(config.tikaUrl), maxBytes: number(config.maxBytes), timeoutMs: number(config.timeout) };
    node.on("input", (msg, send, done) => handle(node, msg, send, done, async () => {
      const contentType = msg.agent && msg.agent.input && msg.agent.input.metadata ? msg.agent.input.metadata.contentType : Buffer.isBuffer(msg.payload) ? "binary" : undefined;
      const bytes = Buffer.isBuffer(msg.payload) ? msg.payload : documentBytes(msg.payload, contentType);
      const r = await convertDocument(bytes, opts);
      const details = Boolean(msg.agent && msg.agent.config && msg.agent.config.details);
      return details
        ? { payload: r, contentType: "json", status: `${r.format} via ${r.via}` }
        : { payload: r.text, contentType: "text", status: `${r.format} via ${r.via}: ${r.text.length} chars` };
    }));
  }
  RED.nodes.registerType("redforge-convert", RedforgeConvertNode);
};
