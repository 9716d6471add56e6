/**
 * The vector store behind the storage primitive and query-processing's store
 * mode: upsert {id, text, vector, metadata} into a collection, search a
 * collection by vector (cosine, best first), delete by id.
 *
 * Backends:
 * - Postgres (default): one table (default `redforge_vectors`) created at
 *   first use, a row per (collection, id).
 *   - `pgvector` column type `vector` when the `vector` extension can be
 *     created (or exists). The column has no fixed dimension (one table holds
 *     every model's vectors), so the HNSW index is per dimension: an
 *     expression + partial index `((embedding::vector(N)) vector_cosine_ops)
 *     WHERE dims = N`, created at the first upsert of N-dimension vectors
 *     (N ≤ 2000, pgvector's HNSW limit), and the search orders by the same
 *     expression so the planner can use it (approximate: HNSW). `index:
 *     "none"`, N > 2000 or pgvector < 0.5: an exact scan, as before.
 *   - `array` fallback (no extension, e.g. Debian's Postgres without
 *     postgresql-NN-pgvector, or the embedded Postgres): float8[] plus the
 *     vector's norm; cosine is computed in SQL over every row of the
 *     collection with that dimension (exact, O(rows × dims) per search).
 *   An existing table keeps the mode it was created with.
 * - Milvus REST v2 when MILVUS_URL is set (quick-setup collections, COSINE
 *   metric, text and metadata as dynamic fields). Written from Milvus's
 *   documented REST API, NOT tested against a real Milvus (docs/agents.md).
 */
"use strict";

const crypto = require("node:crypto");
const { StoreError, invalid, fromPgError, fromFetchError } = require("./storeError.js");
const { PostgresTable, poolFor } = require("./pgPool.js");

const MAX_ITEMS = 5000;
/** pgvector's HNSW indexes `vector` up to 2,000 dimensions. */
const HNSW_MAX_DIMS = 2000;
/** How long the first upsert of a dimension may wait for its index to be built over existing rows. */
const INDEX_BUILD_TIMEOUT_MS = 10 * 60_000;
const MAX_DIMS = 16000;
const COLLECTION = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;
const round = (x) => Math.round(x * 1e6) / 1e6;
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function checkCollection(name) {
  if (typeof name !== "string" || !COLLECTION.test(name)) throw invalid(`collection must be letters, digits and _ (starting with a letter or _), not ${JSON.stringify(name)}`);
  return name;
}

function checkVector(v, what) {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_DIMS || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw invalid(`${what} must be an array of 1..${MAX_DIMS} finite numbers`);
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  if (norm === 0) throw invalid(`${what} is all zeros: cosine similarity is undefined`);
  return norm;
}

/**
 * Items as the store takes them. Accepts embeddings' output as is: `vector`
 * or `embedding`; `metadata`, else the item's other fields (index, start,
 * end, …); `id`, else a hash of the text (re-ingesting a text replaces it).
 */
function normalizeItems(items) {
  if (!Array.isArray(items) || items.length === 0) throw invalid("items must be a non-empty array of {id?, text, vector|embedding, metadata?}");
  if (items.length > MAX_ITEMS) throw invalid(`at most ${MAX_ITEMS} items per upsert, got ${items.length}`);
  let dims;
  return items.map((item, i) => {
    if (!isObject(item)) throw invalid(`item ${i} is not an object`);
    if (typeof item.text !== "string") throw invalid(`item ${i} has no text (a string)`);
    const vector = item.vector !== undefined ? item.vector : item.embedding;
    const norm = checkVector(vector, `item ${i}'s vector`);
    if (dims !== undefined && vector.length !== dims) throw invalid(`item ${i} has ${vector.length} dimensions, item 0 has ${dims}`);
    dims = vector.length;
    let id = item.id;
    if (id === undefined || id === null) id = crypto.createHash("sha256").update(item.text).digest("hex").slice(0, 32);
    if ((typeof id !== "string" && typeof id !== "number") || String(id).length === 0 || String(id).length > 512) throw invalid(`item ${i}'s id must be a string of 1..512 characters`);
    let metadata = item.metadata;
    if (metadata === undefined) {
      metadata = {};
      for (const [k, v] of Object.entries(item)) if (!["id", "text", "vector", "embedding", "metadata"].includes(k)) metadata[k] = v;
    }
    if (!isObject(metadata)) throw invalid(`item ${i}'s metadata must be an object`);
    return { id: String(id), text: item.text, vector, norm, metadata };
  });
}

