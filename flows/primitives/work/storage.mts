/**
 * Storage (vector store) and memory primitives: one node each
 * (redforge-vector-store, redforge-memory from the node package) between
 * msg_input and msg_output; a store that cannot be reached or refuses is
 * dead-lettered like a failed model call. No model call.
 */
import type { Work } from "./shared.mts";

export const storageWork: Work = (id, name) => ({
  nodes: [
    {
      id: id("store"), type: "redforge-vector-store", name: "vector store",
      collection: "${STORE_COLLECTION}", postgresUrl: "${STORE_POSTGRES_URL}", table: "${STORE_TABLE}", backend: "${STORE_BACKEND}",
      milvusUrl: "${MILVUS_URL}", milvusToken: "${MILVUS_TOKEN}", milvusDb: "${MILVUS_DB}", topK: "${QUERY_TOP_K}",
      wires: [[id("out")], [id("dlq")]],
    },
    { id: id("dlq"), type: "redforge-dlq", name: "dead letter", source: name, wires: [[id("out")]] },
  ],
  first: id("store"),
  catchable: [id("store")],
});

export const memoryWork: Work = (id, name) => ({
  nodes: [
    {
      id: id("memory"), type: "redforge-memory", name: "conversation memory",
      redisUrl: "${REDIS_URL}", redisToken: "${REDIS_TOKEN}", prefix: "${MEMORY_REDIS_PREFIX}", ttl: "${MEMORY_TTL_S}", maxKept: "${MEMORY_MAX_KEPT}",
      postgresUrl: "${MEMORY_POSTGRES_URL}", table: "${MEMORY_TABLE}", last: "${MEMORY_RECALL_LAST}",
      wires: [[id("out")], [id("dlq")]],
    },
    { id: id("dlq"), type: "redforge-dlq", name: "dead letter", source: name, wires: [[id("out")]] },
  ],
  first: id("memory"),
  catchable: [id("memory")],
});

/** PDF / DOCX / text to text: redforge-convert (Tika when TIKA_URL is set). */
export const converterWork: Work = (id, name) => ({
  nodes: [
    {
      id: id("convert"), type: "redforge-convert", name: "convert to text",
      tikaUrl: "${TIKA_URL}", maxBytes: "${CONVERT_MAX_BYTES}", timeout: "${TIKA_TIMEOUT_MS}",
      wires: [[id("out")], [id("dlq")]],
    },
    { id: id("dlq"), type: "redforge-dlq", name: "dead letter", source: name, wires: [[id("out")]] },
  ],
  first: id("convert"),
  catchable: [id("convert")],
});