function searchOptions(opts) {
  const topK = opts.topK === undefined ? 5 : Number(opts.topK);
  if (!Number.isInteger(topK) || topK < 1 || topK > 1000) throw invalid("topK must be an integer 1..1000");
  const minScore = opts.minScore === undefined || opts.minScore === null ? -1 : Number(opts.minScore);
  if (!Number.isFinite(minScore) || minScore < -1 || minScore > 1) throw invalid("minScore must be a number -1..1");
  return { topK, minScore };
}

class PostgresVectorStore extends PostgresTable {
  constructor(opts) {
    super(opts, "redforge_vectors");
    this.wanted = opts.mode || "auto"; // auto | pgvector | array
    this.indexWanted = opts.index || "hnsw"; // hnsw | none (pgvector only; float8[] has no index type for cosine)
    this.indexed = new Set(); // dimensions whose HNSW index is known to exist
    this.readyPromise = undefined;
  }

  /** Creates the table (and the extension when wanted) once; a failure is retried on the next call. */
  ready() {
    if (!this.readyPromise) this.readyPromise = this.prepare().catch((err) => { this.readyPromise = undefined; throw err; });
    return this.readyPromise;
  }

  async columnType() {
    const name = this.ident.schema ? `${this.ident.schema}.${this.ident.bare}` : this.ident.bare;
    const r = await this.query("SELECT format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = 'embedding'", [name], "reading the vector table");
    return r.rows[0] && r.rows[0].type;
  }

  async prepare() {
    if (this.ident.schema) await this.query(`CREATE SCHEMA IF NOT EXISTS "${this.ident.schema}"`, [], "creating the vector table's schema");
    let type = await this.columnType();
    if (!type) {
      let pgvector = false;
      if (this.wanted !== "array") {
        try {
          await poolFor(this.url, this.onError).query("CREATE EXTENSION IF NOT EXISTS vector");
          pgvector = true;
        } catch (err) {
          const e = fromPgError(err, "CREATE EXTENSION vector");
          if (e.code === "store_unavailable") throw e;
          if (this.wanted === "pgvector") throw new StoreError("store_rejected", `STORE_BACKEND is pgvector but ${e.message}`);
        }
      }
      const column = pgvector ? "vector" : "float8[]";
      try {
        await poolFor(this.url, this.onError).query(`CREATE TABLE IF NOT EXISTS ${this.ident.sql} (
  collection text NOT NULL,
  id text NOT NULL,
  text text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  embedding ${column} NOT NULL,
  dims integer NOT NULL,
  norm double precision NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (collection, id))`);
      } catch (err) {
        // Two nodes creating the table at once: the loser sees a duplicate type/relation; the table is there.
        if (!["23505", "42P07"].includes(err && err.code)) throw fromPgError(err, "creating the vector table");
      }
      type = await this.columnType();
    }
    this.mode = String(type).startsWith("vector") ? "pgvector" : "array";
    if (this.wanted === "pgvector" && this.mode !== "pgvector") throw new StoreError("store_rejected", `STORE_BACKEND is pgvector but ${this.ident.sql} was created with a float8[] column`);
    this.hnsw = false;
    this.iterativeScan = false;
    if (this.mode === "pgvector" && this.indexWanted !== "none") {
      const r = await this.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'", [], "reading the pgvector version");
      const [major, minor] = String((r.rows[0] && r.rows[0].extversion) || "0.0").split(".").map(Number);
      // HNSW came with pgvector 0.5.0; iterative index scans (more rows when a filter drops some) with 0.8.0.
      this.hnsw = major > 0 || minor >= 5;
      this.iterativeScan = major > 0 || minor >= 8;
    }
    return this.mode;
  }

  /** Whether searches of `dims`-dimension vectors go through the per-dimension HNSW index. */
  usesIndex(dims) {
    return this.mode === "pgvector" && this.hnsw && dims <= HNSW_MAX_DIMS;
  }

  /** The per-dimension index's name: unique per table and dimension, within Postgres's 63 bytes. */
  indexName(dims) {
    const name = `${this.ident.bare}_hnsw_${dims}`;
    return name.length <= 63 ? name : `${this.ident.bare.slice(0, 40)}_${crypto.createHash("sha256").update(this.ident.bare).digest("hex").slice(0, 8)}_hnsw_${dims}`;
  }

  /**
   * Creates the HNSW index for `dims` once (IF NOT EXISTS; the first upsert of
   * a dimension into a table that already holds rows builds it over them).
   */
  async ensureIndex(dims) {
    if (!this.usesIndex(dims) || this.indexed.has(dims)) return;
    const n = Number(dims); // an integer 1..HNSW_MAX_DIMS (checkVector): safe to splice as a type modifier
    try {
      // The pool's 30 s query timeout would cancel a build over a big table at every upsert, forever;
      // 20,000 rows of 384 dimensions took 9.5-17.7 s on the loaded 2-core machine.
      await poolFor(this.url, this.onError).query({
        text: `CREATE INDEX IF NOT EXISTS "${this.indexName(n)}" ON ${this.ident.sql} USING hnsw ((embedding::vector(${n})) vector_cosine_ops) WHERE dims = ${n}`,
        query_timeout: INDEX_BUILD_TIMEOUT_MS,
      });
    } catch (err) {
      // Two nodes creating it at once: the loser sees a duplicate relation; the index is there.
      if (!["23505", "42P07"].includes(err && err.code)) throw fromPgError(err, "creating the vector index");
    }
    this.indexed.add(dims);
  }

  literal(vector) {
    return this.mode === "pgvector" ? `[${vector.join(",")}]` : vector;
  }

  async storedDims(collection, notDims) {
    const r = await this.query(`SELECT dims FROM ${this.ident.sql} WHERE collection = $1 AND dims <> $2 LIMIT 1`, [collection, notDims], "reading the collection");
    return r.rows[0] && r.rows[0].dims;
  }

  async upsert(collection, rawItems) {
    checkCollection(collection);
    const items = normalizeItems(rawItems);
    await this.ready();
    const dims = items[0].vector.length;
    const other = await this.storedDims(collection, dims);
    if (other !== undefined) throw invalid(`collection ${collection} holds ${other}-dimension vectors, these have ${dims}: embed with the same model, or use another collection`);
    await this.ensureIndex(dims);
    // Multi-row statements of up to 500 items, from parallel array parameters (vectors as array /
    // pgvector literals, parsed by Postgres in C); an id given twice keeps its last item
    // (ON CONFLICT cannot touch a row twice in one statement).
    const unique = [...new Map(items.map((it) => [it.id, it])).values()];
    const cast = this.mode === "pgvector" ? "vector" : "float8[]";
    const literal = this.mode === "pgvector" ? (v) => `[${v.join(",")}]` : (v) => `{${v.join(",")}}`;
    let client;
    try {
      client = await poolFor(this.url, this.onError).connect();
    } catch (err) {
      throw fromPgError(err, "connecting to Postgres");
    }
    try {
      await client.query("BEGIN");
      for (let i = 0; i < unique.length; i += 500) {
        const rows = unique.slice(i, i + 500);
        await client.query(
          `INSERT INTO ${this.ident.sql} (collection, id, text, metadata, embedding, dims, norm)
           SELECT $1, u.id, u.t, u.m::jsonb, u.v::${cast}, $7, u.n FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[]) AS u(id, t, m, v, n)
           ON CONFLICT (collection, id) DO UPDATE SET text = EXCLUDED.text, metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding,
             dims = EXCLUDED.dims, norm = EXCLUDED.norm, updated_at = now()`,
          [collection, rows.map((r) => r.id), rows.map((r) => r.text), rows.map((r) => JSON.stringify(r.metadata)), rows.map((r) => literal(r.vector)), rows.map((r) => r.norm), dims],
        );
      }
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw fromPgError(err, "upserting vectors");
    } finally {
      client.release();
    }
    return { collection, upserted: unique.length, ids: items.map((i) => i.id), dimensions: dims, backend: `postgres/${this.mode}` };
  }

  async search(collection, vector, opts = {}) {
    checkCollection(collection);
    const qnorm = checkVector(vector, "the query vector");
    const { topK, minScore } = searchOptions(opts);
    await this.ready();
    const dims = vector.length;
    const r = this.usesIndex(dims)
      ? await this.indexedSearch(collection, vector, topK)
      : this.mode === "pgvector"
        ? await this.query(
          `SELECT id, text, metadata, 1 - (embedding <=> $2::vector) AS score FROM ${this.ident.sql}
           WHERE collection = $1 AND dims = $3 ORDER BY embedding <=> $2::vector, id LIMIT $4`,
          [collection, this.literal(vector), dims, topK], "searching vectors")
        : await this.query(
          `SELECT v.id, v.text, v.metadata, s.dot / NULLIF(v.norm * $4, 0) AS score FROM ${this.ident.sql} v
           CROSS JOIN LATERAL (SELECT sum(e * q) AS dot FROM unnest(v.embedding, $2::float8[]) AS u(e, q)) s
           WHERE v.collection = $1 AND v.dims = $3 ORDER BY score DESC NULLS LAST, v.id LIMIT $5`,
          [collection, vector, dims, qnorm, topK], "searching vectors");
    if (r.rows.length === 0) {
      const other = await this.storedDims(collection, dims);
      if (other !== undefined) throw invalid(`collection ${collection} holds ${other}-dimension vectors, the query has ${dims}: embed it with the same model`);
    }
    return ranked(collection, r.rows.map((row) => ({ id: row.id, text: row.text, metadata: row.metadata, score: Number(row.score) })), minScore, `postgres/${this.mode}`);
  }

  /**
   * A search the HNSW index can serve: ORDER BY the index's own expression
   * (the dimension and the partial index's predicate spliced in as literals,
   * or the planner cannot match them), no tie-break column (it would force a
   * sort of every row); ties are ordered by id afterwards. ef_search is at
   * least topK; with pgvector ≥ 0.8 a strict-order iterative scan keeps going
   * when the collection filter drops rows the index returned, so a small
   * collection in a big table still gets topK results.
   * One round trip: SET LOCAL and the SELECT as one multi-statement query (an
   * implicit transaction, so the settings end with it). Such a query takes no
   * bind parameters, so every value is spliced, each already validated:
   * finite numbers, an integer topK, a collection of [A-Za-z0-9_]. Four round
   * trips (BEGIN, SET, SELECT, COMMIT) made it slower than the exact scan
   * below ~5,000 rows on the loaded test machine.
   */
  async indexedSearch(collection, vector, topK) {
    const n = Number(vector.length);
    const q = `'${this.literal(vector)}'::vector(${n})`;
    const settings = [`SET LOCAL hnsw.ef_search = ${Math.max(40, Number(topK))}`, ...(this.iterativeScan ? ["SET LOCAL hnsw.iterative_scan = strict_order"] : [])];
    const results = await this.query(`${settings.join("; ")};
SELECT id, text, metadata, 1 - (embedding::vector(${n}) <=> ${q}) AS score FROM ${this.ident.sql}
WHERE collection = '${checkCollection(collection)}' AND dims = ${n} ORDER BY embedding::vector(${n}) <=> ${q} LIMIT ${Number(topK)}`, undefined, "searching vectors");
    const r = results[results.length - 1];
    r.rows.sort((a, b) => Number(b.score) - Number(a.score) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return r;
  }

  async remove(collection, ids) {
    checkCollection(collection);
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((x) => typeof x === "string" || typeof x === "number")) throw invalid("ids must be a non-empty array of strings");
    await this.ready();
    const r = await this.query(`DELETE FROM ${this.ident.sql} WHERE collection = $1 AND id = ANY($2::text[])`, [collection, ids.map(String)], "deleting vectors");
    return { collection, deleted: r.rowCount };
  }
}

function ranked(collection, rows, minScore, backend) {
  const results = rows.filter((r) => r.score >= minScore).map((r, i) => ({ rank: i + 1, id: r.id, score: round(r.score), text: r.text, metadata: r.metadata || {} }));
  return { collection, backend, results };
}

/** Milvus REST API v2 (POST /v2/vectordb/...). Untested against a real Milvus. */
class MilvusVectorStore {
  constructor({ url, token, db, timeoutMs }) {
    this.root = String(url).replace(/\/+$/, "");
    this.token = token;
    this.db = db;
    this.timeoutMs = timeoutMs || 30_000;
    this.known = new Set();
  }

  get backend() {
    return "milvus";
  }

  async call(path, body) {
    const headers = { "content-type": "application/json", accept: "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await fetch(`${this.root}${path}`, { method: "POST", headers, body: JSON.stringify(this.db ? { dbName: this.db, ...body } : body), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw fromFetchError(err, "store_unavailable", `Milvus ${path}`);
    }
    const text = await res.text();
    if (res.status === 408 || res.status === 429 || res.status >= 500) throw new StoreError("store_unavailable", `Milvus ${path}: HTTP ${res.status}`);
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StoreError("store_rejected", `Milvus ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
    }
    // Milvus answers HTTP 200 with {code, message} for most failures; code 0 is success.
    if (res.status >= 400 || (json.code !== undefined && json.code !== 0 && json.code !== 200)) {
      throw new StoreError("store_rejected", `Milvus ${path}: ${json.message || `HTTP ${res.status}`} (code ${json.code})`);
    }
    return json.data;
  }

  async has(collection) {
    if (this.known.has(collection)) return true;
    const data = await this.call("/v2/vectordb/collections/has", { collectionName: collection });
    if (data && data.has) this.known.add(collection);
    return Boolean(data && data.has);
  }

  async upsert(collection, rawItems) {
    checkCollection(collection);
    const items = normalizeItems(rawItems);
    const dims = items[0].vector.length;
    if (!(await this.has(collection))) {
      await this.call("/v2/vectordb/collections/create", {
        collectionName: collection, dimension: dims, metricType: "COSINE", idType: "VarChar", autoId: false,
        primaryFieldName: "id", vectorFieldName: "vector", params: { max_length: 512, enableDynamicField: true },
      });
      this.known.add(collection);
    }
    await this.call("/v2/vectordb/entities/upsert", { collectionName: collection, data: items.map((i) => ({ id: i.id, vector: i.vector, text: i.text, metadata: i.metadata })) });
    return { collection, upserted: items.length, ids: items.map((i) => i.id), dimensions: dims, backend: "milvus" };
  }

  async search(collection, vector, opts = {}) {
    checkCollection(collection);
    checkVector(vector, "the query vector");
    const { topK, minScore } = searchOptions(opts);
    if (!(await this.has(collection))) return { collection, backend: "milvus", results: [] };
    const data = await this.call("/v2/vectordb/entities/search", { collectionName: collection, data: [vector], annsField: "vector", limit: topK, outputFields: ["id", "text", "metadata"] });
    // COSINE: `distance` is the similarity, larger is closer.
    const rows = (Array.isArray(data) ? data : []).map((d) => ({ id: String(d.id), text: d.text, metadata: d.metadata, score: Number(d.distance) }));
    rows.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
    return ranked(collection, rows, minScore, "milvus");
  }

  async remove(collection, ids) {
    checkCollection(collection);
    if (!Array.isArray(ids) || ids.length === 0) throw invalid("ids must be a non-empty array of strings");
    if (!(await this.has(collection))) return { collection, deleted: 0 };
    await this.call("/v2/vectordb/entities/delete", { collectionName: collection, filter: `id in ${JSON.stringify(ids.map(String))}` });
    return { collection, deleted: ids.length };
  }
}

const stores = new Map();

/**
 * The store for these settings (one per process and settings, so the table
 * check runs once): Milvus when `milvusUrl` is set, else Postgres at `postgresUrl`.
 */
function vectorStore(settings) {
  const key = JSON.stringify([settings.milvusUrl || "", settings.milvusToken ? crypto.createHash("sha256").update(String(settings.milvusToken)).digest("hex") : "", settings.milvusDb || "", settings.postgresUrl || "", settings.table || "", settings.mode || "", settings.index || ""]);
  let store = stores.get(key);
  if (!store) {
    store = settings.milvusUrl
      ? new MilvusVectorStore({ url: settings.milvusUrl, token: settings.milvusToken, db: settings.milvusDb, timeoutMs: settings.timeoutMs })
      : new PostgresVectorStore({ url: settings.postgresUrl, table: settings.table, mode: settings.mode, index: settings.index, onError: settings.onError });
    stores.set(key, store);
  }
  return store;
}

module.exports = { vectorStore, normalizeItems, PostgresVectorStore, MilvusVectorStore, checkCollection, HNSW_MAX_DIMS };
